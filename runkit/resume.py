"""Saving the last finished epoch with its optimizer state, and continuing a run from it.

state.h5 is the template model as `model.save` writes it, plus an `optimizer_weights` group
in Keras 1.2.2's own layout (SGD's iteration count, which drives its lr decay, and its
momenta). With make_parallel the compiled model is the wrapper, so Keras would not write
that group for the template; it is added here.

--resume checks everything it will read before it changes anything (check), so a run it
refuses is left as it was.
"""
import io
import os

import h5py
import pandas
from keras import backend as K
from keras.callbacks import Callback
from keras.models import Sequential

from runkit.errors import Refused
from runkit.files import hdf5_bytes, read_json_object, write_whole
from runkit.records import HISTORY_COLUMNS, command, update_run


def save_state(template, optimizer, path, epoch):
    def write(buffer):
        template.save(buffer, overwrite=True)
        with h5py.File(buffer, 'a') as f:
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
    write_whole(path, hdf5_bytes(write))


def state_epoch(path):
    """The epoch state.h5 holds, after reading every array in it; ValueError-like on damage."""
    with open(path, 'rb') as f:
        image = f.read()
    with h5py.File(io.BytesIO(image), 'r') as f:
        names = [n.decode('utf8') for n in f['optimizer_weights'].attrs['weight_names']]
        for n in names:
            f['optimizer_weights'][n][()]
        f['model_weights'].visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset)
                                      else None)
        return int(f.attrs['allconvnet_epoch'])


def check(logdir):
    """(run.json's record, the epoch to continue after) for --resume LOGDIR; Refused, with the
    way on, when any file it needs is missing or damaged."""
    def refuse(why):
        raise Refused('--resume %s: %s' % (logdir, why))
    record = os.path.join(logdir, 'run.json')
    try:
        run = read_json_object(record)
    except Refused as e:
        refuse('%s; without it the run\'s arguments are unknown' % e)
    if run.get('status') == 'finished':
        refuse('that run already finished')
    argv = run.get('argv')
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        refuse('%s has no list of arguments (argv), so the run cannot be repeated' % record)
    again = [a for a in argv if a != '--overwrite'] + ['--overwrite']
    if '--logdir' not in argv and not any(a.startswith('--logdir=') for a in argv):
        again = ['--logdir', logdir] + again
    start_over = 'start again with: %s' % command(again)
    state = os.path.join(logdir, 'state.h5')
    if not os.path.exists(state):
        refuse('no epoch finished (no state.h5), so there is nothing to continue; %s'
               % start_over)
    try:
        epoch = state_epoch(state)
    except Exception as e:  # h5py raises OSError, KeyError, ValueError... on a damaged file
        refuse('%s is truncated or damaged (%s: %s); %s' % (state, type(e).__name__, e,
                                                            start_over))
    history_csv = os.path.join(logdir, 'history.csv')
    try:
        history = pandas.read_csv(history_csv)
        epochs = set(history['epoch'].astype(int))
    except Exception as e:  # missing, empty, not a CSV, no epoch column
        refuse('%s is missing or unreadable (%s: %s); %s' % (history_csv, type(e).__name__,
                                                            e, start_over))
    if not set(range(1, epoch + 1)) <= epochs:
        refuse('%s lacks some of epochs 1-%d that state.h5 holds; %s'
               % (history_csv, epoch, start_over))
    if not os.access(logdir, os.W_OK):
        refuse('the folder is not writable')
    return run, epoch


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


def restore(resumed, logdir, epoch, template, model, checkpoint):
    """Continue `logdir` after `epoch` (check's answer): weights and optimizer state from
    state.h5, history.csv cut back to that epoch, the checkpoint's best so far. Nothing for a
    new run (`resumed`, its stored run.json, is None)."""
    if not resumed:
        return 0
    try:
        restore_state(template, model, os.path.join(logdir, 'state.h5'))
    except Exception as e:  # a state.h5 of another model (another recipe or ordering)
        raise Refused('--resume %s: state.h5 does not fit the model its run.json describes '
                      '(%s: %s)' % (logdir, type(e).__name__, e)) from None
    history_csv = os.path.join(logdir, 'history.csv')
    history = pandas.read_csv(history_csv)
    history = history[history.epoch <= epoch]
    write_whole(history_csv, history.to_csv(index=False, columns=[
        c for c in HISTORY_COLUMNS if c in history.columns]))
    if len(history) and os.path.exists(checkpoint.filepath):
        checkpoint.best = float(history.val_acc.max())
    print('Resuming %s after epoch %d' % (logdir, epoch))
    return epoch


class SaveState(Callback):
    """After every epoch: LOGDIR/state.h5, then run.json's last_epoch."""

    def __init__(self, template, optimizer, run):
        super().__init__()
        self.template, self.optimizer, self.run = template, optimizer, run
        self.path = os.path.join(run['logdir'], 'state.h5')

    def on_epoch_end(self, epoch, logs=None):
        save_state(self.template, self.optimizer, self.path, epoch + 1)
        update_run(self.run, last_epoch=epoch + 1)
