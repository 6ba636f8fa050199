"""The CIFAR-10 cache that keras.datasets.cifar10.load_data() reads: find it, check it, explain it.

Keras 1.2.2 verifies nothing. It downloads again unless
~/.keras/datasets/cifar-10-batches-py.tar.gz exists (it checks existence only), untars it
if cifar-10-batches-py/ is missing, and unpickles the six batches into fixed arrays, so a
broken cache ends in an unpickling traceback or in silently wrong arrays. This module turns
each of those failures into one message that names the file and says how to repair it.
"""
from __future__ import print_function

import os
import pickle

import numpy as np

NAME = 'cifar-10-batches-py'
ORIGIN = 'http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
TRAIN_FILES = ['data_batch_%d' % i for i in range(1, 6)]
TEST_FILE = 'test_batch'
ROWS_PER_FILE = 10000


class DatasetError(Exception):
    """A broken or missing cache; str() is the one-line message for the user."""


def cache_dir():
    # Same rule as keras.utils.data_utils.get_file in Keras 1.2.2.
    base = os.path.expanduser(os.path.join('~', '.keras'))
    if not os.access(base, os.W_OK):
        base = os.path.join('/tmp', '.keras')
    return os.path.join(base, 'datasets')


def repair_hint(datadir):
    return ('Repair: delete %s and %s.tar.gz and rerun to download again, or put a good copy '
            'of cifar-10-python.tar.gz (from %s) at %s.tar.gz; README "When things go wrong" '
            'has the steps' % (os.path.join(datadir, NAME), os.path.join(datadir, NAME), ORIGIN,
                               os.path.join(datadir, NAME)))


def check_batch(path):
    """None if `path` is a sound CIFAR-10 batch file, else what is wrong with it."""
    if not os.path.exists(path):
        return 'is missing'
    try:
        with open(path, 'rb') as f:
            d = pickle.load(f, encoding='bytes')
    except Exception as e:  # truncated or corrupt pickles raise many types
        return 'is truncated or corrupt (%s: %s)' % (type(e).__name__, e)
    if not isinstance(d, dict) or b'data' not in d or b'labels' not in d:
        return 'is not a CIFAR-10 batch (no data/labels entries)'
    data, labels = np.asarray(d[b'data']), np.asarray(d[b'labels'])
    if data.shape != (ROWS_PER_FILE, 3072) or data.dtype != np.uint8:
        return 'holds data of shape %s and dtype %s, expected (10000, 3072) uint8' % (
            data.shape, data.dtype)
    if labels.shape != (ROWS_PER_FILE,) or labels.min() < 0 or labels.max() > 9:
        return 'holds %d labels in [%s, %s], expected 10000 in [0, 9]' % (
            labels.size, labels.min() if labels.size else '-', labels.max() if labels.size else '-')
    return None


def preflight():
    """Before load_data(): refuse the states in which Keras would download or crash."""
    datadir = cache_dir()
    folder = os.path.join(datadir, NAME)
    archive = folder + '.tar.gz'
    if not os.path.exists(archive):
        if os.path.isdir(folder):
            raise DatasetError(
                'found %s but not %s, which Keras 1.2.2 requires before it reads the folder '
                '(otherwise it downloads again); create it with: tar -C %s -czf %s %s'
                % (folder, archive, datadir, archive, NAME))
        raise DatasetError(
            'no CIFAR-10 cache at %s. Keras 1.2.2 would download %s (170 MB); if this machine '
            'has no network, put cifar-10-python.tar.gz there by hand as %s, or build the cache '
            'with ../shared/tools/cifar10_cache_from_jpg.py (see README)' % (archive, ORIGIN,
                                                                             archive))
    if not os.path.isdir(folder) and os.path.getsize(archive) == 0:
        raise DatasetError('%s is empty (an interrupted download?). %s'
                           % (archive, repair_hint(datadir)))


def diagnose(error):
    """After load_data() raised `error`: a DatasetError naming the file at fault."""
    datadir = cache_dir()
    folder = os.path.join(datadir, NAME)
    if not os.path.isdir(folder):
        return DatasetError('could not unpack %s.tar.gz (%s: %s): the archive is truncated or '
                            'corrupt. %s' % (folder, type(error).__name__, error,
                                             repair_hint(datadir)))
    for name in TRAIN_FILES + [TEST_FILE]:
        problem = check_batch(os.path.join(folder, name))
        if problem:
            return DatasetError('CIFAR-10 cache file %s %s. %s'
                                % (os.path.join(folder, name), problem, repair_hint(datadir)))
    return DatasetError('cifar10.load_data() failed (%s: %s) although every batch file in %s '
                        'looks sound. %s' % (type(error).__name__, error, folder,
                                             repair_hint(datadir)))


def validate(X_train, y_train, X_test, y_test):
    """After load_data(): the arrays have CIFAR-10's shapes, dtype and label range."""
    folder = os.path.join(cache_dir(), NAME)
    expected = [('X_train', X_train, (50000, 32, 32, 3)), ('X_test', X_test, (10000, 32, 32, 3)),
                ('y_train', y_train, (50000, 1)), ('y_test', y_test, (10000, 1))]
    for name, array, shape in expected:
        # Keras keeps the images uint8; the test labels come back as int64 from a list.
        kind_ok = array.dtype == np.uint8 if name.startswith('X') else array.dtype.kind in 'iu'
        if array.shape != shape or not kind_ok:
            raise DatasetError('cifar10.load_data() returned %s of shape %s and dtype %s, '
                               'expected %s %s (is image_dim_ordering "tf"?); cache: %s'
                               % (name, array.shape, array.dtype, shape,
                                  'uint8' if name.startswith('X') else 'integers', folder))
    for name, labels in (('y_train', y_train), ('y_test', y_test)):
        if labels.min() < 0 or labels.max() > 9:
            raise DatasetError('%s has labels outside 0..9 (%d..%d). %s'
                               % (name, labels.min(), labels.max(),
                                  repair_hint(cache_dir())))
