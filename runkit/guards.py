"""Stopping a run cleanly: on a NaN or inf loss, and on SIGINT or SIGTERM (`docker stop`).

Keras 1.2.2 has no TerminateOnNaN (it arrived in Keras 2.0.5), and its fit_generator checks
`stop_training` only between epochs, so the guard raises to stop at the bad batch itself.
"""
import os
import signal
import sys

import numpy as np
from keras.callbacks import Callback, CallbackList

from runkit import Diverged, Interrupted, Refused

_held = {'depth': 0, 'pending': None}


class NaNGuard(Callback):
    """Raise Diverged at the first batch whose loss is not finite."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get('loss')
        if loss is not None and not np.isfinite(loss):
            raise Diverged('training loss is %s at epoch %d, batch %d'
                           % (loss, self.epoch + 1, batch + 1))


def raise_on_signals():
    """From now on SIGINT and SIGTERM raise Interrupted in the main thread."""
    def handler(signum, frame):
        if _held['depth']:
            _held['pending'] = signum
        else:
            raise Interrupted(signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


class EpochEndHoldsSignals(Callback):
    """Runs `callbacks` as one; a signal during their on_epoch_end waits until all are done.

    The epoch's history row, best checkpoint and state.h5 are then saved together or, if the
    process dies hard, in an order that --resume can repair (history first, state last).
    """

    def __init__(self, callbacks):
        super().__init__()
        self.inner = CallbackList(callbacks)
        for name in ('on_epoch_begin', 'on_batch_begin', 'on_batch_end', 'on_train_begin',
                     'on_train_end'):
            setattr(self, name, getattr(self.inner, name))

    def set_params(self, params):
        self.inner.set_params(params)

    def set_model(self, model):
        self.inner.set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        _held['depth'] += 1
        try:
            self.inner.on_epoch_end(epoch, logs)
        finally:
            _held['depth'] -= 1
        if not _held['depth'] and _held['pending'] is not None:
            signum, _held['pending'] = _held['pending'], None
            raise Interrupted(signum)


def exit_code(main, prog='allconvnet.py'):
    """main()'s exit code; a refusal, a divergence or a signal ends in one line on stderr."""
    try:
        return main()
    except Refused as e:
        sys.stderr.write('%s: error: %s\n' % (prog, e))
        return 2
    except Diverged as e:
        sys.stderr.write('%s: error: %s\n' % (prog, e))
        return 3
    except Interrupted as e:
        logdir = getattr(e, 'logdir', 'LOGDIR')
        sys.stderr.write('\nInterrupted; every finished epoch is in %s. Continue with: python '
                         '%s --resume %s\n' % (os.path.join(logdir, 'history.csv'), prog, logdir))
        return 128 + e.signum
