"""Saving the last finished epoch with its optimizer state, and continuing a run from it.

state.h5 is the template model as `model.save` writes it, plus an `optimizer_weights` group
in Keras 1.2.2's own layout (SGD's iteration count, which drives its lr decay, and its
momenta). With make_parallel the compiled model is the wrapper, so Keras would not write
that group for the template; it is added here.

--resume checks everything it will read before it changes anything (check), so a run it
refuses is left as it was.
"""
import csv
import io
import math
import os

import h5py
from keras import backend as K
from keras.callbacks import Callback
from keras.models import Sequential

from runkit.errors import Refused
from runkit.files import hdf5_bytes
from runkit.logdir import CHECKPOINT, HISTORY, HISTORY_COLUMNS, RUN_JSON, STATE
from runkit.records import command

# history.csv of a 1000-epoch run is about 80 kB.
HISTORY_LIMIT = 16 << 20


def save_state(template, optimizer, logdir, epoch):
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
    logdir.write(STATE, hdf5_bytes(write))


def state_epoch(image):
    """The epoch the bytes of a state.h5 hold, after reading every array in them;
    ValueError-like on damage."""
    with h5py.File(io.BytesIO(image), 'r') as f:
        names = [n.decode('utf8') for n in f['optimizer_weights'].attrs['weight_names']]
        for n in names:
            f['optimizer_weights'][n][()]
        f['model_weights'].visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset)
                                      else None)
        epoch = int(f.attrs['allconvnet_epoch'])
    if epoch < 1:
        raise ValueError('it says epoch %d' % epoch)
    return epoch


def history_rows(data, epoch):
    """The first `epoch` lines of history.csv's bytes after its header, checked: the header
    is the one this project writes, and they are epochs 1..`epoch` in order, every value a
    number. Rows after them (an epoch whose state.h5 a kill cut off) are not read. A string
    that says what is wrong, or the lines."""
    lines = data.split(b'\n')
    if lines[0].decode('utf8', 'replace').strip() != ','.join(HISTORY_COLUMNS):
        return 'its header is not %s' % ','.join(HISTORY_COLUMNS)
    rows = [line for line in lines[1:] if line.strip()][:epoch]
    for number, line in enumerate(rows, 1):
        try:
            fields = next(csv.reader([line.decode('ascii')]))
            values = [float(v) for v in fields]
        except (UnicodeDecodeError, ValueError, StopIteration):
            return 'row %d is not %d numbers' % (number, len(HISTORY_COLUMNS))
        if len(values) != len(HISTORY_COLUMNS) or values[0] != number or not all(
                math.isfinite(v) for v in values):
            return 'row %d is not epoch %d with %d finite values' % (number, number,
                                                            len(HISTORY_COLUMNS))
    if len(rows) < epoch:
        return 'it lacks some of epochs 1-%d that state.h5 holds' % epoch
    return lines[:1] + rows


def check(logdir):
    """(run.json's record, the epoch to continue after) for --resume LOGDIR, after reading
    every file it will read or change: Refused, with the way on, when any is missing, a link,
    damaged or not what this project writes, and then nothing has been changed."""
    def refuse(why):
        raise Refused('--resume %s: %s' % (logdir, why))
    try:
        run = logdir.read_json()
    except Refused as e:
        refuse('%s; without it the run\'s arguments are unknown' % e)
    if run.get('status') == 'finished':
        refuse('that run already finished')
    argv = run.get('argv')
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        refuse('%s has no list of arguments (argv), so the run cannot be repeated'
               % logdir.file(RUN_JSON))
    resumed_at = run.get('resumed_at_epoch', [])
    if not isinstance(resumed_at, list) or not all(
            isinstance(e, int) and not isinstance(e, bool) for e in resumed_at):
        refuse('%s: resumed_at_epoch is not a list of epochs' % logdir.file(RUN_JSON))
    again = [a for a in argv if a != '--overwrite'] + ['--overwrite']
    if '--logdir' not in argv and not any(a.startswith('--logdir=') for a in argv):
        again = ['--logdir', logdir.path] + again
    start_over = 'start again with: %s' % command(again)
    try:
        epoch = state_epoch(logdir.read(STATE))
    except FileNotFoundError:
        refuse('no epoch finished (no state.h5), so there is nothing to continue; %s'
               % start_over)
    except Refused as e:
        refuse('%s; %s' % (e, start_over))
    except Exception as e:  # h5py raises OSError, KeyError, ValueError... on a damaged file
        refuse('%s is truncated or damaged (%s: %s); %s' % (logdir.file(STATE), type(e).__name__,
                                                            e, start_over))
    try:
        rows = history_rows(logdir.read(HISTORY, HISTORY_LIMIT), epoch)
    except FileNotFoundError:
        rows = 'it is missing'
    except Refused as e:
        rows = str(e)
    if isinstance(rows, str):
        refuse('%s cannot be continued: %s; %s' % (logdir.file(HISTORY), rows, start_over))
    if logdir.exists(CHECKPOINT):
        try:
            checkpoint = logdir.read(CHECKPOINT)
            with h5py.File(io.BytesIO(checkpoint), 'r') as f:
                f['model_weights']
        except Exception as e:
            refuse('%s is truncated or damaged (%s); %s' % (logdir.file(CHECKPOINT),
                                                            type(e).__name__, start_over))
    if not os.access(logdir.path, os.W_OK):
        refuse('the folder is not writable')
    return run, epoch


def load_state(template, model, image):
    """Load the bytes of a state.h5 into `template` (weights) and `model` (optimizer state);
    return the epoch saved."""
    # Keras creates the optimizer's variables when it builds the train function; for a
    # Sequential that lives on its inner model, as in Keras 1.2.2's own load_model.
    (model.model if isinstance(model, Sequential) else model)._make_train_function()
    with h5py.File(io.BytesIO(image), 'r') as f:
        template.load_weights_from_hdf5_group(f['model_weights'])
        group = f['optimizer_weights']
        names = [n.decode('utf8') for n in group.attrs['weight_names']]
        model.optimizer.set_weights([group[n][()] for n in names])
        return int(f.attrs['allconvnet_epoch'])


def restore(resumed, logdir, epoch, template, model, checkpoint):
    """Continue `logdir` after `epoch` (check's answer): weights and optimizer state from
    state.h5, history.csv cut back to that epoch, the checkpoint's best so far. The best
    checkpoint is loaded first, to know it fits the model, and state.h5 over it: both before
    history.csv changes. Nothing for a new run (`resumed`, its stored run.json, is None)."""
    if not resumed:
        return 0
    for name in ([CHECKPOINT] if logdir.exists(CHECKPOINT) else []) + [STATE]:
        try:
            image = logdir.read(name)
            if name == STATE:
                load_state(template, model, image)
            else:
                with h5py.File(io.BytesIO(image), 'r') as f:
                    template.load_weights_from_hdf5_group(f['model_weights'])
        except Exception as e:  # a file of another model (another recipe or ordering)
            raise Refused('--resume %s: %s does not fit the model its run.json describes '
                          '(%s: %s)' % (logdir, name, type(e).__name__, e)) from None
    lines = history_rows(logdir.read(HISTORY, HISTORY_LIMIT), epoch)
    # The first lines as they were, byte for byte: only what state.h5 does not hold goes.
    logdir.write(HISTORY, b'\n'.join(lines) + b'\n')
    if epoch and logdir.exists(CHECKPOINT):
        checkpoint.best = max(float(line.split(b',')[HISTORY_COLUMNS.index('val_acc')])
                              for line in lines[1:])
    print('Resuming %s after epoch %d' % (logdir, epoch))
    return epoch


class SaveState(Callback):
    """After every epoch: LOGDIR/state.h5, then run.json's last_epoch."""

    def __init__(self, template, optimizer, logdir):
        super().__init__()
        self.template, self.optimizer, self.logdir = template, optimizer, logdir

    def on_epoch_end(self, epoch, logs=None):
        save_state(self.template, self.optimizer, self.logdir, epoch + 1)
        self.logdir.update_record(last_epoch=epoch + 1)
