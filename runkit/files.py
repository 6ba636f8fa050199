"""Files written whole or not at all, and read back with a one-line reason when they are bad.

A file goes to a temporary name beside its final one (.NAME.XXXXXXXX.tmp), is fsynced,
renamed over the final name, and the folder is fsynced, so that after a crash or a power cut
the final name holds the old file or the new one, never a part. A failed write (a full disk,
a file-size limit) removes the temporary file and raises WriteFailed naming the file, with
the old file intact. Every name is opened relative to its folder's descriptor and never
through a symbolic link (O_NOFOLLOW): a link planted at a final name is replaced, not followed.

HDF5 files are built in memory (h5py writes to a BytesIO since 2.9) and written like any other:
libhdf5 crashes the process (exit 139) once a write to its open file has failed, and Keras
1.2.2's model.save leaves that file open when it raises.
"""
import binascii
import errno
import fcntl
import hashlib
import io
import json
import os
import stat

from runkit.errors import Refused, WriteFailed

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# run.json is a few kB; anything near this is not one of ours, and json.load would hold it all.
JSON_LIMIT = 1 << 20
JSON_DEPTH = 32


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# A run's files get the mode open() would give them (0644 under umask 022), folders mkdir's.
MODE, DIR_MODE = 0o666 & ~_umask(), 0o777 & ~_umask()


def make_folders(path, made):
    """Create `path` and its missing parents, appending each new one to `made` as it is made;
    OSError (its filename the folder at fault) when one cannot be, or is a file."""
    missing = []
    while not os.path.isdir(path):
        if os.path.lexists(path):
            raise NotADirectoryError(errno.ENOTDIR, 'is not a folder', path)
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        os.mkdir(folder)
        made.append(folder)


class Busy(Exception):
    """lock_file's lock is held by another process; `holder` is the PID it wrote, or None."""

    def __init__(self, holder):
        super().__init__(holder)
        self.holder = holder


def lock_file(dir_fd, name, shown, wait=None):
    """An flock held on `name` in the folder `dir_fd`, as the descriptor, with this process's
    PID written in it. A held lock raises Busy, or with `wait` calls wait(holder) and waits.
    The holder removes the file when it lets go, so whoever opened it before locks an inode
    that is no longer there: it finds that out and locks anew. Refused for a link or anything
    but a regular file at `name`; OSError where the folder cannot be written."""
    for _ in range(100):
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | NOFOLLOW, 0o644,
                         dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Refused('%s is a symbolic link, which is never written through: remove '
                              'it' % shown) from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refused('%s is not a regular file: remove it' % shown)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.read(fd, 32).decode(errors='replace').strip() or None
                if wait is None:
                    raise Busy(holder) from None
                wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_ino == \
                    os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, b'%d\n' % os.getpid())
                return fd
            os.close(fd)
        except BaseException:
            os.close(fd)
            raise
    raise Refused('cannot lock %s: it keeps changing' % shown)


def unlock_file(dir_fd, name, fd):
    """Let go of lock_file's lock: the file goes first, then the lock."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
    os.close(fd)


def open_folder(folder):
    """A descriptor of `folder` for put() and read_at()."""
    return os.open(folder or '.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def put(dir_fd, name, data, shown):
    """Put `data` at `name` in the folder open as `dir_fd`, whole; `shown` names it in errors."""
    if isinstance(data, str):
        data = data.encode('utf8')
    tmp = None
    try:
        while tmp is None:
            candidate = '.%s.%s.tmp' % (name, binascii.hexlify(os.urandom(4)).decode())
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, MODE,
                             dir_fd=dir_fd)
            except FileExistsError:
                continue
            tmp = candidate
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
        os.fsync(dir_fd)
    except OSError as e:
        raise WriteFailed('cannot write %s: %s' % (shown, e.strerror or e)) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass


def read_at(dir_fd, name, shown, limit=None):
    """The bytes of `name` in the folder `dir_fd`, never through a link; Refused when it is a
    link, not a regular file, or over `limit` bytes. FileNotFoundError when it is missing."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused('%s is a symbolic link; a run never reads or writes through one'
                          % shown) from None
        if isinstance(e, FileNotFoundError):
            raise
        raise Refused('cannot read %s: %s' % (shown, e.strerror)) from None
    with os.fdopen(fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused('%s is not a regular file' % shown)
        data = f.read(limit + 1 if limit else -1)
    if limit and len(data) > limit:
        raise Refused('%s is over %d bytes, far larger than any the project writes'
                      % (shown, limit))
    return data


def write_whole(path, data):
    """Put `data` (bytes or str) at `path` whole, or raise WriteFailed and change nothing."""
    try:
        fd = open_folder(os.path.dirname(path))
    except OSError as e:
        raise WriteFailed('cannot write %s: %s' % (path, e.strerror or e)) from None
    try:
        put(fd, os.path.basename(path), data, path)
    finally:
        os.close(fd)


def hdf5_bytes(write):
    """The bytes of the HDF5 file that write(h5py-compatible BytesIO) writes."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def model_bytes(model):
    """model.save's HDF5 file, in memory."""
    return hdf5_bytes(lambda buffer: model.save(buffer, overwrite=True))


def json_text(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str) + '\n'


def write_json(path, data):
    write_whole(path, json_text(data))


def depth(value):
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def json_object(data, shown):
    """The JSON object (dict) in the bytes `data`; Refused, saying why, when it is not one or
    nests deeper than any record of ours."""
    try:
        value = json.loads(data.decode('utf8'))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise Refused('cannot read %s (%s)' % (shown, type(e).__name__ if isinstance(
            e, RecursionError) else e)) from None
    if not isinstance(value, dict):
        raise Refused('%s is not a run record (a JSON %s, not an object)'
                      % (shown, type(value).__name__))
    if depth(value) > JSON_DEPTH:
        raise Refused('%s nests deeper than %d levels: not a run record' % (shown, JSON_DEPTH))
    return value


def read_json_object(path):
    """The JSON object in the file at `path`, for a program that only reads a run (predict.py,
    tools/): Refused, saying why, when it is missing, too large or not an object."""
    try:
        with open(path, 'rb') as f:
            data = f.read(JSON_LIMIT + 1)
    except FileNotFoundError:
        raise Refused('%s does not exist' % path) from None
    except OSError as e:
        raise Refused('cannot read %s (%s)' % (path, e.strerror or e)) from None
    if len(data) > JSON_LIMIT:
        raise Refused('%s is over %d bytes, far larger than any the project writes'
                      % (path, JSON_LIMIT))
    return json_object(data, path)


def digest(path, algorithm='md5'):
    """The hex digest of the file at `path`, read a MiB at a time."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
