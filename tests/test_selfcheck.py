"""tools/selfcheck.py: its refusals, its verdict on the committed runs, one tiny check end to end.

The real self-check trains the reference configuration for about 12 minutes, which the suite does
not. Its pieces are tested here instead: the configuration read from the set (the committed one),
the refusals before and after allconvnet.py starts (each one line, exit 2), the signals passed on
to it, a stopped run, the verdict and the plot on committed histories (a run of the set against
the others, a changed run, a diverged one), the blow-up's rerun, and one whole check on a made-up
set whose run.json names a 1-epoch, 64-image configuration of the synthetic data: the self-check
takes its configuration from the set, as always.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT
from runkit.errors import exit_code
from tools import curves, selfcheck

SET = os.path.join(ROOT, 'logs', 'reference', 'upstream-10k')
CHANGED = os.path.join(ROOT, 'logs', 'reference', 'upstream-10k-changed')
TINY = os.path.join(ROOT, 'logs', 'reference', 'synthetic-tiny')
PROG = 'python -m tools.selfcheck'


def run_selfcheck(args, home=None, env=None, timeout=600):
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    if home:
        full_env['HOME'] = home
    return subprocess.run([sys.executable, '-m', 'tools.selfcheck'] + list(args), cwd=ROOT,
                          env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


def assert_one_error_line(proc, start):
    """Exit 2 and one error line, the last on stderr (Keras may say which backend it uses)."""
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if 'error' in line.lower() or 'Traceback' in line]
    assert proc.returncode == 2 and errors == lines[-1:], proc.stdout[-2000:] + proc.stderr
    assert lines[-1].startswith(start), lines[-1]
    return lines[-1]


def copy_run(src, dest):
    os.makedirs(dest)
    for name in ('history.csv', 'run.json'):
        shutil.copy(os.path.join(src, name), dest)
    return dest


# --- the configuration comes from the set ------------------------------------------------------

def test_the_configuration_is_the_committed_set_s_command_line():
    refs = curves.load_references([SET])
    assert len(refs) >= 5
    assert selfcheck.configuration(refs) == ['--recipe', 'upstream', '--train-limit', '10000',
                                             '--epochs', '5']


def test_own_flags_are_stripped_in_both_spellings():
    assert selfcheck.without_own(['--seed', '3', '--quiet', '--logdir=x', '--lr', '0.1',
                                  '--seed=4', '--logdir', 'y']) == ['--lr', '0.1']


def test_a_set_of_several_command_lines_or_none_is_refused():
    refs = curves.load_references([SET])
    refs[-1].run = dict(refs[-1].run, argv=refs[-1].run['argv'] + ['--jit', 'off'])
    with pytest.raises(curves.CurvesError, match='not made with one command line .* has '
                                                 '--recipe .*--epochs 5 --jit off$'):
        selfcheck.configuration(refs)
    refs[-1].run = None
    with pytest.raises(curves.CurvesError, match='has no run.json with the command line'):
        selfcheck.configuration(refs)


def test_the_default_set_is_the_variable_s_then_the_repository_s(monkeypatch):
    monkeypatch.delenv('ALLCONVNET_REFERENCE_SET', raising=False)
    assert selfcheck.default_reference() == SET
    monkeypatch.setenv('ALLCONVNET_REFERENCE_SET', '/opt/set')
    assert selfcheck.default_reference() == '/opt/set'


# --- refusals: one line, exit 2 ----------------------------------------------------------------

def test_refusals_before_training_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(selfcheck, 'train', lambda argv: pytest.fail('trained: %s' % argv))

    def refused(*argv):
        code = exit_code(lambda: selfcheck.main([str(a) for a in argv]), PROG)
        err = capsys.readouterr().err
        assert code == 2 and err.count('\n') == 1 and err.startswith(PROG + ': error: '), err
        return err
    assert 'no such file' in refused('--reference', tmp_path / 'nope')
    lone = copy_run(os.path.join(SET, 'seed-1'), str(tmp_path / 'lone' / 'seed-1'))
    assert 'band needs 5 or more reference runs besides the run itself, not 1' in refused(
        '--reference', os.path.dirname(lone))
    # A set of two passes nearly any run: refused before the training, not after it.
    four = str(tmp_path / 'four')
    for name in ('seed-1', 'seed-2', 'seed-3', 'seed-4'):
        copy_run(os.path.join(SET, name), os.path.join(four, name))
    assert 'not 4' in refused('--reference', four)
    assert '--resume: the self-check trains a fresh run' in refused('--reference', SET,
                                                                    '--resume', 'x')
    assert '--overwrite: the self-check' in refused('--reference', SET, '--overwrite')
    # Runs made with different command lines are no set: the recipe differs here.
    mixed = str(tmp_path / 'mixed')
    for name in ('seed-1', 'seed-2', 'seed-3', 'seed-4', 'seed-6'):
        copy_run(os.path.join(SET, name), os.path.join(mixed, name))
    copy_run(os.path.join(CHANGED, 'blog', 'seed-11'), os.path.join(mixed, 'blog'))
    assert 'the reference runs differ in args.recipe' in refused('--reference', mixed)


def test_a_bad_flag_is_allconvnet_py_s_own_line(tmp_path):
    proc = run_selfcheck(['--reference', SET, '--bogus', '--logdir', str(tmp_path / 'run')])
    line = assert_one_error_line(proc, 'allconvnet.py: error:')
    assert '--bogus' in line
    assert 'allconvnet.py --recipe upstream --train-limit 10000 --epochs 5 --bogus' in proc.stdout


@pytest.mark.parametrize('code,err', [
    (143, PROG + ': stopped: nothing was judged; check again with: make check\n'), (4, '')])
def test_a_run_stopped_or_refused_is_not_judged_nor_rerun(tmp_path, monkeypatch, capsys, code,
                                                          err):
    trained = []
    monkeypatch.setattr(selfcheck, 'train', lambda argv: trained.append(argv) or code)
    assert selfcheck.main(['--reference', SET, '--logdir', str(tmp_path / 'run')]) == code
    out, got = capsys.readouterr()
    assert len(trained) == 1 and got == err and 'self-check: training' in out
    assert 'self-check:' not in out.split('\n', 2)[-1], out


STAND_IN = """import signal, sys, time
got = []
def on(signum, frame):
    got.append(signum)
    if len(got) == 2:
        open(sys.argv[1], 'w').write(' '.join(map(str, got)))
        sys.exit(143)
signal.signal(signal.SIGTERM, on)
signal.signal(signal.SIGHUP, on)
open(sys.argv[1] + '.ready', 'w').close()
time.sleep(60)
"""


def test_term_and_hup_go_on_to_the_training_and_ctrl_c_does_not_end_the_wait(tmp_path,
                                                                            monkeypatch):
    # A real child in allconvnet.py's place, which writes down the signals it gets.
    (tmp_path / 'allconvnet.py').write_text(STAND_IN)
    monkeypatch.setattr(selfcheck, 'REPO', str(tmp_path))
    got = tmp_path / 'got'

    def signal_the_self_check():
        deadline = time.time() + 30
        while not os.path.exists(str(got) + '.ready') and time.time() < deadline:
            time.sleep(0.01)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # as a terminal, docker
            os.kill(os.getpid(), signum)                               # stop and ssh would
            time.sleep(0.2)
    reached_me = []

    def mine(signum, frame):
        reached_me.append(signum)
    mine_too = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = {s: signal.signal(s, mine) for s in mine_too}
    try:
        sender = threading.Thread(target=signal_the_self_check)
        sender.start()
        assert selfcheck.train([str(got)]) == 143
        sender.join()
        assert got.read_text() == '%d %d' % (signal.SIGTERM, signal.SIGHUP)
        assert reached_me == []  # TERM and HUP were passed on, INT ignored
        assert [signal.getsignal(s) for s in mine_too] == [mine] * 3  # and ours are back
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def tiny_set(folder):
    """Five made-up runs, the fewest a band is drawn from, whose run.json names the tiny
    configuration: 1 epoch of 64 synthetic images, validated on 32, deterministic; their
    val_acc and val_loss up to 0.05 either side of synthetic-tiny's first epoch (the same model
    on the same data, a little longer), a band wide enough for any run that trains; the band's
    own tests are in test_curves.py and test_bands.py."""
    with open(os.path.join(TINY, 'run.json')) as f:
        record = json.load(f)
    with open(os.path.join(TINY, 'history.csv')) as f:
        header, first = f.read().splitlines()[:2]
    values = dict(zip(header.split(','), first.split(',')))
    for seed, sign in ((11, 1), (12, -1), (13, 0.5), (14, -0.5), (15, 0)):
        run = os.path.join(folder, 'seed-%d' % seed)
        os.makedirs(run)
        argv = ['--deterministic', '--epochs', '1', '--train-limit', '64', '--test-limit',
                '32', '--seed', str(seed), '--logdir', run, '--quiet']
        with open(os.path.join(run, 'run.json'), 'w') as f:
            json.dump(dict(record, argv=argv, seed=seed, args=dict(record['args'], seed=seed,
                                                                   epochs=1)), f)
        row = dict(values, val_acc=float(values['val_acc']) + sign * 0.05,
                   val_loss=float(values['val_loss']) + sign * 0.05)
        row['val_acc'] = min(max(row['val_acc'], 0.), 1.)
        with open(os.path.join(run, 'history.csv'), 'w') as f:
            f.write(header + '\n' + ','.join(str(row[c]) for c in header.split(',')) + '\n')
    return folder


def test_more_gpus_than_visible_is_allconvnet_py_s_own_line(tmp_path, cifar_home):
    proc = run_selfcheck(['--reference', tiny_set(str(tmp_path / 'set')), '--gpus', '3',
                          '--logdir', str(tmp_path / 'run')], home=cifar_home,
                         env={'CUDA_VISIBLE_DEVICES': ''})
    assert '--gpus 3 asks for more' in assert_one_error_line(proc, 'allconvnet.py: error:')


def test_no_data_is_allconvnet_py_s_own_line(tmp_path, refused_url):
    home = str(tmp_path / 'home')
    os.makedirs(home)
    proc = run_selfcheck(['--reference', tiny_set(str(tmp_path / 'set')), '--logdir',
                          str(tmp_path / 'run')], home=home,
                         env={'ALLCONVNET_CIFAR10_URL': refused_url})
    assert 'cannot reach' in assert_one_error_line(proc, 'allconvnet.py: error:')


# --- the verdict, on committed histories -------------------------------------------------------

def test_a_run_of_the_set_passes_against_the_others(tmp_path):
    others = str(tmp_path / 'others')
    names = [os.path.basename(r) for r in curves.runs_in(SET)]
    for name in names[1:]:
        copy_run(os.path.join(SET, name), os.path.join(others, name))
    run = copy_run(os.path.join(SET, names[0]), str(tmp_path / 'run'))
    text, code, _ = selfcheck.judge(run, curves.load_references([others]))
    assert code == 0 and 'self-check: PASS: inside the band of %d reference runs at all 5 ' \
                         'epochs' % (len(names) - 1) in text
    assert 'INSIDE the band at all 5 compared epochs' in text
    speed = next(line for line in text.splitlines() if line.startswith('speed:'))
    assert 'training images/s over 5 epoch(s)' in speed and 'the reference runs' in speed
    with open(os.path.join(run, 'band.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_a_run_that_learns_nothing_is_undecided_and_asks_for_a_second_check(tmp_path):
    run = copy_run(os.path.join(SET, 'seed-1'), str(tmp_path / 'stuck'))
    with open(os.path.join(run, 'history.csv'), 'w') as f:
        f.write('epoch,loss,acc,val_loss,val_acc,lr,seconds\n' + ''.join(
            '%d,2.3026,0.1,2.3026,0.1,0.01,150\n' % e for e in range(1, 6)))
    text, code, _ = selfcheck.judge(run, curves.load_references([SET]))
    assert code == 3 and 'self-check: UNDECIDED: the run is still at chance accuracy' in text
    assert '10 of the 10 references had left it by then, the latest at epoch 3.57' in text


def test_a_run_that_blew_up_is_its_own_outcome(tmp_path):
    others = [curves.load_history(os.path.join(SET, 'seed-%d' % i)) for i in (1, 2, 3, 4, 6)]
    run = copy_run(os.path.join(SET, 'seed-5-stock'), str(tmp_path / 'blown'))
    text, code, blew_up = selfcheck.judge(run, others)
    assert (code, blew_up) == (3, True) and 'self-check: BLEW UP: the run blew up at epoch 5' in text
    assert 'none of the set did too' in text
    text, code, blew_up = selfcheck.judge(
        copy_run(os.path.join(SET, 'seed-1'), str(tmp_path / 'nan')), others, diverged=True)
    assert (code, blew_up) == (3, True) and 'self-check: BLEW UP: the run diverged' in text


@pytest.mark.parametrize('rerun,code', [('seed-1', 0), ('seed-5-stock', 1)])
def test_a_blow_up_is_trained_once_more_with_the_next_seed_which_decides(tmp_path, monkeypatch,
                                                                       capsys, rerun, code):
    # Training stands in as the committed runs it would make: seed 5's blow-up, then the rerun.
    trained = []

    def train(argv):
        logdir = argv[argv.index('--logdir') + 1]
        trained.append((argv[argv.index('--seed') + 1], logdir))
        copy_run(os.path.join(SET, 'seed-5-stock' if len(trained) == 1 else rerun), logdir)
        return 0
    monkeypatch.setattr(selfcheck, 'train', train)
    logdir = str(tmp_path / 'check')
    assert selfcheck.main(['--seed', '5', '--logdir', logdir]) == code
    assert trained == [('5', logdir), ('6', logdir + '-rerun')]
    out = capsys.readouterr().out
    assert 'one more run, with seed 6, decides' in out
    assert ('self-check: PASS' in out) == (code == 0)
    assert ('two runs in a row blew up' in out) == (code == 1)


def test_a_run_that_diverges_in_its_first_epoch_blew_up_and_is_rerun(tmp_path, monkeypatch,
                                                                     capsys):
    seeds = []

    def train(argv):
        seeds.append(argv[argv.index('--seed') + 1])
        return 3  # allconvnet.py's exit for a NaN loss, here before any epoch ended
    monkeypatch.setattr(selfcheck, 'train', train)
    logdir = str(tmp_path / 'check')
    assert selfcheck.main(['--reference', SET, '--seed', '7', '--logdir', logdir]) == 1
    out = capsys.readouterr().out
    assert seeds == ['7', '8'] and 'two runs in a row blew up' in out
    assert out.count('self-check: BLEW UP: the run diverged before its first epoch ended') == 2


def test_the_report_points_at_the_settings_that_differ(tmp_path):
    text, _, _ = selfcheck.judge(copy_run(os.path.join(CHANGED, 'blog', 'seed-11'), str(tmp_path / 'blog')),
                              curves.load_references([SET]))
    assert 'recipe_name: blog vs upstream' in text
    assert 'tf_build: run mkl; references mkl (seed-1 seed-10 seed-2 seed-3 seed-4 seed-6 ' \
           'seed-7 seed-8 seed-9), stock (seed-5-stock)' in text
    # The blog recipe left the plateau late, and is judged from there on.
    assert 'self-check: FAIL: outside the band at epoch(s) 4-5 (first: epoch 4, val_loss)' in text


# --- one whole check, on the tiny configuration ------------------------------------------------

def test_a_whole_self_check_on_a_tiny_set(tmp_path, cifar_home):
    logdir = str(tmp_path / 'run')
    proc = run_selfcheck(['--reference', tiny_set(str(tmp_path / 'set')), '--seed', '1',
                          '--logdir', logdir], home=cifar_home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '64/64 [' in proc.stdout  # the progress bar: no --quiet
    assert 'self-check: PASS' in proc.stdout and 'training images/s' in proc.stdout
    with open(os.path.join(logdir, 'run.json')) as f:
        record = json.load(f)
    # The set's configuration, with the check's seed and logdir.
    assert record['argv'] == ['--deterministic', '--epochs', '1', '--train-limit', '64',
                              '--test-limit', '32', '--seed', '1', '--logdir', logdir]
    assert record['status'] == 'finished' and record['args']['train_limit'] == 64
    assert os.path.exists(os.path.join(logdir, 'band.png'))
