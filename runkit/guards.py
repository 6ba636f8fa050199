"""Stopping a run cleanly: on a NaN or inf loss, and on SIGINT or SIGTERM (`docker stop`).

Keras 1.2.2 has no TerminateOnNaN (it arrived in Keras 2.0.5), and its fit_generator checks
`stop_training` only between epochs, so the guard raises to stop at the bad batch itself.
"""
from __future__ import print_function

import signal

import numpy as np
from keras.callbacks import Callback


class Diverged(Exception):
    """The training loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which."""

    def __init__(self, signum):
        super(Interrupted, self).__init__(signum)
        self.signum = signum


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
        raise Interrupted(signum)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
