"""How every entry point starts and ends: one line on stderr and an exit code, never a traceback.

allconvnet.py, predict.py, `python -m runkit.dataset` and tools/ call prepare() before they
import TensorFlow and end through exit_code(). Kept free of Keras and TensorFlow, so that a
usage error is instant. docs/failures.md lists the codes.
"""
import atexit
import os
import signal
import sys
import tempfile
import traceback
from contextlib import contextmanager


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


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; `signum` says which, `message` what was kept."""

    def __init__(self, signum, message=None):
        super().__init__(signum)
        self.signum, self.message = signum, message


# SIGHUP: a closed terminal or ssh session; SIGTERM: `docker stop`, a batch scheduler.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_state = {'hold': False, 'pending': None, 'stopping': False}


def environment():
    """Before TensorFlow is imported: Keras' backend and TF's log level. Keras 1.2.2 reads its
    backend from ~/.keras/keras.json, which may name Theano, and TF 1.15's INFO lines bury the
    progress bar."""
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')


def prepare(prog):
    """environment(), and a signal while the imports run (seconds) ends the process in one
    line, as nothing has been written yet."""
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


def save_traceback(logdir=None):
    """Write the current exception's traceback to a file; return its path, or None."""
    text = traceback.format_exc()
    for folder in ([logdir] if logdir else []) + [tempfile.gettempdir()]:
        try:
            path = os.path.join(folder, 'traceback.txt' if folder == logdir else
                                'allconvnet-traceback-%d.txt' % os.getpid())
            with open(path, 'w') as f:
                f.write(text)
            return path
        except OSError:
            continue
    return None


def exit_code(main, prog):
    """main()'s exit code; whatever ends it ends in one line on stderr."""
    stop_on_signals()
    try:
        with signals_surfaced():
            return main()
    except Failure as e:
        sys.stderr.write('%s: error: %s\n' % (prog, one_line(e)))
        return e.exit_code
    except Interrupted as e:
        sys.stderr.write('\n%s: %s\n' % (prog, one_line(
            e.message or 'interrupted by %s before anything was written'
            % signal.Signals(e.signum).name)))
        return 128 + e.signum
    except Exception as e:
        saved = save_traceback(getattr(e, 'logdir', None))
        sys.stderr.write('%s: error: unexpected %s: %s (traceback in %s)\n' % (
            prog, type(e).__name__, one_line(e)[:500], saved or 'nowhere: no folder writable'))
        return 1
    finally:
        run_cleanups()
        _state.update(hold=False, pending=None, stopping=False)
