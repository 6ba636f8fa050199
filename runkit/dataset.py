"""The CIFAR-10 cache that keras.datasets.cifar10.load_data() reads: fetch it, check it, explain it.

Keras 1.2.2's own download (keras.utils.data_utils.get_file) writes straight to the cache path,
shows no progress (its Progbar is rebuilt on every block and never drawn), checks no MD5 after
downloading, and afterwards only checks that the archive exists, so an interrupted download
stays broken. `ensure` downloads to a temporary name instead, verifies the published MD5, and
only then puts the archive and the unpacked folder where load_data() looks, so load_data()
never downloads. A broken cache found later ends in one message naming the file at fault.

    python -m runkit.dataset      fetch and verify without training (exit 0, or 2 and one line)

A download that stalls ends: each read waits at most READ_TIMEOUT seconds, and a transfer
slower than MIN_RATE bytes/s over any RATE_WINDOW seconds is given up (docs/failures.md); one
larger than MAX_BYTES is no CIFAR-10. Processes that share a cache take turns through an flock
on its LOCK file: a second one waits for the first's download and reuses it, and whoever holds
the lock removes what a killed download left (LEFTOVERS).
The archive is unpacked only if every member is a regular file or folder inside
cifar-10-batches-py/: Python 3.7's tarfile has no extraction filter, and a mirror's archive
whose MD5 the user set could otherwise write anywhere the user can.
"""
import argparse
import contextlib
import http.client
import ipaddress
import os
import re
import pickle
import posixpath
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import numpy as np

from runkit.argtypes import Parser
from runkit.errors import (WRITE_ERRNOS, Interrupted, Refused, WriteFailed, exit_code,
                           prepare)
from runkit.files import (DIR_MODE, MODE, digest, lock_file, make_folders, open_folder,
                          unlock_file)

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
# Twice the published archive: a mirror that sends more is sending something else.
MAX_BYTES = 2 * 170498071
LOCK = '.cifar-10.lock'
# The download's and the unpacking's temporary names, which a killed process leaves.
LEFTOVERS = re.compile(r'^\.(cifar-10-.*\.part|unpack-.*)$')
MD5_FORM = re.compile(r'^[0-9a-fA-F]{32}$')


class DatasetError(Refused):
    """A broken, missing or undownloadable cache; str() is the one-line message for the user."""


def cache_dir(made=None):
    """The folder Keras 1.2.2's get_file caches in: ~/.keras/datasets where ~/.keras is
    writable, else /tmp/.keras/datasets (get_file's own rule, which it applies when called).
    ~/.keras is created first, as Keras' import once did; the folders created are appended to
    `made`. A ~/.keras that is not a folder is refused: load_data() could only fail there."""
    base = os.path.expanduser(os.path.join('~', '.keras'))
    if os.path.lexists(base) and not os.path.isdir(base):
        raise DatasetError('%s is not a folder, and Keras 1.2.2 keeps CIFAR-10 in %s: move it '
                           'away' % (base, os.path.join(base, 'datasets')))
    make_folder(base, made, quiet=True)
    if not os.access(base, os.W_OK):
        base = os.path.join('/tmp', '.keras')
    return os.path.join(base, 'datasets')


def make_folder(path, made, quiet=False):
    """files.make_folders, or DatasetError naming the folder (nothing when `quiet`)."""
    try:
        make_folders(path, [] if made is None else made)
    except OSError as e:
        if not quiet:
            raise DatasetError('cannot create the CIFAR-10 cache folder %s: %s'
                               % (e.filename, e.strerror)) from None


def manual_route(archive):
    return ('to install it by hand, save cifar-10-python.tar.gz (from %s) as %s (that name: '
            'Keras 1.2.2 looks for it) and rerun' % (ORIGIN, archive))


def repair_hint(datadir):
    folder = os.path.join(datadir, NAME)
    return 'Repair: delete %s and %s.tar.gz and rerun to download again, or %s' % (
        folder, folder, manual_route(folder + '.tar.gz'))


def download(url, path):
    """url -> path, with Keras' progress bar; DatasetError (one line) on any failure of the
    transfer, WriteFailed when `path` cannot be written (a full disk, a file-size limit)."""
    from keras.utils.generic_utils import Progbar  # imports TensorFlow: only when downloading
    print('Downloading CIFAR-10 from %s (170 MB, once)' % url)
    try:
        with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as response, \
                open(path, 'wb') as out:
            total = announced(response)
            bar = Progbar(total) if total > 0 else None
            got = copy_watched(response, out, bar)
    except urllib.error.HTTPError as e:
        raise DatasetError('download of %s failed: HTTP %d %s' % (url, e.code, e.reason))
    except DatasetError as e:
        raise DatasetError('download of %s %s' % (url, e))
    except OSError as e:  # a URLError too, whose reason is what failed
        cause = getattr(e, 'reason', e)
        if getattr(cause, 'errno', None) in WRITE_ERRNOS:
            raise WriteFailed('cannot write %s: %s' % (path, cause.strerror)) from None
        if isinstance(e, urllib.error.URLError):
            # No network, a refused connection or an unknown host: name the way round it.
            raise DatasetError('cannot reach %s (%s); %s' % (url, e.reason, manual_route(
                os.path.join(os.path.dirname(path), NAME + '.tar.gz'))))
        raise DatasetError('download of %s failed midway (%s: %s)' % (url, type(e).__name__, e))
    except http.client.IncompleteRead as e:
        raise DatasetError('download of %s was cut short after %d bytes' % (url, len(e.partial)))
    except Exception as e:  # http.client's errors (a cut chunk, a bad header) are not OSErrors
        raise DatasetError('download of %s failed midway (%s%s)' % (
            url, type(e).__name__, ': %s' % e if str(e) else ''))
    if total and got != total:
        raise DatasetError('download of %s was cut short: %d of %d bytes' % (url, got, total))
    print()


def announced(response):
    """The size the server announced, 0 if it did not; DatasetError for a Content-Length that
    is no byte count (int() would take '+5', '-0' or '\u00b2'), or is too large."""
    length = response.headers.get('Content-Length')
    if length is None:
        return 0
    if not re.fullmatch(r'[0-9]{1,20}', length):
        raise DatasetError('failed: the server sent Content-Length %r, which is no byte count'
                           % length)
    if int(length) > MAX_BYTES:
        raise DatasetError('announced %s bytes, not CIFAR-10\'s 170 MB' % length)
    return int(length)


def copy_watched(response, out, bar):
    """Copy the response to `out` and return the bytes copied; DatasetError once fewer than
    MIN_RATE * RATE_WINDOW bytes arrive in RATE_WINDOW seconds, or more than MAX_BYTES."""
    got, window_start, window_got = 0, time.monotonic(), 0
    # read1: whatever has arrived, so that a trickle is measured as it comes.
    for block in iter(lambda: response.read1(1 << 16), b''):
        out.write(block)
        got += len(block)
        window_got += len(block)
        if got > MAX_BYTES:
            raise DatasetError('sent over %d bytes, far more than CIFAR-10' % MAX_BYTES)
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
    for m in members:
        # Plain modes, as a download tool gives its files: no setuid, sticky or world-writable;
        # and this process's owner, where root's tarfile would give the archive's (by name).
        m.mode = DIR_MODE if m.isdir() else MODE
        m.uid, m.gid, m.uname, m.gname = os.geteuid(), os.getegid(), '', ''
    return members


def unpack(archive, datadir):
    """Unpack the archive beside itself, as get_file(untar=True) does, but whole or not at all:
    DatasetError for an archive that is no sound CIFAR-10 tar.gz, WriteFailed (the archive
    kept: it is sound as far as it was read) for a disk that cannot hold the files."""
    folder = os.path.join(datadir, NAME)
    work = tempfile.mkdtemp(prefix='.unpack-', dir=datadir)
    try:
        try:
            with tarfile.open(archive, 'r:gz') as t:
                t.extractall(work, members=safe_members(archive, t))
        # gzip's own complaints are OSErrors without an errno; zlib's are no OSErrors at all.
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            code = getattr(e, 'errno', None)
            if code in WRITE_ERRNOS:
                raise WriteFailed('cannot unpack %s into %s: %s; the verified archive is kept, '
                                  'so free space (or raise ulimit -f) and rerun to unpack it'
                                  % (archive, datadir, e.strerror)) from None
            if code is not None:
                raise  # not the archive's fault (the open-file limit): as_failure judges it
            raise DatasetError('%s is not a readable tar.gz (%s)' % (archive, e)) from None
        for name in TRAIN_FILES + [TEST_FILE]:
            problem = check_batch(os.path.join(work, NAME, name))
            if problem:
                raise DatasetError('%s in %s %s' % (name, archive, problem))
        os.rename(os.path.join(work, NAME), folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def settings(url=None, md5=None):
    """(url, md5) from the arguments, $ALLCONVNET_CIFAR10_URL and $ALLCONVNET_CIFAR10_MD5, or
    the CIFAR-10 page's; a malformed one is refused before anything is downloaded."""
    url = url or os.environ.get(URL_VARIABLE) or ORIGIN
    md5 = md5 or os.environ.get(MD5_VARIABLE) or MD5
    if not MD5_FORM.fullmatch(md5):
        raise DatasetError('%s=%r is not an MD5 checksum (32 hexadecimal digits)'
                           % (MD5_VARIABLE, md5))
    fault = url_fault(url)
    if fault:
        raise DatasetError('%s=%r is not an http://, https:// or file:// address of an archive: '
                           '%s' % (URL_VARIABLE, url, fault))
    return url, md5.lower()


HOST_LABEL = re.compile(r'[A-Za-z0-9_-]{1,63}')


def url_fault(url):
    """Why urllib could not fetch `url` as it is written, or None. Whatever passes here reaches
    the connection: http.client sends only ASCII (and would turn a host into IDNA), and takes
    neither a port out of range nor a user:password@ (as a port)."""
    if not url.isprintable() or ' ' in url:
        return 'it holds a space or a control character'
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return 'an unclosed [ in its host'
    if parts.scheme not in ('http', 'https', 'file'):
        return 'its scheme is none of these'
    if not parts.path.strip('/'):
        return 'it names no file'
    if parts.scheme == 'file':
        return None
    if not url.isascii():
        return 'it is not ASCII (percent-encode the path, write a host in its xn-- form)'
    if '@' in parts.netloc:
        return 'urllib sends no user:password@'
    host, _, port = re.fullmatch(r'(\[.*\]|[^:]*)(:(.*))?', parts.netloc, re.S).groups()
    if host.startswith('['):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return '%s is no IPv6 address' % host
    elif not (len(host) <= 253 and all(HOST_LABEL.fullmatch(l) for l in host.split('.'))):
        return 'its host %r is no host name' % host
    if port and not (re.fullmatch(r'[0-9]{1,5}', port) and 0 < int(port) < 65536):
        return 'its port %r is not 1 to 65535' % port
    return None


@contextlib.contextmanager
def cache_lock(datadir):
    """The cache to this process alone: an flock on datadir/LOCK (files.lock_file), waited for
    with a line saying so while another process fetches; what a killed fetch left is then
    removed."""
    def say_wait(holder):
        print('Waiting for %s, which is fetching CIFAR-10 into %s'
              % ('PID ' + holder if holder else 'another process', datadir))
        sys.stdout.flush()
    folder = fd = None
    try:
        folder = open_folder(datadir)
        fd = lock_file(folder, LOCK, os.path.join(datadir, LOCK), wait=say_wait)
        for name in os.listdir(datadir):
            if LEFTOVERS.match(name):
                shutil.rmtree(os.path.join(datadir, name), ignore_errors=True)
                if os.path.lexists(os.path.join(datadir, name)):
                    os.remove(os.path.join(datadir, name))
        yield
    except OSError as e:
        if fd is not None:
            raise  # from the work under the lock, which says what it was
        raise DatasetError('cannot lock the CIFAR-10 cache %s: %s'
                           % (datadir, e.strerror)) from None
    finally:
        if fd is not None:
            unlock_file(folder, LOCK, fd)
        if folder is not None:
            os.close(folder)


def ensure(url=None, md5=None):
    """The unpacked cache folder, downloaded and verified first if it is not there yet.

    `url` and `md5` are settings()'s. An archive already at the cache path (the manual route)
    is verified and unpacked the same way; a downloaded one that fails leaves nothing at the
    cache path, and a start that fails removes the cache folders it created.
    """
    url, md5 = settings(url, md5)
    made = []
    datadir = cache_dir(made)
    folder = os.path.join(datadir, NAME)
    if os.path.exists(folder + '.tar.gz') and os.path.isdir(folder):
        return folder  # load_data() reads it as it is; diagnose() explains a broken one
    try:
        make_folder(datadir, made)
        with cache_lock(datadir):
            return fetch(url, md5, datadir)
    except BaseException:
        for created in reversed(made):
            try:
                os.rmdir(created)
            except OSError:
                break
        raise


def fetch(url, md5, datadir):
    """ensure() with the cache held: download, verify and unpack what is not there yet."""
    folder = os.path.join(datadir, NAME)
    archive = folder + '.tar.gz'
    if os.path.exists(archive) and os.path.isdir(folder):
        return folder  # the process we waited for put it in place
    if os.path.isdir(folder):
        raise DatasetError(
            'found %s but not %s, which Keras 1.2.2 requires before it reads the folder '
            '(otherwise it downloads again); create it with: tar -C %s -czf %s %s'
            % (folder, archive, datadir, archive, NAME))
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
            os.chmod(part, MODE)  # mkstemp's 0600 would keep a shared cache from others
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
        if downloaded:  # a second download would bring the same bytes
            raise DatasetError('%s; nothing was kept. It has the expected MD5, so %s serves a '
                               'broken archive: fix that mirror, or unset %s and %s to fetch '
                               'from the CIFAR-10 page' % (e, url, URL_VARIABLE, MD5_VARIABLE))
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
  4    the disk filled or a file-size limit was hit (ulimit -f); a verified archive is kept
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
