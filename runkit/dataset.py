"""The CIFAR-10 cache that keras.datasets.cifar10.load_data() reads: fetch it, check it, explain it.

Keras 1.2.2's own download (keras.utils.data_utils.get_file) writes straight to the cache path,
shows no progress (its Progbar is rebuilt on every block and never drawn), checks no MD5 after
downloading, and afterwards only checks that the archive exists, so an interrupted download
stays broken. `ensure` downloads to a temporary name instead, verifies the published MD5, and
only then puts the archive and the unpacked folder where load_data() looks, so load_data()
never downloads. A broken cache found later ends in one message naming the file at fault.

    python -m runkit.dataset      fetch and verify without training (exit 0, or 2 and one line)

A download that stalls ends: each read waits at most READ_TIMEOUT seconds, and a transfer
slower than MIN_RATE bytes/s over any RATE_WINDOW seconds is given up (docs/failures.md).
The archive is unpacked only if every member is a regular file or folder inside
cifar-10-batches-py/: Python 3.7's tarfile has no extraction filter, and a mirror's archive
whose MD5 the user set could otherwise write anywhere the user can.
"""
import argparse
import contextlib
import http.client
import os
import pickle
import posixpath
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

from runkit.argtypes import Parser
from runkit.errors import Interrupted, Refused, exit_code, prepare
from runkit.files import digest

NAME = 'cifar-10-batches-py'
# The CIFAR-10 page's "CIFAR-10 python version" and the MD5 it publishes (170,498,071 bytes).
ORIGIN = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
MD5 = 'c58f30108f718f92721af3b95e74349a'
URL_VARIABLE, MD5_VARIABLE = 'ALLCONVNET_CIFAR10_URL', 'ALLCONVNET_CIFAR10_MD5'
TRAIN_FILES = ['data_batch_%d' % i for i in range(1, 6)]
TEST_FILE = 'test_batch'
ROWS_PER_FILE = 10000
# 170 MB at 10 kB/s would take five hours: below that, the mirror is as good as stalled.
READ_TIMEOUT, MIN_RATE, RATE_WINDOW = 60, 10000, 60


class DatasetError(Refused):
    """A broken, missing or undownloadable cache; str() is the one-line message for the user."""


def cache_dir():
    # Same rule as keras.utils.data_utils.get_file in Keras 1.2.2. `import keras` creates
    # ~/.keras where it can; without it here, a fresh HOME would fall back to /tmp.
    base = os.path.expanduser(os.path.join('~', '.keras'))
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join('/tmp', '.keras')
    return os.path.join(base, 'datasets')


def manual_route(archive):
    return ('to install it by hand, put cifar-10-python.tar.gz (from %s) at %s and rerun'
            % (ORIGIN, archive))


def repair_hint(datadir):
    folder = os.path.join(datadir, NAME)
    return 'Repair: delete %s and %s.tar.gz and rerun to download again, or %s' % (
        folder, folder, manual_route(folder + '.tar.gz'))


def download(url, path):
    """url -> path, with Keras' progress bar; DatasetError (one line) on any failure."""
    from keras.utils.generic_utils import Progbar  # imports TensorFlow: only when downloading
    print('Downloading CIFAR-10 from %s (170 MB, once)' % url)
    try:
        with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as response, \
                open(path, 'wb') as out:
            total = int(response.headers.get('Content-Length') or 0)
            bar = Progbar(total) if total > 0 else None
            got = copy_watched(response, out, bar)
    except urllib.error.HTTPError as e:
        raise DatasetError('download of %s failed: HTTP %d %s' % (url, e.code, e.reason))
    except urllib.error.URLError as e:
        # No network, a refused connection or an unknown host: name the way round it.
        raise DatasetError('cannot reach %s (%s); %s' % (url, e.reason, manual_route(
            os.path.join(cache_dir(), NAME + '.tar.gz'))))
    except DatasetError as e:
        raise DatasetError('download of %s %s' % (url, e))
    except http.client.IncompleteRead as e:
        raise DatasetError('download of %s was cut short: %d more bytes were expected'
                           % (url, e.expected))
    except Exception as e:  # a reset or timeout midway; http.client's errors are not OSErrors
        raise DatasetError('download of %s failed midway (%s: %s)' % (url, type(e).__name__, e))
    if total and got != total:
        raise DatasetError('download of %s was cut short: %d of %d bytes' % (url, got, total))
    print()


def copy_watched(response, out, bar):
    """Copy the response to `out` and return the bytes copied; DatasetError once fewer than
    MIN_RATE * RATE_WINDOW bytes arrive in RATE_WINDOW seconds."""
    got, window_start, window_got = 0, time.monotonic(), 0
    # read1: whatever has arrived, so that a trickle is measured as it comes.
    for block in iter(lambda: response.read1(1 << 16), b''):
        out.write(block)
        got += len(block)
        window_got += len(block)
        if bar:
            bar.update(min(got, bar.target))
        elapsed = time.monotonic() - window_start
        if elapsed >= RATE_WINDOW:
            if window_got < MIN_RATE * RATE_WINDOW:
                raise DatasetError('stalled: %d bytes in the last %.0f s, under the %d bytes/s '
                                   'it needs' % (window_got, elapsed, MIN_RATE))
            window_start, window_got = time.monotonic(), 0
    return got


def safe_members(archive, t):
    """The archive's members, if each is a regular file or folder under cifar-10-batches-py/;
    else DatasetError naming the first that is not."""
    members = t.getmembers()
    for m in members:
        name = posixpath.normpath(m.name)
        inside = name == NAME or name.startswith(NAME + '/')
        if m.issym() or m.islnk():
            kind = 'a link'
        elif not (m.isfile() or m.isdir()):
            kind = 'a device or fifo'
        elif m.name.startswith('/') or not inside or '..' in m.name.split('/'):
            kind = 'a path outside %s/' % NAME
        else:
            continue
        raise DatasetError('%s holds %s, %r; only regular files and folders under %s/ are '
                           'unpacked, so nothing was' % (archive, kind, m.name, NAME))
    return members


def unpack(archive, datadir):
    """Unpack the archive beside itself, as get_file(untar=True) does, but whole or not at all."""
    folder = os.path.join(datadir, NAME)
    work = tempfile.mkdtemp(prefix='.unpack-', dir=datadir)
    try:
        try:
            with tarfile.open(archive, 'r:gz') as t:
                t.extractall(work, members=safe_members(archive, t))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError('could not unpack %s (%s: %s)' % (archive, type(e).__name__, e))
        for name in TRAIN_FILES + [TEST_FILE]:
            problem = check_batch(os.path.join(work, NAME, name))
            if problem:
                raise DatasetError('%s in %s %s' % (name, archive, problem))
        os.rename(os.path.join(work, NAME), folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def ensure(url=None, md5=None):
    """The unpacked cache folder, downloaded and verified first if it is not there yet.

    `url` and `md5` default to $ALLCONVNET_CIFAR10_URL and $ALLCONVNET_CIFAR10_MD5, then to the
    CIFAR-10 page's. An archive already at the cache path (the manual route) is verified and
    unpacked the same way; a downloaded one that fails leaves nothing at the cache path.
    """
    url = url or os.environ.get(URL_VARIABLE) or ORIGIN
    md5 = (md5 or os.environ.get(MD5_VARIABLE) or MD5).lower()
    datadir = cache_dir()
    folder = os.path.join(datadir, NAME)
    archive = folder + '.tar.gz'
    if os.path.exists(archive) and os.path.isdir(folder):
        return folder  # load_data() reads it as it is; diagnose() explains a broken one
    if os.path.isdir(folder):
        raise DatasetError(
            'found %s but not %s, which Keras 1.2.2 requires before it reads the folder '
            '(otherwise it downloads again); create it with: tar -C %s -czf %s %s'
            % (folder, archive, datadir, archive, NAME))
    try:
        os.makedirs(datadir, exist_ok=True)
    except OSError as e:
        raise DatasetError('cannot create the CIFAR-10 cache folder %s: %s' % (datadir, e.strerror))
    downloaded = not os.path.exists(archive)
    if downloaded:
        part = tempfile.NamedTemporaryFile(prefix='.cifar-10-', suffix='.part', dir=datadir,
                                           delete=False).name
        try:
            download(url, part)
            found = digest(part)
            if found != md5:
                raise DatasetError('download of %s has MD5 %s, expected %s (truncated, or not '
                                   'CIFAR-10)' % (url, found, md5))
            os.replace(part, archive)
        except Interrupted as e:
            e.message = ('interrupted by %s during the CIFAR-10 download; nothing was kept'
                         % signal.Signals(e.signum).name)
            raise
        except KeyboardInterrupt:  # a caller that installed no handlers (the tests' own)
            raise DatasetError('download of %s interrupted; nothing was kept' % url)
        finally:
            if os.path.exists(part):
                os.remove(part)
    else:
        found = digest(archive)
        if found != md5:
            raise DatasetError('%s has MD5 %s, expected %s. %s'
                               % (archive, found, md5, repair_hint(datadir)))
    try:
        return unpack(archive, datadir)
    except (DatasetError, KeyboardInterrupt) as e:
        if downloaded:
            os.remove(archive)
        if isinstance(e, Interrupted):
            e.message = 'interrupted by %s while unpacking %s; %s' % (
                signal.Signals(e.signum).name, archive,
                'nothing was kept' if downloaded else 'the archive is kept, rerun to unpack it')
            raise
        if isinstance(e, KeyboardInterrupt):
            raise DatasetError('unpacking %s interrupted; nothing was kept' % archive)
        raise DatasetError('%s. %s' % (e, repair_hint(datadir)))


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


def validate(X_train, y_train, X_test, y_test, channels_first=False):
    """After load_data(): the arrays have CIFAR-10's shapes, dtype and label range."""
    folder = os.path.join(cache_dir(), NAME)
    image = (3, 32, 32) if channels_first else (32, 32, 3)
    expected = [('X_train', X_train, (50000,) + image), ('X_test', X_test, (10000,) + image),
                ('y_train', y_train, (50000, 1)), ('y_test', y_test, (10000, 1))]
    for name, array, shape in expected:
        # Keras keeps the images uint8; the test labels come back as int64 from a list.
        kind_ok = array.dtype == np.uint8 if name.startswith('X') else array.dtype.kind in 'iu'
        if array.shape != shape or not kind_ok:
            raise DatasetError('cifar10.load_data() returned %s of shape %s and dtype %s, '
                               'expected %s %s; cache: %s'
                               % (name, array.shape, array.dtype, shape,
                                  'uint8' if name.startswith('X') else 'integers', folder))
    for name, labels in (('y_train', y_train), ('y_test', y_test)):
        if labels.min() < 0 or labels.max() > 9:
            raise DatasetError('%s has labels outside 0..9 (%d..%d). %s'
                               % (name, labels.min(), labels.max(),
                                  repair_hint(cache_dir())))


@contextlib.contextmanager
def explained():
    """Around cifar10.load_data(): fetch and verify first, then name the file at fault if it
    fails (validate() checks the arrays it returned)."""
    ensure()
    try:
        yield
    except Exception as e:
        raise diagnose(e) from None


EXIT_CODES = """exit codes:
  0    the cache is ready (fetched and verified, or already there and sound)
  2    it is not: one line on stderr says why (no network, a wrong MD5, a broken cache)
  128+N  signal N stopped it; nothing half-downloaded is left"""


def main(argv=None):
    Parser(prog='python -m runkit.dataset', description=__doc__.split('\n\n')[0],
           epilog='The archive comes from $ALLCONVNET_CIFAR10_URL (default the CIFAR-10 page) '
                  'and is checked against $ALLCONVNET_CIFAR10_MD5 (default the published '
                  'MD5).\n\n' + EXIT_CODES,
           formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print('CIFAR-10 is ready in %s' % ensure())
    return 0


if __name__ == '__main__':
    prepare('python -m runkit.dataset')
    sys.exit(exit_code(main, 'python -m runkit.dataset'))
