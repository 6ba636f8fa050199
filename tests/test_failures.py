"""Nothing lost, nothing cryptic: bad flags, broken caches, interrupted and diverging runs.

Every case runs the real program and checks its exit code, its message and the files it leaves
behind: refusals that come before any TensorFlow session run main() in this process, the rest
run the script in a subprocess.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pandas
import pytest

from helpers import (ROOT, TINY, one_clear_line, refused, run_allconvnet, start_allconvnet,
                     wait_for_rows)

# -- bad flags: refused before any training starts -------------------------------------

@pytest.mark.parametrize('flag,value', [
    ('--epochs', '0'), ('--epochs', '-3'), ('--epochs', 'ten'),
    ('--batch-size', '0'), ('--train-limit', '-1'), ('--test-limit', 'x'), ('--lr', '-0.1')])
def test_bad_numbers_are_refused(tmp_path, capsys, flag, value):
    proc = refused([flag, value, '--logdir', str(tmp_path / 'run')], capsys)
    one_clear_line(proc, flag, value)
    assert not (tmp_path / 'run').exists()


def test_unknown_flag_is_refused(capsys):
    one_clear_line(refused(['--epoch', '3'], capsys), 'unrecognized arguments: --epoch')


def test_logdir_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    proc = refused(['--logdir', str(blocker / 'run')], capsys)
    one_clear_line(proc, 'cannot create --logdir', str(blocker / 'run'))


def test_finished_run_is_not_overwritten_unless_asked(tmp_path, capsys):
    from runkit.logdir import claim
    logdir = tmp_path / 'done'
    logdir.mkdir()
    (logdir / 'run.json').write_text(json.dumps({'status': 'finished'}))
    (logdir / 'history.csv').write_text('epoch,loss\n1,2.3\n2,2.2\n')
    (logdir / 'notes.txt').write_text('the user\'s own file')
    proc = refused(['--logdir', str(logdir), '--epochs', '1'] + TINY, capsys)
    one_clear_line(proc, "a run with status 'finished'", 'history.csv', '--overwrite')
    assert json.loads((logdir / 'run.json').read_text()) == {'status': 'finished'}
    assert sorted(os.listdir(str(logdir))) == ['history.csv', 'notes.txt', 'run.json']
    # --overwrite: the old run's files go, so the new history is not appended to; others stay.
    claim(str(logdir), overwrite=True).release()
    assert sorted(os.listdir(str(logdir))) == ['notes.txt']


def test_more_gpus_than_visible_names_both_numbers(cifar_home, tmp_path, monkeypatch, capsys):
    from keras import backend as K
    monkeypatch.setenv('HOME', cifar_home)
    # More than any machine has, so that this holds on GPU machines too.
    try:
        proc = refused(['--gpus', '99', '--logdir', str(tmp_path / 'run')] + TINY, capsys)
    finally:
        K.clear_session()
    one_clear_line(proc, '--gpus 99', 'visible')


# -- the dataset cache ----------------------------------------------------------------

def broken_home(cifar_home, tmp_path, change):
    """A HOME whose cache links to the good synthetic files, then gets `change` applied."""
    good = os.path.join(cifar_home, '.keras', 'datasets')
    datadir = tmp_path / 'home' / '.keras' / 'datasets'
    folder = datadir / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    for name in os.listdir(os.path.join(good, 'cifar-10-batches-py')):
        os.symlink(os.path.join(good, 'cifar-10-batches-py', name), str(folder / name))
    os.symlink(os.path.join(good, 'cifar-10-batches-py.tar.gz'),
               str(datadir / 'cifar-10-batches-py.tar.gz'))
    change(datadir, folder, good)
    return str(tmp_path / 'home')


def replace_with(path, data):
    os.unlink(str(path))
    with open(str(path), 'wb') as f:
        f.write(data)


def truncated_archive(datadir, folder, good):
    shutil.rmtree(str(folder))
    with open(os.path.join(good, 'cifar-10-batches-py.tar.gz'), 'rb') as f:
        replace_with(datadir / 'cifar-10-batches-py.tar.gz', f.read(3000000))


def truncated_batch(datadir, folder, good):
    with open(str(folder / 'data_batch_3'), 'rb') as f:
        replace_with(folder / 'data_batch_3', f.read(1000000))


def wrong_shapes(datadir, folder, good):
    import pickle
    import numpy as np
    replace_with(folder / 'data_batch_4', pickle.dumps(
        {b'data': np.zeros((10000, 3000), np.uint8), b'labels': [0] * 10000}, protocol=2))


def missing_test_batch(datadir, folder, good):
    os.unlink(str(folder / 'test_batch'))


def folder_without_archive(datadir, folder, good):
    os.unlink(str(datadir / 'cifar-10-batches-py.tar.gz'))


@pytest.mark.parametrize('change,fragments', [
    (truncated_archive, ['cifar-10-batches-py.tar.gz has MD5', 'expected', 'Repair: delete']),
    (truncated_batch, ['data_batch_3', 'truncated or corrupt', 'Repair: delete']),
    (wrong_shapes, ['data_batch_4', '(10000, 3000)', 'Repair: delete']),
    (missing_test_batch, ['test_batch', 'is missing', 'Repair: delete']),
    (folder_without_archive, ['cifar-10-batches-py.tar.gz', 'tar -C']),
])
def test_broken_cache_gets_one_message_naming_the_file(cifar_home, tmp_path, monkeypatch,
                                                       capsys, change, fragments):
    home = broken_home(cifar_home, tmp_path, change)
    monkeypatch.setenv('HOME', home)
    proc = refused(['--logdir', str(tmp_path / 'run'), '--epochs', '1'] + TINY, capsys)
    line = one_clear_line(proc, *fragments)
    assert os.path.join(home, '.keras', 'datasets') in line


def test_unreachable_mirror_fails_naming_the_manual_route_before_any_session(
        tmp_path, refused_url, monkeypatch, capsys):
    from runkit import session
    # An empty HOME: the run must download, cannot, and stops before any session starts.
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('ALLCONVNET_CIFAR10_URL', refused_url)
    monkeypatch.setattr(session, 'setup', lambda *a: pytest.fail('a session was made'))
    proc = refused(['--logdir', str(tmp_path / 'run'), '--epochs', '1'] + TINY, capsys)
    one_clear_line(proc, 'cannot reach %s' % refused_url, 'save cifar-10-python.tar.gz')
    # The cache folders this start made are gone again.
    assert not (tmp_path / '.keras').exists()


# -- interrupted runs lose nothing and resume -----------------------------------------

# Resuming is the same after either signal, so one case resumes. SIGHUP takes the same
# handler (runkit/errors.py); tests/test_logdir.py sends it during the start and later.
@pytest.mark.parametrize('signum,resume', [(signal.SIGTERM, True), (signal.SIGINT, False)])
def test_signal_mid_run_keeps_history_and_resume_completes_it(cifar_home, tmp_path, signum,
                                                              resume):
    logdir = str(tmp_path / 'run')
    args = ['--epochs', '3', '--train-limit', '64', '--test-limit', '32', '--seed', '1',
            '--quiet', '--logdir', logdir]
    proc = start_allconvnet(args, cifar_home)
    wait_for_rows(os.path.join(logdir, 'history.csv'), 1, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    assert 'Traceback' not in err and '--resume %s' % logdir in err
    assert 'interrupted by %s; epochs 1-' % signal.Signals(signum).name in err
    run = json.load(open(os.path.join(logdir, 'run.json')))
    assert run['status'] == 'interrupted' and run['signal'] == signum
    done = run['last_epoch']
    assert done in (1, 2)
    history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
    assert list(history.epoch)[:done] == list(range(1, done + 1))
    for name in ['state.h5', 'weights.best.hdf5']:
        assert os.path.getsize(os.path.join(logdir, name)) > 0
    assert not [n for n in os.listdir(logdir) if n.endswith('.tmp')]

    if resume:
        proc = run_allconvnet(['--resume', logdir], cifar_home)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert 'Resuming %s after epoch %d' % (logdir, done) in proc.stdout
        history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
        assert list(history.epoch) == [1, 2, 3]
        run = json.load(open(os.path.join(logdir, 'run.json')))
        assert run['status'] == 'finished' and run['last_epoch'] == 3
        assert run['resumed_at_epoch'] == [done]


# The moment the suite once hit by chance: SIGINT while TensorFlow's SWIG wrapper for
# TF_NewBuffer has called back into Python, so the handler's exception passes through C.
SIGNAL_INSIDE_C = """
import os, signal, sys
from runkit import errors
from tensorflow.python import pywrap_tensorflow as c_api
def setattr_with_a_signal(self, name, value):
    os.kill(os.getpid(), signal.SIGINT)
    object.__setattr__(self, name, value)
c_api.TF_Buffer.__setattr__ = setattr_with_a_signal
sys.exit(errors.exit_code(c_api.TF_NewBuffer, 'prog'))
"""


def test_a_signal_while_c_code_calls_python_is_one_line():
    proc = subprocess.run([sys.executable, '-c', SIGNAL_INSIDE_C], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'prog: interrupted by SIGINT before anything was written')


def test_resume_refuses_a_finished_run(tmp_path, capsys):
    logdir = tmp_path / 'done'
    logdir.mkdir()
    (logdir / 'run.json').write_text(json.dumps({'status': 'finished', 'argv': []}))
    one_clear_line(refused(['--resume', str(logdir)], capsys), 'already finished')


# -- divergence ------------------------------------------------------------------------

def test_nan_loss_stops_at_once_and_keeps_history(cifar_home, tmp_path):
    logdir = str(tmp_path / 'run')
    proc = run_allconvnet(['--lr', '1e6', '--epochs', '3', '--train-limit', '64',
                           '--test-limit', '32', '--seed', '1', '--quiet', '--logdir', logdir],
                          cifar_home)
    assert proc.returncode == 3, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('allconvnet.py: error:')]
    assert len(errors) == 1 and 'training loss is nan at epoch 1, batch' in errors[0]
    assert 'Traceback' not in proc.stderr
    run = json.load(open(os.path.join(logdir, 'run.json')))
    assert run['status'] == 'diverged' and 'epoch 1, batch' in run['error']
    assert run['optimizer']['config']['lr'] == pytest.approx(1e6)


# -- limits and last resorts ----------------------------------------------------------

# The batches fail in Keras' feeding thread, as a MemoryError under `ulimit -v` does there.
FEEDER_RUNS_OUT = """
import sys, allconvnet
flow = allconvnet.ImageDataGenerator.flow
def flow_that_runs_out(self, *args, **kwargs):
    batches = flow(self, *args, **kwargs)
    def out_of_memory():
        yield next(batches)
        raise MemoryError()
    return out_of_memory()
allconvnet.ImageDataGenerator.flow = flow_that_runs_out
sys.exit(allconvnet.main(sys.argv[1:]))
"""


def test_memory_running_out_in_the_feeding_thread_is_its_own_line(cifar_home, tmp_path):
    logdir = str(tmp_path / 'run')
    proc = subprocess.run(
        [sys.executable, '-c', 'from runkit.errors import exit_code, prepare\n'
         'prepare("allconvnet.py")\n' + FEEDER_RUNS_OUT.replace(
             'sys.exit(allconvnet.main(sys.argv[1:]))',
             'sys.exit(exit_code(lambda: allconvnet.main(sys.argv[1:]), "allconvnet.py"))'),
         '--epochs', '1', '--train-limit', '64', '--test-limit', '32', '--logdir', logdir,
         '--quiet'], cwd=ROOT, env=dict(os.environ, HOME=cifar_home),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    line = one_clear_line(proc, 'out of memory (MemoryError', 'ulimit -v', code=5)
    assert 'should be a tuple' not in proc.stderr and 'Exception in thread' not in proc.stderr
    run = json.load(open(os.path.join(logdir, 'run.json')))
    assert run['status'] == 'failed' and 'out of memory' in run['error'], line


def test_an_unexpected_error_s_traceback_goes_to_the_logdir_or_stderr(cifar_home, tmp_path,
                                                                     monkeypatch, capsys):
    from runkit import logdir as logdir_module, recipes

    def bug(*args):
        raise RuntimeError('a bug')
    monkeypatch.setenv('TMPDIR', str(tmp_path / 'tmp'))
    (tmp_path / 'tmp').mkdir()
    # With the folder held: LOGDIR/traceback.txt, and nothing in $TMPDIR.
    monkeypatch.setattr(recipes, 'for_run', bug)
    line = one_clear_line(refused(['--logdir', str(tmp_path / 'run')], capsys),
                          'unexpected RuntimeError: a bug', 'traceback.txt', code=1)
    assert 'RuntimeError' in (tmp_path / 'run' / 'traceback.txt').read_text(), line
    # Before: on stderr, above the line.
    monkeypatch.setattr(logdir_module, 'claim', bug)
    proc = refused(['--logdir', str(tmp_path / 'other')], capsys)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and lines[0] == 'Traceback (most recent call last):', lines
    assert lines[-1] == 'allconvnet.py: error: unexpected RuntimeError: a bug (traceback above)'
    assert os.listdir(str(tmp_path / 'tmp')) == [] and not (tmp_path / 'other').exists()
