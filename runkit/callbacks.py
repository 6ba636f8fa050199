"""The Keras callbacks of a run: the listing's checkpoint, written whole, and what makes each
epoch durable around it (history.csv, state.h5, run.json), the paper's lr steps and the guards.
"""
import os
import sys
import time

import pandas
from keras import backend as K
from keras.callbacks import Callback, ModelCheckpoint

from runkit.guards import EpochEndHoldsSignals, NaNGuard, raise_on_signals
from runkit.recipes import StepSchedule
from runkit.records import HISTORY_COLUMNS, update_run
from runkit.resume import SaveState


def around(callbacks_list, run, template, optimizer):
    """The listing's callbacks with what makes a run durable: history.csv, then the listing's
    checkpoint, then state.h5 and run.json, saved together at each epoch's end; the paper's lr
    steps; the NaN guard. From here on SIGINT and SIGTERM stop the run cleanly."""
    logdir, recipe = run['logdir'], run['recipe']
    epoch_end = [HistoryCSV(os.path.join(logdir, 'history.csv'), optimizer, recipe['epochs'])]
    epoch_end += callbacks_list
    epoch_end.append(SaveState(template, optimizer, os.path.join(logdir, 'state.h5'),
                               lambda epoch: update_run(run, last_epoch=epoch)))
    callbacks = [EpochEndHoldsSignals(epoch_end), NaNGuard()]
    if recipe['lr_schedule']:  # set before each epoch, also after --resume
        callbacks.insert(0, StepSchedule(optimizer, recipe['optimizer']['lr'],
                                         recipe['lr_schedule']))
    raise_on_signals()
    return callbacks


class HistoryCSV(Callback):
    """One row per finished epoch in history.csv, flushed to disk before the next epoch starts.

    The post's code block for its history log is missing from the post as archived; the
    upstream repository wrote `pandas.DataFrame(history_callback.history).to_csv(...)` once,
    after the last epoch, so a crash lost all of it (allconvnet.py still writes that dump, as
    history_callback.csv). `epoch` counts finished epochs from 1.
    """

    def __init__(self, path, optimizer, nb_epoch):
        super().__init__()
        self.path = path
        self.optimizer = optimizer
        self.nb_epoch = nb_epoch
        self.estimated = False

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def current_lr(self):
        # Keras 1.2.2's SGD decays per update: lr / (1 + decay * iterations).
        opt = self.optimizer
        lr = float(K.get_value(opt.lr))
        if getattr(opt, 'initial_decay', 0) > 0:
            lr /= 1. + float(K.get_value(opt.decay)) * float(K.get_value(opt.iterations))
        return lr

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = dict((k, float(logs[k])) for k in HISTORY_COLUMNS[1:5] if k in logs)
        row.update(epoch=epoch + 1, lr=self.current_lr(),
                   seconds=round(time.time() - self.started, 3))
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        text = pandas.DataFrame([row], columns=HISTORY_COLUMNS).to_csv(header=not exists,
                                                                       index=False)
        with open(self.path, 'a') as f:
            f.write(text)  # one write: a row is on disk whole or not at all
            f.flush()
            os.fsync(f.fileno())
        if not self.estimated:
            self.estimated = True
            left = (self.nb_epoch - epoch - 1) * row['seconds']
            print('Epoch %d took %.0f s; the remaining %d epochs will take about %.1f h '
                  '(%.1f days) at this pace' % (epoch + 1, row['seconds'], self.nb_epoch - epoch - 1,
                                                left / 3600., left / 86400.))
            sys.stdout.flush()


class AtomicModelCheckpoint(ModelCheckpoint):
    """The blog's ModelCheckpoint, writing to a temporary file that replaces the old one whole."""

    def on_epoch_end(self, epoch, logs=None):
        final, verbose, before = self.filepath, self.verbose, self.best
        self.filepath, self.verbose = final + '.tmp', 0
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.filepath, self.verbose = final, verbose
        if os.path.exists(final + '.tmp'):
            os.replace(final + '.tmp', final)
        if verbose:
            if self.best != before:
                print('Epoch %d: %s improved from %.5f to %.5f, saved %s'
                      % (epoch + 1, self.monitor, before, self.best, final))
            else:
                print('Epoch %d: %s did not improve on %.5f' % (epoch + 1, self.monitor, self.best))
        sys.stdout.flush()
