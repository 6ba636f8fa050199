"""SIGKILL at every file write of a run, then resume it: nothing lost, nothing partial.

    make kill-matrix        (about 15 minutes on 2 cores; not part of `make test`)
    cd tests && ../.venv-test-stock/bin/python kill_matrix.py curves.png random   (some cases)

Each case starts a 3-epoch run on the synthetic data, watches its logdir and sends SIGKILL the
moment the chosen write is under way (its temporary file appears, or history.csv grows), or
at a random moment. It then does what the program's own message says, --resume or a fresh
start, until the run finishes, and checks that every epoch is in history.csv exactly once,
that run.json says finished, and that no file at a final name is partial (every HDF5 file
opens, run.json parses) and no temporary file is left. Exit 0 when every case holds.
"""
import json
import os
import random
import re
import signal
import sys
import tempfile
import time

import h5py
import pandas

import synthetic_cifar
from helpers import start_allconvnet

EPOCHS = 3
ARGS = ['--epochs', str(EPOCHS), '--train-limit', '96', '--test-limit', '32', '--seed', '1',
        '--quiet']
# What is being written when each pattern shows in the logdir.
WRITES = {'history row': None, 'checkpoint': r'^\.weights\.best\.hdf5\..*\.tmp$',
          'state.h5': r'^\.state\.h5\..*\.tmp$', 'run.json': r'^\.run\.json\..*\.tmp$',
          'model.h5': r'^\.model\.h5\..*\.tmp$', 'curves.png': r'^\.curves\.png\..*\.tmp$'}


def rows(logdir):
    try:
        return len(pandas.read_csv(os.path.join(logdir, 'history.csv')))
    except (OSError, pandas.errors.EmptyDataError):
        return 0


def kill_at(proc, logdir, write, epoch):
    """SIGKILL `proc` when `write` happens during `epoch` (or after `write` seconds)."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if isinstance(write, float):
            if time.time() >= write:
                break
        elif write == 'history row':
            if rows(logdir) >= epoch:
                break
        elif rows(logdir) >= epoch - 1 and os.path.isdir(logdir) and any(
                re.match(WRITES[write], n) for n in os.listdir(logdir)):
            break
        time.sleep(0.0005)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return killed


def finish(logdir, home):
    """Follow the program's own advice until the run finishes; the commands it ran."""
    done = []
    for _ in range(4):
        run = json.load(open(os.path.join(logdir, 'run.json'))) \
            if os.path.exists(os.path.join(logdir, 'run.json')) else {}
        if run.get('status') == 'finished':
            return done
        args, err = ['--resume', logdir], ''
        if run:
            proc = start_allconvnet(args, home)
            _, err = proc.communicate()
        if not run or (proc.returncode == 2 and '--overwrite' in err):
            args = ARGS + ['--logdir', logdir, '--overwrite']
            proc = start_allconvnet(args, home)
            _, err = proc.communicate()
        done.append((' '.join(args[:2]), proc.returncode))
        if proc.returncode not in (0,):
            raise AssertionError('%s: exit %d: %s' % (args, proc.returncode, err[-500:]))
    raise AssertionError('not finished after %s' % done)


def check(logdir):
    history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
    assert list(history.epoch) == list(range(1, EPOCHS + 1)), list(history.epoch)
    run = json.load(open(os.path.join(logdir, 'run.json')))
    assert run['status'] == 'finished' and run['last_epoch'] == EPOCHS, run['status']
    for name in ('weights.best.hdf5', 'state.h5', 'model.h5'):
        with h5py.File(os.path.join(logdir, name), 'r') as f:
            assert 'model_weights' in f, name
    left = [n for n in os.listdir(logdir) if n.endswith('.tmp')]
    assert not left, left


def main():
    work = tempfile.mkdtemp(prefix='kill-matrix-')
    home = os.path.join(work, 'home')
    synthetic_cifar.write_cache(home)
    rng = random.Random(0)
    cases = [(w, e) for w in WRITES for e in (1, 2) if not (w == 'model.h5' and e == 1)]
    cases += [('random', None)] * 6
    if sys.argv[1:]:
        cases = [c for c in cases if c[0] in sys.argv[1:]]
    failures = 0
    for i, (write, epoch) in enumerate(cases):
        logdir = os.path.join(work, 'run%d' % i)
        proc = start_allconvnet(ARGS + ['--logdir', logdir], home)
        moment = time.time() + rng.uniform(5, 60) if write == 'random' else write
        killed = kill_at(proc, logdir, moment, epoch or 0)
        at_kill = rows(logdir)
        try:
            steps = finish(logdir, home)
            check(logdir)
            verdict = 'ok'
        except AssertionError as e:
            failures += 1
            steps, verdict = [], 'FAILED: %s' % e
        print('%-12s epoch %-4s killed=%-5s rows at kill=%d then %s: %s' % (
            write, epoch or '-', killed, at_kill, steps, verdict))
        sys.stdout.flush()
    print('%d passed, %d failed' % (len(cases) - failures, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
