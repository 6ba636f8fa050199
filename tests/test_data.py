"""The data path: a synthetic cache in CIFAR-10's on-disk format, read by the real cifar10.load_data()."""
import os
import pickle
import pickletools

import numpy as np
import pytest
from keras.datasets import cifar10

from runkit import dataset


@pytest.fixture(scope='module')
def loaded(cifar_home):
    home = os.environ.get('HOME')
    os.environ['HOME'] = cifar_home
    try:
        dataset.ensure()
        return cifar10.load_data()
    finally:
        os.environ['HOME'] = home


def test_load_data_returns_nhwc_arrays_of_cifar_shape(loaded):
    (X_train, y_train), (X_test, y_test) = loaded
    assert X_train.shape == (50000, 32, 32, 3) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 32, 32, 3)
    assert y_train.shape == (50000, 1) and y_test.shape == (10000, 1)
    dataset.validate(X_train, y_train, X_test, y_test)


def test_pixels_survive_the_round_trip(loaded, cifar_home):
    # The batch stores CHW rows; load_data must give back the same pixels in NHWC.
    path = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py', 'data_batch_2')
    with open(path, 'rb') as f:
        batch = pickle.load(f, encoding='bytes')
    (X_train, y_train), _ = loaded
    first = batch[b'data'][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(X_train[10000], first)
    assert int(y_train[10000, 0]) == batch[b'labels'][0]


def test_labels_cover_all_ten_classes(loaded):
    (_, y_train), (_, y_test) = loaded
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_batches_are_pickled_as_python_2_wrote_them(cifar_home):
    # The Toronto files come from Python 2's cPickle: byte strings as BINSTRING. Python 3's
    # protocol 2 writes them as latin-1 text (BINUNICODE), 1.5 times the size and slower to load.
    path = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py', 'data_batch_1')
    with open(path, 'rb') as f:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(f)]
    assert 'BINUNICODE' not in {name for name, _ in ops}
    assert [len(arg) for name, arg in ops if name == 'BINSTRING'] == [10000 * 3072]
    assert os.path.getsize(path) < 1.02 * 10000 * 3072  # the original is 31,035,704 bytes
