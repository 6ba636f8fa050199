"""A run's logdir and its record: who may write there, run.json through the run's life, and
and the command that runs it again.

One process writes a logdir at a time: it holds an flock on LOGDIR/.lock from before the data
is read until it exits, and the kernel releases it when the process dies. A new run is refused
where any run file is already, unless --overwrite; a folder the run created and left nothing
in is removed again. Every file is written whole (runkit/files.py), and history.csv gains one
fsynced row per finished epoch, so a crash loses at most the epoch that was running.
"""
import datetime
import errno
import fcntl
import os
import re
import shlex
import shutil
import signal
import sys
from contextlib import contextmanager

from runkit.errors import (Diverged, Failure, Interrupted, Refused, WriteFailed, on_exit, one_line,
                          signals_surfaced)
from runkit.files import read_json_object, write_json, write_via
from runkit.provenance import git_commit, machine, versions

LOCK = '.lock'

HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']
RUN_FILES = ['run.json', 'history.csv', 'history_callback.csv', 'weights.best.hdf5', 'model.h5',
             'state.h5', 'curves.png', 'preprocessing.npz', 'traceback.txt']


def command(argv):
    """The shell command that runs allconvnet.py with `argv` the way this process was run."""
    if os.environ.get('ALLCONVNET_IMAGE'):
        # Inside the image: the README's run line, whose entry point is allconvnet.py.
        return ' '.join(['docker run --rm --gpus all -v "$PWD/logs:/app/logs" -v '
                         'allconvnet-data:/home/allconv/.keras/datasets',
                         os.environ['ALLCONVNET_IMAGE']] + [shlex.quote(a) for a in argv])
    python = sys.executable
    if shutil.which('python') and os.path.samefile(shutil.which('python'), python):
        python = 'python'
    elif os.path.abspath(python).startswith(os.getcwd() + os.sep):
        python = os.path.relpath(python)
    return ' '.join(shlex.quote(a) for a in [python, 'allconvnet.py'] + list(argv))



def utc_now():
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + 'Z'


class Logdir:
    """The folder a run writes, held with an flock for as long as this process lives."""

    def __init__(self, path):
        self.path, self.created, self.fd = path, [], None

    def files(self):
        return [n for n in RUN_FILES if os.path.lexists(os.path.join(self.path, n))]

    def make(self):
        """Create the folder and any missing parents, remembering which are new."""
        missing, folder = [], os.path.abspath(self.path)
        while not os.path.isdir(folder):
            if os.path.lexists(folder):
                raise Refused('cannot create --logdir %s: %s is not a folder' % (self.path, folder))
            missing.append(folder)
            folder = os.path.dirname(folder)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except OSError as e:
                raise Refused('cannot create --logdir %s: %s' % (self.path, e.strerror))
            self.created.append(folder)

    def lock(self):
        """Hold LOGDIR/.lock, or Refused naming the process that holds it."""
        path = os.path.join(self.path, LOCK)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise Refused('cannot write to --logdir %s: %s' % (self.path, e.strerror))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.read(fd, 32).decode(errors='replace').strip() or 'unknown'
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise Refused('cannot lock --logdir %s: %s' % (self.path, e.strerror))
                raise Refused('%s is in use by a run that is still going (PID %s): wait for it '
                              'to end, stop it, or choose another --logdir' % (self.path, holder))
            # The holder before us may have removed the file after we opened it: lock anew.
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)
        else:
            raise Refused('cannot lock --logdir %s: its lock file keeps changing' % self.path)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, b'%d\n' % os.getpid())
        except OSError as e:
            os.close(fd)
            raise Refused('cannot write to --logdir %s: %s' % (self.path, e.strerror))
        self.fd = fd
        on_exit(self.release)

    def remove_stale_temporaries(self):
        """The temporary files of writes a killed run left (runkit/files.py names them
        .NAME.XXXX.tmp); with the lock held, nobody else is writing them."""
        stale = re.compile(r'^\.(%s)\..+\.tmp$' % '|'.join(map(re.escape, RUN_FILES)))
        for name in os.listdir(self.path):
            if stale.match(name):
                try:
                    os.remove(os.path.join(self.path, name))
                except OSError:
                    pass

    def release(self):
        """At exit: the lock goes, and so do the folders this run created if it left nothing.
        (Whoever opened the lock file before it went finds another inode there and locks
        anew, in lock().)"""
        if self.fd is None:
            return
        try:
            os.remove(os.path.join(self.path, LOCK))
            if not self.files():
                for folder in reversed(self.created):
                    os.rmdir(folder)  # fails, and stops, at a folder that is not empty
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def describe(path, names):
    """What a logdir holds, for a refusal: the status run.json gives and the files."""
    record = os.path.join(path, 'run.json')
    try:
        status = read_json_object(record).get('status')
        state = 'a run with status %r' % status if status else 'a run.json without a status'
    except Refused:
        state = 'an unreadable run.json' if os.path.exists(record) else 'no run.json'
    return '%s and %s' % (state, ', '.join(n for n in names if n != 'run.json') or 'no other file')


def claim(path, overwrite, resuming=False):
    """The Logdir a run may write, held for this process: refused when another process holds
    it and, for a new run, when it holds any run file unless `overwrite`, which then deletes
    them. The refusal says what is there and what to do."""
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
            status = read_json_object(os.path.join(path, 'run.json')).get('status')
        except Refused:
            pass
        if status == 'running':
            what = ('a run that crashed or was killed (run.json says running, but no process '
                    'holds the folder)')
        else:
            what = describe(path, names)
        resumable = 'state.h5' in names and status not in ('finished', None)
        hint = ('continue it with: %s; or ' % command(['--resume', path])) if resumable else ''
        raise Refused('%s holds %s; %spass --overwrite to replace it, or choose another '
                      '--logdir' % (path, what, hint))
    for name in names:
        try:
            os.remove(os.path.join(path, name))
        except OSError as e:
            raise Refused('--overwrite: cannot delete %s: %s'
                          % (os.path.join(path, name), e.strerror))
    return logdir


def start_run(argv, args, resumed, recipe, overridden, placed, model, initial_epoch=0):
    """run.json's record of what really trains (written at once), or the resumed run's record
    brought up to date."""
    compiled = model.optimizer
    string = recipe['optimizer']['compile_with'] == 'string'
    run = resumed or {
        'argv': list(sys.argv[1:] if argv is None else argv), 'args': vars(args),
        'started': utc_now(), 'seed': args.seed, 'git_commit': git_commit(),
        'versions': versions(), 'machine': machine(), 'last_epoch': 0}
    if resumed:
        run.setdefault('resumed_at_epoch', []).append(initial_epoch)
        run['last_epoch'] = initial_epoch
    run.update(status='running', towers=placed.towers, preprocessing=recipe['preprocessing'],
               xla=placed.xla, tf_build=placed.build, threads=placed.threads,
               devices=placed.devices, newer_gpu_override=placed.newer_gpu_override,
               recipe_name=args.recipe, recipe=recipe, overridden=overridden,
               logdir=args.logdir,
               optimizer={'class_name': type(compiled).__name__, 'config': compiled.get_config(),
                          'compiled_with': "string 'sgd'" if string else 'sgd object',
                          'note': OPTIMIZER_NOTES[string]})
    for key in ('error', 'signal', 'ended'):
        run.pop(key, None)
    write_json(os.path.join(args.logdir, 'run.json'), run)
    return run


OPTIMIZER_NOTES = {
    True: "the blog builds SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True) but compiles "
          "with optimizer='sgd', so this config is what really trains",
    False: "the recipe's SGD object; lr is the starting rate of any lr_schedule"}


def draw_curves(logdir, run=None):
    # Every run leaves curves.png beside its history; a failed plot is only a warning.
    if os.path.exists(os.path.join(logdir, 'history.csv')):
        from runkit.plot import plot_run  # matplotlib: only once a run has curves
        try:
            plot_run(logdir, run)
        except Exception as e:
            print('Could not draw %s/curves.png: %s' % (logdir, one_line(e)), file=sys.stderr)


def update_run(run, **fields):
    run.update(fields)
    write_json(os.path.join(run['logdir'], 'run.json'), run)


def kept(run):
    """What a stopped run can say it kept: (finished epochs, the sentence)."""
    done = run.get('last_epoch') or 0
    logdir = run['logdir']
    if done and os.path.exists(os.path.join(logdir, 'state.h5')):
        return done, ('epochs 1-%d are kept in %s; continue with: %s'
                      % (done, logdir, command(['--resume', logdir])))
    return 0, 'no epoch had finished'


def record_end(run, status, **fields):
    """Record how the run ended; a record that cannot be written is said on stderr."""
    try:
        update_run(run, status=status, ended=utc_now(), **fields)
    except Failure as e:
        print('allconvnet.py: warning: run.json could not record that the run %s: %s'
              % (status, e), file=sys.stderr)
        return False
    return True


@contextmanager
def outcome(run):
    """Around training: however it ends, run.json says so, and the exception that ends it
    carries the one line that says what was kept."""
    try:
        with signals_surfaced():
            yield
    except Interrupted as e:
        done, said = kept(run)
        name = signal.Signals(e.signum).name
        if not done and not run.get('resumed_at_epoch'):
            # Nothing to resume: the folder goes back to as it was, and the same command works.
            for name_ in RUN_FILES:
                path = os.path.join(run['logdir'], name_)
                if os.path.exists(path):
                    os.remove(path)
            e.message = ('interrupted by %s before the first epoch finished; nothing was kept. '
                         'Start again with: %s' % (name, command(run['argv'])))
        else:
            record_end(run, 'interrupted', signal=e.signum)
            draw_curves(run['logdir'])
            e.message = 'interrupted by %s; %s' % (name, said)
        raise
    except Diverged as e:
        record_end(run, 'diverged', error=str(e))
        draw_curves(run['logdir'])
        done, said = kept(run)
        raise Diverged('%s; %s' % (e, 'history.csv has the %d finished epochs' % done if done
                                   else 'no epoch had finished, so nothing can be resumed')
                       ) from None
    except WriteFailed as e:
        recorded = record_end(run, 'failed', error=str(e))
        raise WriteFailed('%s; %s%s' % (e, kept(run)[1], '' if recorded else
                                        ' (run.json could not record it)')) from None
    except OSError as e:  # a write outside runkit/files.py: upstream's history dump
        failed = WriteFailed('cannot write %s: %s' % (e.filename or 'a file', e.strerror or e))
        recorded = record_end(run, 'failed', error=str(failed))
        raise WriteFailed('%s; %s%s' % (failed, kept(run)[1], '' if recorded else
                                        ' (run.json could not record it)')) from None
    except Exception as e:
        record_end(run, 'failed', error='%s: %s' % (type(e).__name__, one_line(e)))
        e.logdir = run['logdir']
        raise


def finish_run(run):
    # The plot first: a run killed while drawing says running, and --resume finishes it.
    draw_curves(run['logdir'], dict(run, status='finished'))
    update_run(run, status='finished', ended=utc_now())
    print('Finished: %s' % run['logdir'])
