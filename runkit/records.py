"""What a run leaves in its logdir: run.json, history.csv, weights.best.hdf5, model.h5.

Every file is written whole or not at all (write to a temporary name, then rename), and
history.csv gains one flushed row per finished epoch, so a crash loses at most the epoch
that was running.
"""
from __future__ import print_function

import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import pandas
from keras import backend as K
from keras.callbacks import Callback, ModelCheckpoint

HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']
RUN_FILES = ['run.json', 'history.csv', 'weights.best.hdf5', 'model.h5', 'state.h5',
             'curves.png', 'preprocessing.npz']


def utc_now():
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + 'Z'


def replace_atomically(write, path):
    """Call write(tmp_path), then rename tmp_path over path."""
    tmp = path + '.tmp'
    write(tmp)
    os.replace(tmp, path)


def save_model_atomically(model, path):
    replace_atomically(lambda tmp: model.save(tmp, overwrite=True), path)


def write_json(path, data):
    def write(tmp):
        with open(tmp, 'w') as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write('\n')
            f.flush()
            os.fsync(f.fileno())
    replace_atomically(write, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def git_commit():
    """HEAD (with -dirty for local changes), or $ALLCONVNET_GIT_COMMIT where there is no git
    (the Docker image sets it from its VCS_REF build argument)."""
    if os.environ.get('ALLCONVNET_GIT_COMMIT'):
        return os.environ['ALLCONVNET_GIT_COMMIT']
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.check_output(['git', 'rev-parse', 'HEAD'], cwd=here,
                                      stderr=subprocess.DEVNULL)
        dirty = subprocess.check_output(['git', 'status', '--porcelain', '--untracked-files=no'],
                                        cwd=here, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode().strip() + ('-dirty' if dirty.strip() else '')


def versions():
    import h5py
    import keras
    import tensorflow as tf
    return {'python': platform.python_version(), 'tensorflow': tf.__version__,
            'keras': keras.__version__, 'numpy': np.__version__,
            'pandas': pandas.__version__, 'h5py': h5py.__version__}


def machine():
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpu': cpu, 'cores': os.cpu_count(), 'platform': platform.platform()}


def check_logdir(path, overwrite):
    """None if a new run may write to `path` (then emptied of an old run's files), else why not."""
    record = os.path.join(path, 'run.json')
    if os.path.exists(record) and not overwrite:
        try:
            status = read_json(record).get('status')
        except (OSError, ValueError):
            status = 'unreadable'
        if status == 'finished':
            return ('%s already holds a finished run; pass --overwrite to replace it, '
                    'or choose another --logdir' % path)
        if status in ('running', 'interrupted', 'diverged', 'failed'):
            return ('%s holds a run that is %s; continue it with --resume %s, pass '
                    '--overwrite to replace it, or choose another --logdir'
                    % (path, status, path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        return 'cannot create --logdir %s: %s' % (path, e.strerror)
    if not os.access(path, os.W_OK | os.X_OK):
        return 'cannot write to --logdir %s' % path
    # A new run starts from nothing: --overwrite must not append to the old history.csv.
    for name in RUN_FILES:
        if os.path.exists(os.path.join(path, name)):
            os.remove(os.path.join(path, name))
    return None


class HistoryCSV(Callback):
    """One row per finished epoch in history.csv, flushed to disk before the next epoch starts.

    The blog promises a history log but prints no code for it; the upstream repository wrote
    `pandas.DataFrame(history_callback.history).to_csv("history.csv")` once, after the last
    epoch, so a crash lost all of it. `epoch` counts finished epochs from 1.
    """

    def __init__(self, path, optimizer, nb_epoch):
        super(HistoryCSV, self).__init__()
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
            super(AtomicModelCheckpoint, self).on_epoch_end(epoch, logs)
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
