"""Rerun the tiny synthetic reference (logs/reference/synthetic-tiny, or synthetic-tiny-mkl on
the oneDNN build: the builds' kernels round differently) and judge it with curves.py.

(a) A rerun of the reference's own command must match it within 1e-6 on every curve column:
    with --seed and --deterministic on the CPU the reruns measured bitwise identical. The rerun
    stops after the first of the reference's 3 epochs, which holds the seed, the data order,
    the augmentation, the initial weights and the optimizer; each further epoch costs the
    suite about 10 s of CPU. All 3 epochs: the check at the end of the reference's
    command.txt.
(b) A deliberate regression must fail that same comparison (exit 1), and the report must point
    at its cause: tests/data/lr-changed, the reference's command with the learning rate
    changed from 0.01 to 0.05 with --lr, one epoch, trained once and kept (its command.txt),
    as the reference is; the rerun in (a) is what trains now.

A few seconds for the synthetic data (conftest's session fixture cifar_home), then a 1-epoch
run in one thread.
"""
import json
import os
import subprocess
import sys

from helpers import ROOT as REPO, run_allconvnet


def tf_build():
    from tensorflow.python import pywrap_tensorflow
    return 'mkl' if pywrap_tensorflow.IsMklEnabled() else 'stock'


REFERENCE = os.path.join(REPO, 'logs', 'reference', 'synthetic-tiny' + (
    '-mkl' if tf_build() == 'mkl' else ''))
CHANGED = os.path.join(REPO, 'tests', 'data', 'lr-changed')
# Every curve column (not the wall-clock `seconds`), with a band far below any real change.
TIGHT = ['--metrics', 'all', '--tol', '1e-6']


def reference_argv(logdir):
    """The reference run's own arguments (from its run.json), writing to `logdir` instead."""
    with open(os.path.join(REFERENCE, 'run.json')) as f:
        argv = list(json.load(f)['argv'])
    argv[argv.index('--logdir') + 1] = logdir
    return argv


def compare(run):
    return subprocess.run([sys.executable, '-m', 'tools.curves', 'compare', run,
                           REFERENCE] + TIGHT, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_rerun_matches_the_reference(cifar_home, tmp_path):
    rerun = str(tmp_path / 'rerun')
    proc = run_allconvnet(reference_argv(rerun) + ['--epochs', '1'], cifar_home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = compare(rerun)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'INSIDE the band at the one compared epoch' in result.stdout


def test_changed_learning_rate_fails_the_comparison():
    with open(os.path.join(CHANGED, 'run.json')) as f:
        changed = json.load(f)
    # The reference's own command, one epoch, --lr 0.05; and the change took.
    command = reference_argv(changed['logdir'])
    command[command.index('--epochs') + 1] = '1'
    assert changed['argv'] == command + ['--lr', '0.05']
    assert abs(changed['optimizer']['config']['lr'] - 0.05) < 1e-6
    result = compare(CHANGED)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'OUTSIDE the band' in result.stdout
    assert 'first:     epoch 1' in result.stdout
    assert 'optimizer.config.lr' in result.stdout  # the report points at the cause
