"""Files written whole or not at all, and read back with a one-line reason when they are bad.

A file goes to a temporary name beside its final one, is fsynced, renamed over the final name,
and the folder is fsynced, so that after a crash or a power cut the final name holds the old
file or the new one, never a part. A failed write (a full disk) removes the temporary file and
raises WriteFailed naming the file, with the old file intact.

HDF5 files are built in memory (h5py writes to a BytesIO since 2.9) and written like any other:
libhdf5 crashes the process (exit 139) once a write to its open file has failed, and Keras
1.2.2's model.save leaves that file open when it raises.
"""
import hashlib
import io
import json
import os
import tempfile

from runkit.errors import Refused, WriteFailed


def fsync_folder(folder):
    fd = os.open(folder or '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes its files 0600; a run's files get the mode open() would give them.
MODE = 0o666 & ~_umask()


def write_via(write, path):
    """Call write(tmp_path) for a temporary file beside `path`, then put it at `path` whole;
    on any failure the temporary file goes and the old `path` stays (WriteFailed for OSError)."""
    folder, name = os.path.split(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=folder or '.')
        os.close(fd)
        os.chmod(tmp, MODE)
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_folder(folder)
    except OSError as e:
        raise WriteFailed('cannot write %s: %s' % (path, e.strerror or e)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def write_whole(path, data):
    """Put `data` (bytes or str) at `path` whole, or raise WriteFailed and change nothing."""
    if isinstance(data, str):
        data = data.encode('utf8')

    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    write_via(write, path)


def hdf5_bytes(write):
    """The bytes of the HDF5 file that write(h5py-compatible BytesIO) writes."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def save_model(model, path):
    """model.save(path), whole or not at all."""
    write_whole(path, hdf5_bytes(lambda buffer: model.save(buffer, overwrite=True)))


def write_json(path, data):
    write_whole(path, json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')


def read_json_object(path):
    """The JSON object (dict) in `path`; Refused, saying why, when it is missing or not one."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise Refused('%s does not exist' % path) from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise Refused('cannot read %s (%s)' % (path, e)) from None
    if not isinstance(data, dict):
        raise Refused('%s is not a run record (a JSON %s, not an object)'
                      % (path, type(data).__name__))
    return data


def digest(path, algorithm='md5'):
    """The hex digest of the file at `path`, read a MiB at a time."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
