"""Saving the last finished epoch with its optimizer state, and continuing a run from it.

state.h5 is the template model as `model.save` writes it, plus an `optimizer_weights` group
in Keras 1.2.2's own layout (SGD's iteration count, which drives its lr decay, and its
momenta). With make_parallel the compiled model is the wrapper, so Keras would not write
that group for the template; it is added here.
"""
import os

import h5py
import pandas
from keras import backend as K
from keras.callbacks import Callback
from keras.models import Sequential

from runkit.records import replace_atomically, write_json


def save_state(template, optimizer, path, epoch):
    def write(tmp):
        template.save(tmp, overwrite=True)
        with h5py.File(tmp, 'a') as f:
            f.attrs['allconvnet_epoch'] = epoch
            if 'optimizer_weights' in f:
                return
            group = f.create_group('optimizer_weights')
            names = []
            for i, (w, value) in enumerate(zip(optimizer.weights,
                                               K.batch_get_value(optimizer.weights))):
                name = (str(w.name) if getattr(w, 'name', None) else 'param_%d' % i)
                names.append(name.encode('utf8'))
                group.create_dataset(name, data=value)
            group.attrs['weight_names'] = names
    replace_atomically(write, path)


def restore_state(template, model, path):
    """Load weights into `template` and optimizer state into `model`; return the epoch saved."""
    # Keras creates the optimizer's variables when it builds the train function; for a
    # Sequential that lives on its inner model, as in Keras 1.2.2's own load_model.
    (model.model if isinstance(model, Sequential) else model)._make_train_function()
    template.load_weights(path)
    with h5py.File(path, 'r') as f:
        group = f['optimizer_weights']
        names = [n.decode('utf8') for n in group.attrs['weight_names']]
        model.optimizer.set_weights([group[n][()] for n in names])
        return int(f.attrs['allconvnet_epoch'])


def restore(run, template, model, checkpoint):
    """Continue run['logdir'] after its last finished epoch: weights and optimizer state from
    state.h5, history.csv cut back to that epoch, the checkpoint's best so far. Returns the
    epoch to start from."""
    logdir = run['logdir']
    initial_epoch = restore_state(template, model, os.path.join(logdir, 'state.h5'))
    history_csv = os.path.join(logdir, 'history.csv')
    history = pandas.read_csv(history_csv)
    history = history[history.epoch <= initial_epoch]
    history.to_csv(history_csv, index=False)
    if len(history) and os.path.exists(checkpoint.filepath):
        checkpoint.best = float(history.val_acc.max())
    run.setdefault('resumed_at_epoch', []).append(initial_epoch)
    write_json(os.path.join(logdir, 'run.json'), run)
    print('Resuming %s after epoch %d' % (logdir, initial_epoch))
    return initial_epoch


class SaveState(Callback):
    """After every epoch: state.h5, then `on_saved(epoch)` (which updates run.json)."""

    def __init__(self, template, optimizer, path, on_saved):
        super().__init__()
        self.template, self.optimizer, self.path = template, optimizer, path
        self.on_saved = on_saved

    def on_epoch_end(self, epoch, logs=None):
        save_state(self.template, self.optimizer, self.path, epoch + 1)
        self.on_saved(epoch + 1)
