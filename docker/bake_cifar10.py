"""Put CIFAR-10 into the image at build time (`--build-arg BAKE_CIFAR10=1`), where and how Keras
1.2.2 reads it, so that runs of the image need no network. The Dockerfile runs it as the image's
user; with BAKE_CIFAR10=0 (the default) it only creates the empty cache folder.

    python bake_cifar10.py BAKE LOCAL_DIR URL

The archive comes from LOCAL_DIR/cifar-10-python.tar.gz when the build context has one there
(docker/cifar10/), otherwise from URL. Either way its MD5 must be the published one. It is kept
as ~/.keras/datasets/cifar-10-batches-py.tar.gz, because Keras 1.2.2 downloads again whenever
that file is missing, and unpacked beside it as Keras would; runkit.dataset then checks every
batch, so that a bad archive fails the build instead of the first run.
"""
from __future__ import print_function

import hashlib
import os
import shutil
import sys
import tarfile
import time
from urllib.request import urlopen

# runkit is copied next to this script: the same cache_dir() and checks that allconvnet.py uses.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runkit import dataset  # noqa: E402

ARCHIVE_NAME = 'cifar-10-python.tar.gz'
# The MD5 published with the data set (also torchvision's CIFAR10.tgz_md5); 170,498,071 bytes.
MD5 = 'c58f30108f718f92721af3b95e74349a'


def md5(path):
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def fetch(url, dest, attempts=3):
    for attempt in range(1, attempts + 1):
        try:
            print('bake_cifar10: downloading %s (attempt %d)' % (url, attempt), flush=True)
            with urlopen(url, timeout=60) as response, open(dest, 'wb') as out:
                shutil.copyfileobj(response, out, 1 << 20)
            return
        except OSError as e:
            print('bake_cifar10: %s' % e, flush=True)
            if attempt == attempts:
                raise SystemExit('bake_cifar10: could not download %s; put %s in docker/cifar10/ '
                                 'and build again' % (url, ARCHIVE_NAME))
            time.sleep(10 * attempt)


def main(argv):
    if len(argv) != 3 or argv[0] not in ('0', '1'):
        raise SystemExit('usage: bake_cifar10.py 0|1 LOCAL_DIR URL (BAKE_CIFAR10 must be 0 or 1)')
    bake, local_dir, url = argv
    datadir = dataset.cache_dir()
    os.makedirs(datadir, exist_ok=True)
    if bake == '0':
        print('bake_cifar10: BAKE_CIFAR10=0, the image expects the data in a volume at %s'
              % datadir)
        return 0
    archive = os.path.join(datadir, dataset.NAME + '.tar.gz')
    partial = archive + '.part'
    local = os.path.join(local_dir, ARCHIVE_NAME)
    if os.path.isfile(local):
        print('bake_cifar10: using %s from the build context' % ARCHIVE_NAME, flush=True)
        shutil.copyfile(local, partial)
    else:
        fetch(url, partial)
    found = md5(partial)
    if found != MD5:
        os.remove(partial)
        raise SystemExit('bake_cifar10: %s has MD5 %s, expected %s (truncated or not CIFAR-10)'
                         % (ARCHIVE_NAME, found, MD5))
    os.rename(partial, archive)
    with tarfile.open(archive, 'r:gz') as t:  # what keras.utils.data_utils.get_file(untar=True) does
        t.extractall(datadir)
    for name in dataset.TRAIN_FILES + [dataset.TEST_FILE]:
        problem = dataset.check_batch(os.path.join(datadir, dataset.NAME, name))
        if problem:
            raise SystemExit('bake_cifar10: %s %s' % (name, problem))
    print('bake_cifar10: CIFAR-10 baked into %s' % datadir)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
