"""allconvnet.py end to end on synthetic data: every output file, and checkpoints that load and predict."""
import json
import os
import re

import numpy as np
import pandas
import pytest

from runkit.logdir import HISTORY_COLUMNS


@pytest.fixture(params=['single', 'two-towers'])
def finished_run(request, tiny_runs):
    return tiny_runs[request.param] + (request.param,)


def test_writes_every_output(finished_run):
    logdir, _, _ = finished_run
    for name in ['history.csv', 'weights.best.hdf5', 'model.h5', 'run.json', 'curves.png']:
        assert os.path.getsize(os.path.join(logdir, name)) > 0, name
    assert not [n for n in os.listdir(logdir) if n.endswith('.tmp')]


def test_history_has_one_row_per_epoch(finished_run):
    logdir, _, _ = finished_run
    history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(history.epoch) == [1, 2]
    assert history[['loss', 'acc', 'val_loss', 'val_acc', 'seconds']].notnull().all().all()
    assert np.allclose(history.lr, 0.01, rtol=1e-6)  # Keras' default SGD: the blog's bug


def test_run_json_records_what_really_ran(finished_run):
    logdir, _, kind = finished_run
    with open(os.path.join(logdir, 'run.json')) as f:
        run = json.load(f)
    assert run['status'] == 'finished' and run['last_epoch'] == 2
    assert run['optimizer']['config']['lr'] == pytest.approx(0.01, rel=1e-6)
    assert run['optimizer']['config']['momentum'] == 0
    assert run['optimizer']['compiled_with'] == "string 'sgd'"
    assert run['versions']['keras'] == '1.2.2' and run['versions']['tensorflow'].startswith('1.15')
    assert run['seed'] == 3 and run['args']['epochs'] == 2
    assert run['started'] <= run['ended']
    assert 'git_commit' in run
    assert run['towers'] == (2 if kind == 'two-towers' else 1)
    # Two epochs of 64 images: far below --jit auto's threshold (runkit/session.py).
    from runkit import session
    threads = list(session.mkl_threads()) if run['tf_build'] == 'mkl' else [0, 0]
    assert run['xla'] is False and run['args']['jit'] == 'auto' and run['threads'] == threads
    assert run['tf_build'] == session.tf_build()
    if kind == 'two-towers':
        assert run['devices'] == ['/cpu:0', '/cpu:1']


def test_checkpoints_load_without_custom_objects_and_predict(finished_run, cifar_home):
    from keras import backend as K
    from keras.models import load_model
    logdir, _, _ = finished_run
    x = np.random.RandomState(0).rand(3, 32, 32, 3).astype('float32')
    for name in ['weights.best.hdf5', 'model.h5']:
        K.clear_session()
        model = load_model(os.path.join(logdir, name))  # the template: no Lambda inside
        assert model.count_params() == 1369738
        probs = model.predict(x)
        assert probs.shape == (3, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_first_run_downloads_then_trains(finished_run):
    _, proc, kind = finished_run
    # The mirror of the pytest-xdist worker that made tiny_runs, whose port this one cannot know.
    downloaded = re.search(r'Downloading CIFAR-10 from http://127\.0\.0\.1:\d+/'
                           r'cifar-10-python\.tar\.gz', proc.stdout) is not None
    assert downloaded == (kind == 'single')
    if downloaded:  # the download comes before the session and the model
        assert proc.stdout.index('Downloading') < proc.stdout.index('Total params')


def test_prints_the_blog_progress_lines(finished_run):
    _, proc, _ = finished_run
    assert 'X_train shape: (64, 32, 32, 3)' in proc.stdout
    assert 'Total params: 1,369,738' in proc.stdout
    assert 'the whole run of 2 epochs takes about' in proc.stdout
    assert 'XLA on' not in proc.stdout


def test_upstreams_history_dump_agrees_with_the_per_epoch_history(finished_run):
    logdir, _, _ = finished_run
    dump = pandas.read_csv(os.path.join(logdir, 'history_callback.csv'), index_col=0)
    history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
    assert sorted(dump.columns) == ['acc', 'loss', 'val_acc', 'val_loss'] and len(dump) == 2
    for column in dump.columns:
        np.testing.assert_allclose(dump[column], history[column], rtol=1e-6)
