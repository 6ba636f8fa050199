"""Saving the last finished epoch with its optimizer state, and continuing a run from it.

state.h5 is the template model as `model.save` writes it, plus an `optimizer_weights` group
in Keras 1.2.2's own layout (SGD's iteration count, which drives its lr decay, and its
momenta). With make_parallel the compiled model is the wrapper, so Keras would not write
that group for the template; it is added here.
"""
from __future__ import print_function

import h5py
from keras import backend as K
from keras.callbacks import Callback
from keras.models import Sequential

from runkit.records import replace_atomically


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


class SaveState(Callback):
    """After every epoch: state.h5, then `on_saved(epoch)` (which updates run.json)."""

    def __init__(self, template, optimizer, path, on_saved):
        super(SaveState, self).__init__()
        self.template, self.optimizer, self.path = template, optimizer, path
        self.on_saved = on_saved

    def on_epoch_end(self, epoch, logs=None):
        save_state(self.template, self.optimizer, self.path, epoch + 1)
        self.on_saved(epoch + 1)
