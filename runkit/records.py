"""What a run leaves in its logdir: run.json, history.csv, weights.best.hdf5, model.h5.

Every file is written whole or not at all (write to a temporary name, then rename), and
history.csv gains one flushed row per finished epoch, so a crash loses at most the epoch
that was running.
"""
import datetime
import json
import os
import platform
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pandas
from runkit import Diverged, Interrupted, Refused

HISTORY_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']
RUN_FILES = ['run.json', 'history.csv', 'history_callback.csv', 'weights.best.hdf5', 'model.h5',
             'state.h5', 'curves.png', 'preprocessing.npz']


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


def machine(details=False):
    """The CPU's model name, the cores this process may use and the platform; with `details`,
    also the CPU's MHz and instruction-set flags, which a peak FLOP/s needs and run.json not."""
    cpuinfo = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                cpuinfo.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    # The affinity mask, not the machine's count: TensorFlow sizes its thread pools from it.
    cores = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else range(os.cpu_count())
    info = {'cpu': cpuinfo.get('model name', platform.processor()), 'cores': len(cores),
            'platform': platform.platform()}
    if details:
        info['mhz'] = float(cpuinfo['cpu MHz']) if 'cpu MHz' in cpuinfo else None
        info['flags'] = cpuinfo.get('flags', '').split()
    return info


def check_logdir(path, overwrite, resumed=None):
    """Refused unless a new run may write to `path`, which is then emptied of an old run's
    files; a resumed run keeps its directory as it is."""
    if resumed:
        return
    record = os.path.join(path, 'run.json')
    if os.path.exists(record) and not overwrite:
        try:
            status = read_json(record).get('status')
        except (OSError, ValueError):
            status = 'unreadable'
        if status == 'finished':
            raise Refused('%s already holds a finished run; pass --overwrite to replace it, '
                          'or choose another --logdir' % path)
        if status in ('running', 'interrupted', 'diverged', 'failed'):
            raise Refused('%s holds a run that is %s; continue it with --resume %s, pass '
                          '--overwrite to replace it, or choose another --logdir'
                          % (path, status, path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise Refused('cannot create --logdir %s: %s' % (path, e.strerror))
    if not os.access(path, os.W_OK | os.X_OK):
        raise Refused('cannot write to --logdir %s' % path)
    # A new run starts from nothing: --overwrite must not append to the old history.csv.
    for name in RUN_FILES:
        if os.path.exists(os.path.join(path, name)):
            os.remove(os.path.join(path, name))


def start_run(argv, args, resumed, recipe, overridden, placed, model):
    """run.json's record of what really trains (written at once), or the resumed run's record
    brought up to date."""
    compiled = model.optimizer
    string = recipe['optimizer']['compile_with'] == 'string'
    run = resumed or {
        'argv': list(sys.argv[1:] if argv is None else argv), 'args': vars(args),
        'started': utc_now(), 'seed': args.seed, 'git_commit': git_commit(),
        'versions': versions(), 'machine': machine(), 'last_epoch': 0}
    run.update(status='running', towers=placed.towers, preprocessing=recipe['preprocessing'],
               xla=placed.xla, tf_build=placed.build, threads=placed.threads,
               devices=placed.devices,
               recipe_name=args.recipe, recipe=recipe, overridden=overridden,
               logdir=args.logdir,
               optimizer={'class_name': type(compiled).__name__, 'config': compiled.get_config(),
                          'compiled_with': "string 'sgd'" if string else 'sgd object',
                          'note': OPTIMIZER_NOTES[string]})
    write_json(os.path.join(args.logdir, 'run.json'), run)
    return run


OPTIMIZER_NOTES = {
    True: "the blog builds SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True) but compiles "
          "with optimizer='sgd', so this config is what really trains",
    False: "the recipe's SGD object; lr is the starting rate of any lr_schedule"}


def draw_curves(logdir):
    # Every run leaves curves.png beside its history; a failed plot is only a warning.
    if os.path.exists(os.path.join(logdir, 'history.csv')):
        from runkit.plot import plot_run  # plot reads run.json with this module's helpers
        try:
            plot_run(logdir)
        except Exception as e:
            print('Could not draw %s/curves.png: %s' % (logdir, e), file=sys.stderr)


def update_run(run, **fields):
    run.update(fields)
    write_json(os.path.join(run['logdir'], 'run.json'), run)


@contextmanager
def outcome(run):
    """Around training: a diverged or interrupted run is recorded and drawn, then re-raised."""
    try:
        yield
    except Diverged as e:
        update_run(run, status='diverged', ended=utc_now(), error=str(e))
        draw_curves(run['logdir'])
        raise Diverged('%s; history up to the last finished epoch is in %s'
                       % (e, os.path.join(run['logdir'], 'history.csv'))) from None
    except Interrupted as e:
        update_run(run, status='interrupted', ended=utc_now(), signal=e.signum)
        draw_curves(run['logdir'])
        e.logdir = run['logdir']
        raise


def finish_run(run):
    update_run(run, status='finished', ended=utc_now())
    draw_curves(run['logdir'])
    print('Finished: %s' % run['logdir'])
