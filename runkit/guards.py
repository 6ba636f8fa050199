"""Stopping a run cleanly: on a NaN or inf loss, on a failure in the thread that feeds the
batches, and without tearing an epoch's files apart.

Keras 1.2.2 has no TerminateOnNaN (it arrived in Keras 2.0.5), and its fit_generator checks
`stop_training` only between epochs, so the guard raises to stop at the bad batch itself.
The signals themselves (SIGINT, SIGTERM, SIGHUP) are runkit/errors.py's.
"""
import numpy as np
from keras.callbacks import Callback, CallbackList

from runkit.errors import Diverged, feeder_failed, held_signals


class NaNGuard(Callback):
    """Raise Diverged at the first batch whose loss is not finite."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get('loss')
        if loss is not None and not np.isfinite(loss):
            raise Diverged('training loss is %s at epoch %d, batch %d'
                           % (loss, self.epoch + 1, batch + 1))


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
        with held_signals():
            self.inner.on_epoch_end(epoch, logs)


class Feeder:
    """datagen.flow()'s batches, with a failure kept for the main thread. Keras 1.2.2 draws
    them in a thread that dies on an exception with a traceback of its own, and fit_generator
    then says only "output of generator should be a tuple ... Found: None"; here the failure
    is handed over instead, and fit_generator's error is judged by it (errors.as_failure), so a
    MemoryError under `ulimit -v` ends as memory running out."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.batches)
        except Exception as e:
            feeder_failed(e)
            return e  # not a tuple: fit_generator raises in the main thread
