"""How every entry point starts and ends: one line on stderr and an exit code, never a traceback.

allconvnet.py, predict.py, `python -m runkit.dataset` and tools/ call prepare() before they
import TensorFlow and end through exit_code(). Kept free of Keras and TensorFlow, so that a
usage error is instant. docs/failures.md lists the codes.
"""
import atexit
import errno
import importlib.abc
import importlib.util
import io
import os
import resource
import shutil
import signal
import sys
import tempfile
import traceback
from contextlib import contextmanager, redirect_stderr


class Failure(Exception):
    """A run that cannot start or go on; str() is the line the user reads, folded to one line
    whatever went into it (a redirect loop's reason or an HDF5 error spans several)."""
    exit_code = 1

    def __init__(self, message):
        super().__init__(one_line(message))


class Refused(Failure):
    """Bad input, a missing or broken file, a logdir in use: nothing was started or changed."""
    exit_code = 2


class Diverged(Failure):
    """The training loss became NaN or infinite."""
    exit_code = 3


class WriteFailed(Failure):
    """A file could not be written whole (a full disk, an I/O error); the old one is intact."""
    exit_code = 4


class OutOfResource(Failure):
    """Memory, or another limit of the process (open files), ran out."""
    exit_code = 5


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; `signum` says which, `message` what was kept."""

    def __init__(self, signum, message=None):
        super().__init__(signum)
        self.signum, self.message = signum, message


# SIGHUP: a closed terminal or ssh session; SIGTERM: `docker stop`, a batch scheduler.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_state = {'hold': False, 'pending': None, 'stopping': False, 'logdir': None, 'feeder': None}


def environment():
    """Before TensorFlow is imported: TF's log level, and Keras 1.2.2 configured apart from the
    user's ~/.keras (KerasOfItsOwn); TF 1.15's INFO lines bury the progress bar."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
    if not any(isinstance(f, KerasOfItsOwn) for f in sys.meta_path):
        sys.meta_path.insert(0, KerasOfItsOwn())


class KerasOfItsOwn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The first `import keras` and the first `import tensorflow` (its tf.keras) run with HOME
    in a fresh temporary folder and KERAS_BACKEND set to tensorflow, both put back afterwards.
    Both read ~/.keras/keras.json at import and assert on what Keras 2 and 3 write there
    ("backend": "jax", "floatx": "bfloat16"), Keras 1.2.2 also on an empty file that another
    first run is still writing; both write one where there is none, and take floatx and
    epsilon from it. So they get their own defaults, and the user's ~/.keras is never read or
    written by them. (The CIFAR-10 cache stays ~/.keras/datasets: get_file looks at HOME when
    it is called.) Keras' "Using TensorFlow backend." line is not one of ours either."""
    NAMES = ('keras', 'tensorflow')

    def __init__(self):
        self.inner, self.active = {}, False

    def find_spec(self, name, path=None, target=None):
        if name not in self.NAMES or name in self.inner or self.active:
            return None
        # find_spec below asks the finders again, this one included; and tensorflow imported
        # by keras is already inside the folder.
        self.active = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.active = False
        if spec is not None:
            self.inner[name], spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.inner[spec.name].create_module(spec)

    def exec_module(self, module):
        saved = {k: os.environ.get(k) for k in ('HOME', 'KERAS_BACKEND')}
        try:
            home = tempfile.mkdtemp(prefix='allconvnet-keras-')
        except OSError as e:
            raise Refused('no writable temporary folder for Keras\' configuration (%s); set '
                          'TMPDIR to one' % e.strerror) from None
        said = io.StringIO()
        os.environ.update(HOME=home, KERAS_BACKEND='tensorflow')
        self.active = True
        try:
            with redirect_stderr(said):
                self.inner[module.__name__].exec_module(module)
        except BaseException:
            sys.stderr.write(said.getvalue().replace('Using TensorFlow backend.\n', ''))
            raise
        finally:
            self.active = False
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(home, ignore_errors=True)
        if all(n in sys.modules for n in self.NAMES) and self in sys.meta_path:
            sys.meta_path.remove(self)


class Console:
    """sys.stdout or sys.stderr, whose failures drop the output instead of ending the program:
    a pipe whose reader left (`| head`), /dev/full, a stream closed at start (`>&-`, cron).
    The work and its exit code stay what they would be; the run's records are its files."""

    def __init__(self, stream, fd, prog):
        self.stream, self.fd, self.prog = stream, fd, prog

    def drop(self, e):
        self.stream = None
        # Python flushes the original stream again at exit, and C code writes to the fd.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self.fd)
        os.close(null)
        if self.fd == 1 and e is not None:
            warn(self.prog, 'standard output failed (%s); console output is dropped from here '
                 'on, the work goes on' % (getattr(e, 'strerror', None) or e))

    def write(self, text):
        if self.stream is not None:
            try:
                return self.stream.write(text)
            except (OSError, ValueError) as e:
                self.drop(e)
        return len(text)

    def flush(self):
        if self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as e:
                self.drop(e)

    def isatty(self):
        return self.stream is not None and self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream or sys.__stderr__ or io.StringIO(), name)


def guard_streams(prog):
    """Standard streams that cannot break the program: a closed fd 0-2 gets /dev/null, so that
    no file the program opens becomes one (TensorFlow's C++ logs write to fd 2 whatever it
    is), and stdout and stderr become Consoles."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name, fd in (('stdout', 1), ('stderr', 2)):
        stream = getattr(sys, name)
        if hasattr(stream, 'reconfigure'):
            # A path the locale cannot encode (LC_ALL=C, PYTHONIOENCODING=ascii) is escaped.
            stream.reconfigure(errors='backslashreplace')
        if not isinstance(stream, Console):
            setattr(sys, name, Console(stream, fd, prog))
            if stream is None:
                getattr(sys, name).drop(None)


# Below this `ulimit -v`, TensorFlow 1.15's C++ code aborts (SIGABRT, exit 134) where Python
# cannot catch it: measured at 1.0 and 1.5 GB (std::system_error, Xbyak's "can't alloc").
MIN_ADDRESS_SPACE = 2 << 30


def prepare(prog, tensorflow=True):
    """Before TensorFlow loads: the streams guarded, environment(), a file-size limit
    (ulimit -f) made a failed write like a full disk instead of SIGXFSZ's silent death, a
    deleted working folder and (for a program that loads `tensorflow`) an address space too
    small to start refused, and a signal while the imports run (seconds) ends the
    process in one line, as nothing has been written yet."""
    guard_streams(prog)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        os.getcwd()
    except OSError:
        say(prog, 'error', 'the working folder no longer exists; cd to one that does')
        sys.exit(Refused.exit_code)
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if tensorflow and limit != resource.RLIM_INFINITY and limit < MIN_ADDRESS_SPACE:
        say(prog, 'error', 'the address-space limit (ulimit -v) is %d MiB; TensorFlow needs at '
            'least %d MiB to start' % (limit >> 20, MIN_ADDRESS_SPACE >> 20))
        sys.exit(OutOfResource.exit_code)
    environment()

    def handler(signum, frame):
        os.write(2, ('\n%s: interrupted by %s while starting; nothing was written\n'
                     % (prog, signal.Signals(signum).name)).encode())
        os._exit(128 + signum)
    for signum in SIGNALS:
        signal.signal(signum, handler)


def stop_on_signals():
    """From now on SIGINT, SIGTERM and SIGHUP raise Interrupted in the main thread, once: a
    later signal waits while the first one's clean-up records what was kept."""
    def handler(signum, frame):
        if _state['stopping']:
            return
        if _state['hold']:
            _state['pending'] = signum
            return
        _state['stopping'] = True
        raise Interrupted(signum)
    for signum in SIGNALS:
        signal.signal(signum, handler)


@contextmanager
def signals_surfaced():
    """A handler that raises while C code has called back into Python (TensorFlow's SWIG
    wrappers do, e.g. TF_NewBuffer) surfaces as "SystemError: ... returned a result with an
    error set", caused by the Interrupted: raise the Interrupted itself."""
    try:
        yield
    except SystemError as e:
        if isinstance(e.__cause__, Interrupted):
            raise e.__cause__ from None
        raise


class held_signals:
    """`with held_signals():` a signal inside waits until the block is done, then raises."""

    def __enter__(self):
        _state['hold'] = True

    def __exit__(self, *exc):
        _state['hold'] = False
        signum, _state['pending'] = _state['pending'], None
        if signum is not None and exc[0] is None:
            _state['stopping'] = True
            raise Interrupted(signum)


_cleanups = []


def on_exit(cleanup):
    """Run cleanup() when exit_code() returns (or, without it, when the process exits)."""
    _cleanups.append(cleanup)


@atexit.register
def run_cleanups():
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception:
            pass


def one_line(text):
    """`text` with its line breaks folded: a redirect loop or an HDF5 error spans several."""
    return ' '.join(str(text).split())


def say(prog, kind, message):
    """The one voice of every entry point: `PROG: KIND: message` on stderr, on one line."""
    sys.stderr.write('%s: %s: %s\n' % (prog, kind, one_line(message)))
    sys.stderr.flush()


def warn(prog, message):
    say(prog, 'warning', message)


def traceback_goes_to(logdir):
    """From now on an unexpected error's traceback is written to `logdir` (runkit/logdir.py's
    Logdir, once claimed), not to stderr; None takes that back."""
    _state['logdir'] = logdir


def feeder_failed(error):
    """What ended the thread that feeds fit_generator (runkit/guards.py's Feeder): Keras 1.2.2
    then reports only that the generator gave None. The first one counts: an iterator that
    raised may raise something else (StopIteration) when the thread asks again."""
    if _state['feeder'] is None:
        _state['feeder'] = error


def as_failure(e):
    """The Failure an exception stands for, or None for a bug: memory or the open-file limit
    ran out, a write found no room; an error in the feeding thread is judged by its cause."""
    if _state['feeder'] is not None and isinstance(e, ValueError) and \
            str(e).startswith('output of generator should be a tuple'):
        e = _state['feeder']
    if isinstance(e, Failure):
        return e
    if isinstance(e, MemoryError) or type(e).__name__ == 'ResourceExhaustedError' or (
            isinstance(e, RuntimeError) and "can't start new thread" in str(e)):
        return OutOfResource('out of memory (%s%s); free memory or raise the limit '
                             '(ulimit -v)' % (type(e).__name__, ': ' + one_line(e)[:200]
                                              if str(e) else ''))
    if isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE):
        return OutOfResource('too many open files: the limit is %d (ulimit -n); raise it'
                             % resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return WriteFailed('cannot write %s: %s' % (e.filename or 'a file', e.strerror or e))
    return None


# What a write that fails for want of room or a limit says.
WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS)


def exit_code(main, prog):
    """main()'s exit code; whatever ends it ends in one line on stderr."""
    stop_on_signals()
    try:
        with signals_surfaced():
            return main()
    except Interrupted as e:
        sys.stderr.write('\n%s: %s\n' % (prog, one_line(
            e.message or 'interrupted by %s before anything was written'
            % signal.Signals(e.signum).name)))
        return 128 + e.signum
    except Exception as e:
        failure = as_failure(e)
        if failure is not None:
            say(prog, 'error', failure)
            return failure.exit_code
        text = traceback.format_exc()
        logdir, saved = _state['logdir'], None
        if logdir is not None:
            try:
                saved = logdir.write_traceback(text)
            except Exception:
                pass
        if saved is None:
            sys.stderr.write(text)
        say(prog, 'error', 'unexpected %s: %s (%s)' % (
            type(e).__name__, one_line(e)[:500], 'traceback in %s' % saved if saved
            else 'traceback above'))
        return 1
    finally:
        run_cleanups()
        _state.update(hold=False, pending=None, stopping=False, feeder=None)
