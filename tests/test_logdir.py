"""A run's folder, tried the hostile way: other runs' files, two writers, bad --resume states,
a full disk, signals at start-up. Refusals run main() in this process; the rest run the real
program. docs/failures.md states the promise these check."""
import json
import os
import shutil
import signal
import subprocess
import time

import pandas
import pytest

from helpers import TINY, one_clear_line, refused, run_side_by_side, start_allconvnet, \
    wait_for_rows
from runkit import errors, records
from runkit.logdir import claim


def snapshot(folder):
    """{name: bytes} of every file in `folder`, to show a refusal changed nothing."""
    return {n: open(os.path.join(folder, n), 'rb').read() for n in sorted(os.listdir(folder))}


@pytest.fixture
def stopped_run(tiny_runs, tmp_path):
    """A copy of a finished 2-epoch run that says it was a 5-epoch run interrupted after
    epoch 2."""
    logdir = tmp_path / 'stopped'
    shutil.copytree(tiny_runs['single'][0], str(logdir))
    run = json.loads((logdir / 'run.json').read_text())
    run['argv'][run['argv'].index('--epochs') + 1] = '5'
    run['recipe']['epochs'] = 5
    run.update(status='interrupted', logdir=str(logdir))
    (logdir / 'run.json').write_text(json.dumps(run))
    return logdir


# -- a new run never deletes another run's files ------------------------------------------

@pytest.mark.parametrize('record,said', [
    ('{"status": "finished"', 'an unreadable run.json'),
    ('[1, 2]', 'an unreadable run.json'),
    ('{}', 'a run.json without a status'),
    ('{"status": "exploded"}', "a run with status 'exploded'"),
    (None, 'no run.json'),
])
def test_a_folder_with_run_files_is_refused_whatever_its_run_json(tmp_path, capsys, record,
                                                                   said):
    logdir = tmp_path / 'old'
    logdir.mkdir()
    for name in ('weights.best.hdf5', 'model.h5', 'state.h5', 'history.csv'):
        (logdir / name).write_bytes(b'an older run')
    if record is not None:
        (logdir / 'run.json').write_text(record)
    before = snapshot(str(logdir))
    line = one_clear_line(refused(['--logdir', str(logdir)] + TINY, capsys), said,
                          'history.csv', '--overwrite')
    assert snapshot(str(logdir)) == before, line


def test_a_crashed_run_is_called_so_with_the_way_on(stopped_run, capsys):
    run = json.loads((stopped_run / 'run.json').read_text())
    run['status'] = 'running'  # as a SIGKILL leaves it; no process holds the folder
    (stopped_run / 'run.json').write_text(json.dumps(run))
    line = one_clear_line(refused(['--logdir', str(stopped_run)] + TINY, capsys),
                          'crashed or was killed', '--resume %s' % stopped_run)
    assert 'allconvnet.py --resume' in line


# -- flags refused before anything is written ------------------------------------------------

@pytest.mark.parametrize('argv,fragment', [
    (['--seed', '-1'], '--seed'), (['--seed', '4294967296'], '4294967295'),
    (['--lr', 'inf'], 'finite'), (['--lr', 'nan'], 'finite'),
    (['--weight-decay', 'inf'], 'finite'), (['--logdir', ''], 'empty'),
    (['--logdir', '  '], 'empty'), (['--resume', ''], 'empty'),
])
def test_out_of_range_and_empty_values_are_refused(tmp_path, capsys, monkeypatch, argv,
                                                   fragment):
    monkeypatch.chdir(tmp_path)
    one_clear_line(refused(argv + TINY, capsys), fragment)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('extra', [['--epochs', '5'], ['--logdir', 'elsewhere'],
                                   ['--seed', '3', '--lr', '0.1']])
def test_resume_refuses_flags_it_would_ignore(stopped_run, capsys, extra):
    before = snapshot(str(stopped_run))
    names = [a for a in extra if a.startswith('--')]
    one_clear_line(refused(['--resume', str(stopped_run)] + extra, capsys), *names)
    assert snapshot(str(stopped_run)) == before


# -- --resume of a damaged run: one line, nothing touched ---------------------------------

def no_history(logdir):
    (logdir / 'history.csv').unlink()


def empty_history(logdir):
    (logdir / 'history.csv').write_text('')


def short_history(logdir):
    (logdir / 'history.csv').write_text('epoch,loss,acc,val_loss,val_acc,lr,seconds\n'
                                        '1,2.3,0.1,2.3,0.1,0.01,1.0\n')


def truncated_state(logdir):
    data = (logdir / 'state.h5').read_bytes()
    (logdir / 'state.h5').write_bytes(data[:len(data) // 2])


def no_argv(logdir):
    run = json.loads((logdir / 'run.json').read_text())
    del run['argv']
    (logdir / 'run.json').write_text(json.dumps(run))


def no_state(logdir):
    # A SIGKILL after epoch 1's history row, before its state.h5: nothing to resume.
    (logdir / 'state.h5').unlink()


def edit_history(change):
    def damage(logdir):
        lines = (logdir / 'history.csv').read_text().splitlines(True)
        (logdir / 'history.csv').write_text(''.join(change(lines)))
    return damage


def edit_run(change):
    def damage(logdir):
        run = json.loads((logdir / 'run.json').read_text())
        (logdir / 'run.json').write_text(json.dumps(change(run)))
    return damage


def nested(levels):
    def damage(logdir):
        text = (logdir / 'run.json').read_text().rstrip().rstrip('}')
        (logdir / 'run.json').write_text(text + ', "x": %s0%s}' % ('[' * levels, ']' * levels))
    return damage


def linked(name):
    def damage(logdir):
        os.rename(str(logdir / name), str(logdir.parent / name))
        os.symlink(str(logdir.parent / name), str(logdir / name))
    return damage


def other_model_checkpoint(logdir):
    import h5py
    with h5py.File(str(logdir / 'weights.best.hdf5'), 'a') as f:
        group = f['model_weights']
        del group[list(group)[0]]


@pytest.mark.parametrize('damage,fragments', [
    (no_history, ['history.csv cannot be continued: it is missing', '--overwrite']),
    (empty_history, ['history.csv cannot be continued: its header', '--overwrite']),
    (short_history, ['lacks some of epochs 1-2', '--overwrite']),
    # The case: a history.csv without val_acc was rewritten before the run failed.
    (edit_history(lambda ls: [','.join(l.split(',')[:4] + l.split(',')[5:]) for l in ls]),
     ['its header is not']),
    (edit_history(lambda ls: [l.rstrip('\n') + ',extra\n' for l in ls]), ['its header is not']),
    (edit_history(lambda ls: ls[:1] + [ls[1].replace('1,', 'one,', 1)] + ls[2:]),
     ['row 1 is not']),
    (edit_history(lambda ls: ls[:2] + ls[1:2] + ls[2:]), ['row 2 is not epoch 2']),
    (edit_history(lambda ls: ls[:1] + [ls[1].replace(',', ',nan,', 1)] + ls[2:]),
     ['row 1 is not']),
    (edit_run(lambda run: [run]), ['not a run record']),
    (edit_run(lambda run: dict(run, resumed_at_epoch='1')), ['resumed_at_epoch']),
    (edit_run(lambda run: dict(run, recipe=dict(run['recipe'], dropout='half'))),
     ["run.json's recipe is not the one its arguments give"]),
    (edit_run(lambda run: dict(run, argv=run['argv'] + ['--epochs', '0'])),
     ['the arguments in its run.json are refused', '--epochs']),
    (nested(100000), ['cannot read']),
    (nested(40), ['nests deeper than 32']),
    (edit_run(lambda run: dict(run, padding='x' * (2 << 20))), ['over 1048576 bytes']),
    (linked('run.json'), ['run.json is a symbolic link']),
    (linked('state.h5'), ['state.h5 is a symbolic link']),
    (other_model_checkpoint, ['weights.best.hdf5 does not fit the model']),
    (truncated_state, ['state.h5 is truncated or damaged', '--overwrite']),
    (no_argv, ['no list of arguments']),
    (no_state, ['no epoch finished (no state.h5)', '--overwrite']),
])
def test_resume_of_a_damaged_run_is_one_line_and_touches_nothing(stopped_run, capsys, damage,
                                                                 fragments):
    damage(stopped_run)
    before = snapshot(str(stopped_run))
    one_clear_line(refused(['--resume', str(stopped_run)], capsys), *fragments)
    assert snapshot(str(stopped_run)) == before


def test_no_state_leads_somewhere_not_in_a_circle(stopped_run, capsys):
    no_state(stopped_run)
    resume_line = one_clear_line(refused(['--resume', str(stopped_run)], capsys))
    new_line = one_clear_line(refused(['--logdir', str(stopped_run)] + TINY, capsys))
    # Neither sends the user to the other: both say to start again with --overwrite.
    assert '--overwrite' in resume_line and '--resume' not in new_line.split(';')[-1]


def mount_tmpfs(folder, size):
    """A tmpfs of `size` at `folder` (root can write through file modes, so a read-only or a
    full disk needs a filesystem of its own); skips, saying why, where it cannot mount."""
    if os.geteuid() != 0 or not shutil.which('mount'):
        pytest.skip('needs root to mount a tmpfs')
    folder.mkdir()
    if subprocess.call(['mount', '-t', 'tmpfs', '-o', 'size=' + size, 'tmpfs', str(folder)]):
        pytest.skip('mount -t tmpfs was refused here')
    return folder


@pytest.fixture
def read_only(tmp_path):
    """A tmpfs that the test remounts read-only."""
    yield mount_tmpfs(tmp_path / 'ro', '64m')
    subprocess.call(['umount', '-l', str(tmp_path / 'ro')])


def test_resume_into_a_read_only_folder_is_one_line(stopped_run, read_only, capsys):
    logdir = read_only / 'run'
    shutil.copytree(str(stopped_run), str(logdir))
    assert subprocess.call(['mount', '-o', 'remount,ro', str(read_only)]) == 0
    before = snapshot(str(logdir))
    one_clear_line(refused(['--resume', str(logdir)], capsys), 'cannot write to --logdir',
                   'Read-only')
    assert snapshot(str(logdir)) == before


# -- a failed start leaves no folder ---------------------------------------------------------

def test_a_refused_start_leaves_no_empty_folder(cifar_home, tmp_path, monkeypatch, capsys,
                                                refused_url):
    from keras import backend as K
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HOME', cifar_home)
    try:
        one_clear_line(refused(['--gpus', '99'] + TINY, capsys), '--gpus 99')
    finally:
        K.clear_session()
    empty = tmp_path / 'empty-home'
    empty.mkdir()
    monkeypatch.setenv('HOME', str(empty))
    monkeypatch.setenv('ALLCONVNET_CIFAR10_URL', refused_url)
    one_clear_line(refused(['--logdir', 'deep/er/run'] + TINY, capsys), 'cannot reach')
    assert sorted(os.listdir(str(tmp_path))) == ['empty-home']


# -- what a run records however it ends --------------------------------------------------------

def held(path, record):
    """The Logdir at `path`, claimed by this process, with `record` as its run.json."""
    logdir = claim(str(path), overwrite=False)
    logdir.record = record
    return logdir


def test_any_exception_is_recorded_as_failed_with_its_reason(tmp_path):
    logdir = held(tmp_path, {'logdir': str(tmp_path), 'status': 'running', 'last_epoch': 0})
    with pytest.raises(ValueError):
        with records.outcome(logdir):
            raise ValueError('something\nunforeseen')
    logdir.release()
    stored = json.loads((tmp_path / 'run.json').read_text())
    assert stored['status'] == 'failed' and stored['error'] == 'ValueError: something unforeseen'


@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 MB tmpfs: room for one 11 MB checkpoint and not for the state.h5 after it."""
    yield mount_tmpfs(tmp_path / 'disk', '16m')
    subprocess.call(['umount', '-l', str(tmp_path / 'disk')])


def test_a_full_disk_ends_in_one_line_and_keeps_the_previous_checkpoint(cifar_home, tiny_disk):
    logdir = str(tiny_disk / 'run')
    proc = run_side_by_side([(['--epochs', '2', '--seed', '1', '--logdir', logdir] + TINY,
                              cifar_home, None)])[0]
    line = one_clear_line(proc, 'No space left on device', code=4)
    assert 'Segmentation' not in proc.stderr
    assert not [n for n in os.listdir(logdir) if n.endswith('.tmp') or n.startswith('.')]
    run = json.loads(open(os.path.join(logdir, 'run.json')).read())
    assert run['status'] == 'failed' and 'No space left' in run['error'], line
    import h5py
    with h5py.File(os.path.join(logdir, 'weights.best.hdf5'), 'r') as f:
        assert 'model_weights' in f  # the checkpoint that fitted is whole


def test_a_record_that_cannot_be_written_is_said_on_stderr(tiny_disk, capsys):
    logdir = held(tiny_disk, {'logdir': str(tiny_disk), 'status': 'running', 'last_epoch': 0})
    with open(str(tiny_disk / 'filler'), 'wb', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * (1 << 20))
                f.flush()
        except OSError:
            pass
    with pytest.raises(errors.WriteFailed) as e:
        with records.outcome(logdir):
            raise errors.WriteFailed('cannot write x: No space left on device')
    assert 'run.json could not record it' in str(e.value)
    assert 'run.json could not record' in capsys.readouterr().err
    logdir.release()
    assert sorted(os.listdir(str(tiny_disk))) == ['filler']


# -- two processes, one folder ---------------------------------------------------------------

def test_a_second_writer_is_refused_naming_the_live_run(cifar_home, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.setenv('HOME', cifar_home)
    logdir = str(tmp_path / 'live')
    live = start_allconvnet(['--epochs', '50', '--train-limit', '64', '--test-limit', '32',
                             '--seed', '1', '--quiet', '--logdir', logdir], cifar_home)
    try:
        wait_for_rows(os.path.join(logdir, 'history.csv'), 1, live)
        for argv in (['--logdir', logdir] + TINY, ['--logdir', logdir, '--overwrite'] + TINY,
                     ['--resume', logdir]):
            one_clear_line(refused(argv, capsys), 'in use', 'PID %d' % live.pid)
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=60)
        history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
        # Killed hard: the kernel freed the lock; the refusal now says what happened.
        one_clear_line(refused(['--logdir', logdir] + TINY, capsys), 'crashed or was killed')
        assert list(history.epoch) == list(range(1, len(history) + 1))
    finally:
        live.kill()
        live.wait()


# -- signals at every moment of a run's start ------------------------------------------------

def test_a_signal_at_any_moment_of_the_start_is_one_line(cifar_home, tmp_path):
    """SIGINT, SIGTERM and SIGHUP while Python imports TensorFlow, while the data loads and
    while the model builds: one line, 128 + N, and no folder left behind."""
    moments = [(0.3, signal.SIGINT), (1.5, signal.SIGHUP), (3.0, signal.SIGTERM),
               (5.0, signal.SIGINT), (7.0, signal.SIGHUP)]
    started = [(start_allconvnet(['--epochs', '3', '--logdir', str(tmp_path / str(i))] + TINY,
                                 cifar_home), delay, signum)
               for i, (delay, signum) in enumerate(moments)]
    begin = time.time()
    for proc, delay, signum in started:
        time.sleep(max(0, begin + delay - time.time()))
        proc.send_signal(signum)
    for i, (proc, delay, signum) in enumerate(started):
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            continue  # finished before the signal came: nothing to check
        assert proc.returncode == 128 + signum, (delay, err[-2000:])
        assert 'Traceback' not in err, (delay, err[-2000:])
        lines = [l for l in err.splitlines() if l.startswith('allconvnet.py:')]
        assert len(lines) == 1 and signal.Signals(signum).name in lines[0], (delay, err)
        assert 'LOGDIR' not in lines[0]
        folder = tmp_path / str(i)
        if 'are kept in' in lines[0]:
            assert (folder / 'state.h5').exists() and (folder / 'history.csv').exists()
        else:
            assert not folder.exists(), (delay, err)


def test_a_signal_before_the_first_epoch_ends_says_so_and_keeps_nothing(cifar_home, tmp_path):
    logdir = tmp_path / 'run'
    argv = ['--epochs', '2', '--train-limit', '2000', '--test-limit', '32', '--quiet',
            '--logdir', str(logdir)]
    proc = start_allconvnet(argv, cifar_home)
    deadline = time.time() + 120
    while not (logdir / 'run.json').exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith('allconvnet.py: interrupted by SIGINT before the first epoch '
                           'finished; nothing was kept. Start again with: ')
    assert line.endswith('allconvnet.py ' + ' '.join(argv)) and '--resume' not in line
    assert not logdir.exists()


def test_a_signal_while_resume_restores_leaves_the_run_as_it_was(stopped_run, cifar_home,
                                                                  tmp_path):
    """SIGINT at several moments of --resume's start (data, model, restore), one copy of the
    run each, side by side: the history and status are as before, or, once training went on,
    the new epochs kept. (A signal while Python imports TensorFlow comes before the flags are
    read, the same for any run: the test above.)"""
    delays = (3.0, 5.0, 7.0)
    copies = [tmp_path / ('copy%d' % i) for i in range(len(delays))]
    started = []
    for copy in copies:
        shutil.copytree(str(stopped_run), str(copy))
        run = json.loads((copy / 'run.json').read_text())
        (copy / 'run.json').write_text(json.dumps(dict(run, logdir=str(copy))))
        started.append(start_allconvnet(['--resume', str(copy)], cifar_home))
    begin = time.time()
    for proc, delay in zip(started, delays):
        time.sleep(max(0, begin + delay - time.time()))
        proc.send_signal(signal.SIGINT)
    for proc, delay, copy in zip(started, delays, copies):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and 'Traceback' not in err, (delay, err[-2000:])
        run = json.loads((copy / 'run.json').read_text())
        assert run['status'] == 'interrupted', (delay, run['status'])
        history = pandas.read_csv(str(copy / 'history.csv'))
        assert list(history.epoch)[:2] == [1, 2], delay
