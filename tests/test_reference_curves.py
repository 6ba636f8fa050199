"""Rerun the tiny synthetic reference (logs/reference/synthetic-tiny) and judge it with curves.py.

(a) A rerun of the reference's own command must match it within 1e-6 on every curve column:
    with --seed and --deterministic on the CPU the reruns measured bitwise identical.
(b) A deliberate regression, the learning rate changed from 0.01 to 0.05 with --lr, must fail
    that same comparison (exit 1).

About 20 s for the synthetic data (conftest's session fixture cifar_home), then a 3-epoch and
a 1-epoch run.
"""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO, 'logs', 'reference', 'synthetic-tiny')
# Every curve column (not the wall-clock `seconds`), with a band far below any real change.
TIGHT = ['--metrics', 'all', '--tol', '1e-6']
def reference_argv(logdir):
    """The reference run's own arguments (from its run.json), writing to `logdir` instead."""
    with open(os.path.join(REFERENCE, 'run.json')) as f:
        argv = list(json.load(f)['argv'])
    argv[argv.index('--logdir') + 1] = logdir
    return argv


def train(home, argv):
    proc = subprocess.run([sys.executable, 'allconvnet.py'] + argv, cwd=REPO,
                          env=dict(os.environ, HOME=home), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]


def compare(run):
    return subprocess.run([sys.executable, '-m', 'tools.curves', 'compare', run,
                           REFERENCE] + TIGHT, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_rerun_matches_the_reference(cifar_home, tmp_path):
    logdir = str(tmp_path / 'rerun')
    train(cifar_home, reference_argv(logdir))
    result = compare(logdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'INSIDE the band at all 3 compared epochs' in result.stdout


def test_changed_learning_rate_fails_the_comparison(cifar_home, tmp_path):
    logdir = str(tmp_path / 'lr-changed')
    # One epoch is enough to leave the band; compare judges the epochs both runs have.
    train(cifar_home, reference_argv(logdir) + ['--lr', '0.05', '--epochs', '1'])
    with open(os.path.join(logdir, 'run.json')) as f:
        assert abs(json.load(f)['optimizer']['config']['lr'] - 0.05) < 1e-6  # the change took
    result = compare(logdir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'OUTSIDE the band' in result.stdout
    assert 'first:     epoch 1' in result.stdout
    assert 'optimizer.config.lr' in result.stdout  # the report points at the cause
