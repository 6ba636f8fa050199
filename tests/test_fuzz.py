"""Inputs nobody listed: run.json, history.csv, state.h5, flags and settings made by hypothesis.

Each input goes through allconvnet.py's main() (or runkit.dataset's) in this process, as
`python allconvnet.py ARGV` would run it, up to the point where the run would look for GPUs:
everything it reads from disk, the environment and its flags has been read and judged by
then, and nothing is trained. Every input must end in exit 0 (it would train) or 2 (refused),
with at most one line on stderr that starts with the program's name and no traceback, and
with no file changed outside LOGDIR.
"""
import json
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import allconvnet
from runkit import dataset, errors

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
RUN_KEYS = ['argv', 'recipe', 'overridden', 'status', 'resumed_at_epoch', 'last_epoch', 'logdir',
            'preprocessing', 'args', 'seed', 'machine']


class WouldTrain(BaseException):
    """Raised where the run would look for GPUs: every input was accepted."""


def tree(folder):
    """{path: (size, mtime)} of every file below `folder`."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            st_ = os.lstat(path)
            found[path] = (st_.st_size, st_.st_mtime_ns)
    return found


def ends_well(capsys, run, prog='allconvnet.py'):
    """run()'s exit code, checked to be 0 or 2 with at most one line of the program's."""
    try:
        code = run()
    except WouldTrain:
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err[-3000:])
    assert 'Traceback' not in err and 'unexpected' not in err, err[-3000:]
    assert len([l for l in err.splitlines() if l.startswith(prog)]) <= 1, err
    return code, err


@pytest.fixture
def until_gpus(monkeypatch, cifar_home):
    def would_train(args):
        raise WouldTrain()
    monkeypatch.setattr(allconvnet.session, 'check_gpus', would_train)
    monkeypatch.setenv('HOME', cifar_home)


@pytest.fixture(scope='module')
def stopped(tiny_runs, tmp_path_factory):
    """The files of a finished 2-epoch run that says it stopped after epoch 2 of 5."""
    folder = str(tmp_path_factory.mktemp('fuzz-template'))
    for name in ('run.json', 'history.csv', 'state.h5', 'weights.best.hdf5'):
        shutil.copy(os.path.join(tiny_runs['single'][0], name), folder)
    run = json.load(open(os.path.join(folder, 'run.json')))
    run['argv'][run['argv'].index('--epochs') + 1] = '5'
    run['recipe']['epochs'] = 5
    run.update(status='interrupted')
    with open(os.path.join(folder, 'run.json'), 'w') as f:
        json.dump(run, f)
    return folder


def resume_with(stopped, capsys, name, data):
    """--resume of a copy of `stopped` whose `name` holds `data`; nothing outside changes."""
    outside = tempfile.mkdtemp()
    logdir = os.path.join(outside, 'run')
    shutil.copytree(stopped, logdir)
    with open(os.path.join(logdir, name), 'wb') as f:
        f.write(data)
    before = tree(outside)
    try:
        code, err = ends_well(capsys, lambda: errors.exit_code(
            lambda: allconvnet.main(['--resume', logdir]), 'allconvnet.py'))
        after = tree(outside)
        # Refused: nothing changed at all; accepted: only LOGDIR's own files may have.
        changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
        assert not [p for p in changed if code == 2 or not p.startswith(logdir + os.sep)], \
            (changed, err)
        return code
    finally:
        shutil.rmtree(outside)


@FUZZ
@given(key=st.sampled_from(RUN_KEYS), value=JSON, drop=st.booleans())
def test_run_json_fields(stopped, capsys, until_gpus, key, value, drop):
    run = json.load(open(os.path.join(stopped, 'run.json')))
    if drop:
        run.pop(key, None)
    else:
        run[key] = value
    resume_with(stopped, capsys, 'run.json', json.dumps(run).encode())


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode())))
def test_run_json_whole(stopped, capsys, until_gpus, data):
    assert resume_with(stopped, capsys, 'run.json', data) == 2


@FUZZ
@given(cut=st.integers(0, 400), insert=st.text(max_size=30), length=st.integers(0, 30))
def test_history_csv_edits(stopped, capsys, until_gpus, cut, insert, length):
    text = open(os.path.join(stopped, 'history.csv')).read()
    cut = min(cut, len(text))
    edited = text[:cut] + insert + text[cut + length:]
    resume_with(stopped, capsys, 'history.csv', edited.encode('utf8', 'surrogatepass'))


@FUZZ
@given(cut=st.floats(0, 1), flip=st.integers(0, 1 << 24))
def test_state_h5_damage(stopped, capsys, until_gpus, cut, flip):
    data = bytearray(open(os.path.join(stopped, 'state.h5'), 'rb').read())
    if cut < 0.5:
        data = data[:int(len(data) * cut * 2)]
    else:
        data[flip % len(data)] ^= 0xff
    resume_with(stopped, capsys, 'state.h5', bytes(data))


FLAGS = ['--recipe', '--epochs', '--batch-size', '--gpus', '--train-limit', '--test-limit',
         '--dim-ordering', '--seed', '--jit', '--lr', '--weight-decay', '--logdir', '--resume']
SWITCHES = ['--towers-on-cpu', '--deterministic', '--pass-sgd-object', '--overwrite', '--quiet']
VALUES = st.one_of(st.text(max_size=12), st.integers(-2 ** 40, 2 ** 40).map(str),
                   st.floats().map(repr), st.sampled_from(['all', 'tf', 'th', 'on', 'blog', '']))


@FUZZ
@given(argv=st.lists(st.one_of(st.tuples(st.sampled_from(FLAGS), VALUES).map(list),
                               st.sampled_from(SWITCHES).map(lambda s: [s]),
                               st.text(max_size=8).map(lambda s: [s])), max_size=5))
def test_flag_values(capsys, until_gpus, monkeypatch, argv):
    folder = tempfile.mkdtemp()
    monkeypatch.chdir(folder)
    try:
        flat = [a.replace('\0', '') for part in argv for a in part]
        ends_well(capsys, lambda: errors.exit_code(lambda: allconvnet.main(flat),
                                                   'allconvnet.py'))
        # A run that would train made its folder; at exit it leaves none that stayed empty.
        assert tree(folder) == {}, tree(folder)
    finally:
        monkeypatch.chdir('/')
        shutil.rmtree(folder)


@FUZZ
@given(url=st.one_of(st.none(), st.text(max_size=40)),
       md5=st.one_of(st.none(), st.text(max_size=40)))
def test_download_settings(capsys, cifar_home, monkeypatch, url, md5):
    # With the cache in place nothing is downloaded: the settings are judged, not used.
    monkeypatch.setenv('HOME', cifar_home)
    for name, value in ((dataset.URL_VARIABLE, url), (dataset.MD5_VARIABLE, md5)):
        if value is None or '\0' in value:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    before = tree(os.path.join(cifar_home, '.keras'))
    ends_well(capsys, lambda: errors.exit_code(lambda: dataset.main([]),
                                               'python -m runkit.dataset'),
              prog='python -m runkit.dataset')
    assert tree(os.path.join(cifar_home, '.keras')) == before
