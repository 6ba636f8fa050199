"""LOGDIR, the folder a run writes: the one way to name, read, write, replace or remove its files.

One process writes a logdir at a time: it holds an flock on LOGDIR/.lock from before the data
is read until it exits, and the kernel releases it when the process dies. The folder is opened
once, and every file in it is opened relative to that descriptor and never through a symbolic
link (runkit/files.py), so a link planted in LOGDIR is refused or replaced, never followed. A
new run is refused where any run file is already, unless --overwrite; a folder the run created
and left nothing in is removed again. Every file is written whole, and history.csv gains one
fsynced row per finished epoch, so a crash loses at most the epoch that was running.
"""
import errno
import os
import re

from runkit import errors, files
from runkit.errors import Refused, WriteFailed

RUN_JSON, HISTORY, HISTORY_CALLBACK = 'run.json', 'history.csv', 'history_callback.csv'
CHECKPOINT, MODEL, STATE = 'weights.best.hdf5', 'model.h5', 'state.h5'
CURVES, PREPROCESSING, TRACEBACK = 'curves.png', 'preprocessing.npz', 'traceback.txt'
RUN_FILES = [RUN_JSON, HISTORY, HISTORY_CALLBACK, CHECKPOINT, MODEL, STATE, CURVES,
             PREPROCESSING, TRACEBACK]
HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']
LOCK = '.lock'
# The temporary files of writes a killed run left (runkit/files.py names them).
STALE = re.compile(r'^\.(%s)\.[0-9a-f]+\.tmp$' % '|'.join(map(re.escape, RUN_FILES)))


class Logdir:
    """A run's folder. Reading needs nothing; writing needs the folder claimed (claim())."""

    def __init__(self, path):
        self.path, self.created, self.fd, self.lock_fd = path, [], None, None
        # run.json's record while a run writes it (runkit/records.py keeps it up to date).
        self.record = None

    def __str__(self):
        return self.path

    def file(self, name):
        """The path of `name` in the folder, for messages and for other programs."""
        return os.path.join(self.path, name)

    def folder(self):
        if self.fd is None:
            try:
                self.fd = files.open_folder(self.path)
            except OSError as e:
                raise Refused('cannot open %s: %s' % (self.path, e.strerror)) from None
        return self.fd

    def exists(self, name):
        try:
            os.stat(name, dir_fd=self.folder(), follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def size(self, name):
        """The size of `name` in bytes, or None when it is missing."""
        try:
            return os.stat(name, dir_fd=self.folder(), follow_symlinks=False).st_size
        except FileNotFoundError:
            return None

    def files(self):
        return [n for n in RUN_FILES if self.exists(n)]

    def read(self, name, limit=None):
        """The bytes of `name`; FileNotFoundError when it is missing, Refused when it is a
        link, not a file, or over `limit`."""
        return files.read_at(self.folder(), name, self.file(name), limit)

    def read_json(self, name=RUN_JSON):
        try:
            return files.json_object(self.read(name, files.JSON_LIMIT), self.file(name))
        except FileNotFoundError:
            raise Refused('%s does not exist' % self.file(name)) from None

    def write(self, name, data):
        """Put `data` (bytes or str) at `name` whole (runkit/files.py)."""
        assert self.lock_fd is not None, 'write to an unclaimed logdir'
        files.put(self.folder(), name, data, self.file(name))

    def write_json(self, name, data):
        self.write(name, files.json_text(data))

    def write_traceback(self, text):
        """LOGDIR/traceback.txt, for an unexpected error (runkit/errors.py); its path."""
        self.write(TRACEBACK, text)
        return self.file(TRACEBACK)

    def update_record(self, **fields):
        """run.json with `fields` changed."""
        self.record.update(fields)
        self.write_json(RUN_JSON, self.record)

    def append(self, name, data):
        """Add `data` to the end of `name` in one fsynced write; a write that fails part way
        (a full disk, a file-size limit) is cut back, so the file ends where it did."""
        assert self.lock_fd is not None, 'write to an unclaimed logdir'
        if isinstance(data, str):
            data = data.encode('utf8')
        try:
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | files.NOFOLLOW,
                         files.MODE, dir_fd=self.folder())
        except OSError as e:
            raise WriteFailed('cannot write %s: %s' % (self.file(name), e.strerror)) from None
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as e:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise WriteFailed('cannot write %s: %s' % (self.file(name), e.strerror)) from None
        finally:
            os.close(fd)

    def remove(self, name):
        try:
            os.unlink(name, dir_fd=self.folder())
        except FileNotFoundError:
            pass

    def remove_run_files(self):
        for name in RUN_FILES:
            self.remove(name)

    # -- claiming -----------------------------------------------------------------------------

    def make(self):
        """Create the folder and any missing parents, remembering which are new."""
        try:
            files.make_folders(os.path.abspath(self.path), self.created)
        except OSError as e:
            raise Refused('cannot create --logdir %s: %s%s' % (
                self.path, '%s ' % e.filename if e.errno == errno.ENOTDIR else '',
                e.strerror)) from None

    def lock(self):
        """Hold LOGDIR/.lock, or Refused naming the process that holds it."""
        try:
            self.lock_fd = files.lock_file(self.folder(), LOCK, self.file(LOCK))
        except files.Busy as e:
            raise Refused('%s is in use by a run that is still going (PID %s): wait for it to '
                          'end, stop it, or choose another --logdir'
                          % (self.path, e.holder or 'unknown')) from None
        except OSError as e:
            raise Refused('cannot write to --logdir %s: %s' % (self.path, e.strerror)) from None
        errors.on_exit(self.release)
        errors.traceback_goes_to(self)

    def remove_stale_temporaries(self):
        """With the lock held, nobody else is writing them."""
        for name in os.listdir(self.folder()):
            if STALE.match(name):
                try:
                    os.unlink(name, dir_fd=self.folder())
                except OSError:
                    pass

    def release(self):
        """At exit: the lock goes, and so do the folders this run created if it left nothing."""
        if self.lock_fd is None:
            return
        files.unlock_file(self.folder(), LOCK, self.lock_fd)
        self.lock_fd = None
        errors.traceback_goes_to(None)
        if not self.files():
            for folder in reversed(self.created):
                try:
                    os.rmdir(folder)  # fails, and stops, at a folder that is not empty
                except OSError:
                    break


def describe(logdir, names):
    """What a logdir holds, for a refusal: the status run.json gives and the files."""
    try:
        status = logdir.read_json().get('status')
        state = 'a run with status %r' % (status,) if status else 'a run.json without a status'
    except Refused:
        state = 'an unreadable run.json' if logdir.exists(RUN_JSON) else 'no run.json'
    return '%s and %s' % (state, ', '.join(n for n in names if n != RUN_JSON) or 'no other file')


def claim(path, overwrite, resuming=False):
    """The Logdir a run may write, held for this process: refused when another process holds
    it and, for a new run, when it holds any run file unless `overwrite`, which then deletes
    them. The refusal says what is there and what to do."""
    from runkit.records import command
    if not path or not path.strip():
        raise Refused('--logdir and --resume need a folder, not an empty string')
    logdir = Logdir(path)
    if resuming and not os.path.isdir(path):
        raise Refused('--resume %s: no such folder' % path)
    logdir.make()
    logdir.lock()
    logdir.remove_stale_temporaries()
    names = logdir.files()
    if resuming or not names:
        return logdir
    if not overwrite:
        status = None
        try:
            status = logdir.read_json().get('status')
        except Refused:
            pass
        if status == 'running':
            what = ('a run that crashed or was killed (run.json says running, but no process '
                    'holds the folder)')
        else:
            what = describe(logdir, names)
        resumable = STATE in names and status not in ('finished', None)
        hint = ('continue it with: %s; or ' % command(['--resume', path])) if resumable else ''
        raise Refused('%s holds %s; %spass --overwrite to replace it, or choose another '
                      '--logdir' % (path, what, hint))
    for name in names:
        try:
            logdir.remove(name)
        except OSError as e:
            raise Refused('--overwrite: cannot delete %s: %s' % (logdir.file(name), e.strerror))
    return logdir


def hold(args):
    """(the Logdir, args, stored run.json or None, the epoch to continue after), with the
    folder held for this process. A resumed run's arguments are its run.json's."""
    from runkit import resume  # h5py and Keras: not for a refused folder
    from runkit.cli import build_parser, parse_args
    if args.resume is None:
        return claim(args.logdir, args.overwrite), args, None, 0
    logdir = claim(args.resume, overwrite=False, resuming=True)
    stored, epoch = resume.check(logdir)

    def refuse(message):
        raise Refused('--resume %s: the arguments in its run.json are refused (%s)'
                      % (args.resume, message))
    parser = build_parser()
    parser.error = refuse
    resumed = parse_args(stored['argv'], parser)
    if resumed.resume is not None:
        refuse('they hold --resume itself')
    resumed.resume = resumed.logdir = args.resume
    resumed.quiet = resumed.quiet or args.quiet
    return logdir, resumed, stored, epoch
