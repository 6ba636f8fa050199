"""The Keras callbacks a run adds to the listing's checkpoint: the progress bar, history.csv,
the checkpoint written whole. allconvnet.py's main() lists them in the order they run.
"""
import sys
import time

import pandas
from keras import backend as K
from keras.callbacks import Callback, ModelCheckpoint, ProgbarLogger
from keras.models import Sequential

from runkit.files import model_bytes
from runkit.logdir import HISTORY, HISTORY_COLUMNS
from runkit.recipes import paper_lr


class Progress(ProgbarLogger):
    """Keras' progress bar, on where the listing passes verbose=0 unless --quiet, with a bar
    for validation too. Keras 1.2.2's own leaves the bar one batch short while validation
    runs silently (a minute on a CPU) and draws last, after the other callbacks' lines."""

    def __init__(self, model, quiet):
        super().__init__()
        # fit_generator runs on a Sequential's inner model, and validates through it.
        self.compiled = model.model if isinstance(model, Sequential) else model
        self.quiet = quiet

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.verbose = 0 if self.quiet else 1
        if self.quiet:
            return
        evaluate = self.compiled.evaluate

        def evaluate_with_bar(x, *args, **kwargs):
            print('Validating on %d images' % len(x[0] if isinstance(x, list) else x))
            kwargs['verbose'] = 1
            return evaluate(x, *args, **kwargs)
        self.compiled.evaluate = evaluate_with_bar

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.verbose and self.seen >= self.params['nb_sample']:
            self.progbar.update(self.seen, self.log_values, force=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.verbose:
            print('Epoch %d/%d: %s' % (epoch + 1, self.nb_epoch, ' - '.join(
                '%s %.4f' % (k, logs[k]) for k in self.params['metrics'] if k in logs)))
            sys.stdout.flush()

    def on_train_end(self, logs=None):
        self.compiled.__dict__.pop('evaluate', None)


class HistoryCSV(Callback):
    """One row per finished epoch in history.csv, fsynced before the next epoch starts.

    Not Keras 1.2.2's CSVLogger(append=True): it counts epochs from 0, takes its columns from
    the first epoch it sees, and writes a row in pieces without fsync, so a crash can leave
    half a row. The post's code block for its history log is missing from the post as
    archived; the upstream repository wrote the whole history once, after the last epoch
    (allconvnet.py still does, as history_callback.csv). `epoch` counts from 1.
    """

    def __init__(self, logdir, optimizer, nb_epoch):
        super().__init__()
        self.logdir = logdir
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
        text = pandas.DataFrame([row], columns=HISTORY_COLUMNS).to_csv(
            header=not self.logdir.size(HISTORY), index=False)
        self.logdir.append(HISTORY, text)  # one write: a row is on disk whole or not at all
        if not self.estimated and self.nb_epoch > epoch + 1:
            self.estimated = True
            left = self.nb_epoch - epoch - 1
            print('Epoch %d took %s; at this pace the whole run of %d epochs takes about %s, '
                  'the %d left about %s' % (epoch + 1, duration(row['seconds']), self.nb_epoch,
                                            duration(row['seconds'] * self.nb_epoch), left,
                                            duration(row['seconds'] * left)))
            sys.stdout.flush()


def duration(seconds):
    """`seconds` in the unit that fits: 45 s, 12 min, 3.4 h, 2.1 days."""
    for unit, size, limit in (('s', 1, 90), ('min', 60, 5400), ('h', 3600, 172800)):
        if seconds < limit:
            return '%.0f %s' % (seconds / size, unit) if unit != 'h' else '%.1f h' % (
                seconds / size)
    return '%.1f days' % (seconds / 86400.)


class _SavesWhole:
    """The model ModelCheckpoint saves, with a save() that writes the file whole, through the
    logdir."""

    def __init__(self, model, logdir, name):
        self.__dict__.update(_model=model, _logdir=logdir, _name=name)

    def save(self, filepath, overwrite=True):
        self._logdir.write(self._name, model_bytes(self._model))

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __setattr__(self, name, value):
        setattr(self._model, name, value)


class AtomicModelCheckpoint(ModelCheckpoint):
    """The blog's ModelCheckpoint of LOGDIR/`name`; the file is written whole (runkit/files.py),
    so a crash or a full disk keeps the previous best, and each message starts its own line."""

    def __init__(self, logdir, name, **kwargs):
        super().__init__(logdir.file(name), **kwargs)
        self.logdir, self.name = logdir, name

    def set_model(self, model):
        super().set_model(_SavesWhole(model, self.logdir, self.name))

    def on_epoch_end(self, epoch, logs=None):
        verbose, before = self.verbose, self.best
        self.verbose = 0
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.verbose = verbose
        if verbose:
            if self.best != before:
                print('Epoch %d: %s improved from %.5f to %.5f, saved %s'
                      % (epoch + 1, self.monitor, before, self.best, self.filepath))
            else:
                print('Epoch %d: %s did not improve on %.5f' % (epoch + 1, self.monitor, self.best))
        sys.stdout.flush()


class StepSchedule(Callback):
    """Sets `optimizer`'s lr to paper_lr() at the start of every epoch.

    Keras 1.2.2's LearningRateScheduler sets self.model.optimizer.lr, but with make_parallel
    the callbacks see the template model, which has no optimizer: this callback is handed
    the compiled model's optimizer instead. Keras passes 0-based epoch indexes to callbacks.
    """

    def __init__(self, optimizer, gamma, schedule):
        super().__init__()
        self.optimizer, self.gamma = optimizer, gamma
        self.drops, self.factor = schedule['drop_after_epochs'], schedule['factor']

    def on_epoch_begin(self, epoch, logs=None):
        K.set_value(self.optimizer.lr, paper_lr(epoch + 1, self.gamma, self.drops, self.factor))


def lr_steps(recipe, optimizer):
    """[StepSchedule] for a recipe with an lr schedule (set before each epoch, also after
    --resume), else []."""
    if not recipe['lr_schedule']:
        return []
    return [StepSchedule(optimizer, recipe['optimizer']['lr'], recipe['lr_schedule'])]
