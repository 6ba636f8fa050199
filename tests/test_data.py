"""The data path: a synthetic cache in CIFAR-10's on-disk format, read by the real cifar10.load_data()."""
import os
import pickle

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
