"""A synthetic, learnable dataset in CIFAR-10's on-disk format, for tests and tiny reference runs.

Writes HOME/.keras/datasets/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
and the cifar-10-batches-py.tar.gz beside it, exactly where and how
keras.datasets.cifar10.load_data() (Keras 1.2.2) reads them: dicts with b'data' (10000 x 3072
uint8, CHW row-major) and b'labels', pickled with protocol 2 as Python 2 wrote the originals
(about 31 MB a batch, as theirs are). Keras copies the five training batches
into a fixed (50000, 3, 32, 32) array, so each batch must hold exactly 10,000 images.

Each class has its own colour and coarse texture plus noise, so a few hundred images train
the real All-CNN-C above chance within a few epochs. Fixed seed: the same bytes every time.

    python tests/synthetic_cifar.py HOME_DIR
"""
import os
import pickle
import struct
import sys
import tarfile

import numpy as np

ROWS = 10000


def make_images(n, rng, classes=10):
    """(uint8 images (n, 32, 32, 3), int labels (n,))."""
    palette = np.random.RandomState(1234)
    colours = palette.randint(40, 216, size=(classes, 1, 1, 3)).astype(np.float32)
    textures = palette.uniform(-40, 40, size=(classes, 4, 4, 3)).astype(np.float32)
    textures = textures.repeat(8, axis=1).repeat(8, axis=2)
    labels = rng.randint(0, classes, size=n)
    noise = rng.uniform(-30, 30, size=(n, 32, 32, 3)).astype(np.float32)
    images = colours[labels] + textures[labels] + noise
    return np.clip(images, 0, 255).astype(np.uint8), labels


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the Toronto files: bytes and str as its `str`
    opcodes (SHORT_BINSTRING, BINSTRING), which load(encoding='bytes') reads as bytes. Python
    3's own protocol 2 spells bytes as latin-1 text, 1.5 times the size and slower to load."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_string(self, obj):
        if isinstance(obj, str):
            obj = obj.encode('ascii')
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_string


def dump(obj, path):
    with open(path, 'wb') as f:
        Python2Pickler(f, protocol=2).dump(obj)


def write_batch(path, images, labels, name):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # NHWC -> CHW rows
    dump({b'batch_label': name.encode(), b'data': data, b'labels': [int(l) for l in labels],
          b'filenames': [b'synthetic_%05d.png' % i for i in range(len(labels))]}, path)


def write_cache(home, seed=0):
    """Write the synthetic cache under home/.keras/datasets; return the batches folder."""
    datadir = os.path.join(home, '.keras', 'datasets')
    folder = os.path.join(datadir, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(1, 6):
        images, labels = make_images(ROWS, rng)
        write_batch(os.path.join(folder, 'data_batch_%d' % i), images, labels,
                    'training batch %d of 5' % i)
    images, labels = make_images(ROWS, rng)
    write_batch(os.path.join(folder, 'test_batch'), images, labels, 'testing batch 1 of 1')
    dump({b'label_names': [b'class%d' % c for c in range(10)], b'num_cases_per_batch': ROWS,
          b'num_vis': 3072}, os.path.join(folder, 'batches.meta'))
    # A real archive in the real format: the download tests serve it and the broken-cache
    # tests truncate it. Gzip level 0 (stored): the noisy images barely compress, and level 1
    # took twice as long to write.
    with tarfile.open(folder + '.tar.gz', 'w:gz', compresslevel=0) as t:
        t.add(folder, arcname='cifar-10-batches-py')
    return folder


if __name__ == '__main__':
    print(write_cache(sys.argv[1]))
