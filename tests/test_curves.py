"""Unit tests of tools/curves.py (compare, plot, claim) on small history.csv files made here.

Fast and TensorFlow-free: no training, no Keras import.
"""
import json
import os
import subprocess
import sys

import pandas
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools import curves  # noqa: E402

COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']


def write_run(folder, val_acc, loss=None, run=None, columns=COLUMNS, epochs=None):
    """A run directory with a history.csv (one row per val_acc) and, if given, a run.json."""
    os.makedirs(str(folder), exist_ok=True)
    n = len(val_acc)
    loss = loss if loss is not None else [2.3 - 0.01 * i for i in range(n)]
    frame = pandas.DataFrame({
        'epoch': epochs or list(range(1, n + 1)), 'loss': loss,
        'acc': [0.1 + 0.01 * i for i in range(n)], 'val_loss': [2.3 - 0.02 * i for i in range(n)],
        'val_acc': val_acc, 'lr': [0.01] * n, 'seconds': [5.0 + i for i in range(n)]})
    frame[columns].to_csv(os.path.join(str(folder), 'history.csv'), index=False)
    if run is not None:
        with open(os.path.join(str(folder), 'run.json'), 'w') as f:
            json.dump(run, f)
    return str(folder)


def run_json(lr=0.01, seed=1, deterministic=True, status='finished', **extra):
    record = {'args': {'batch_size': 32, 'deterministic': deterministic, 'seed': seed,
                       'train_limit': 256, 'logdir': 'x'},
              'seed': seed, 'status': status, 'towers': 1,
              'versions': {'tensorflow': '1.15.5', 'keras': '1.2.2'},
              'machine': {'cpu': 'AMD EPYC', 'cores': 2},
              'optimizer': {'class_name': 'SGD', 'config': {'lr': lr, 'momentum': 0.0}}}
    record.update(extra)
    return record


REF = [0.10, 0.20, 0.30, 0.40, 0.50]


def cli(capsys, *argv):
    code = curves.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2
    assert err.count('\n') == 1 and err.startswith('curves.py: error: ')
    assert 'Traceback' not in err
    for word in words:
        assert word in err


# --- compare ---------------------------------------------------------------------------------

def test_identical_runs_are_inside_and_exit_0(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, run=run_json())
    ref = write_run(tmp_path / 'ref', REF, run=run_json())
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 0
    assert 'INSIDE the band at all 5 compared epochs' in out
    assert 'same settings' in out
    assert 'run (SGD lr=0.01' in out  # labelled from run.json


def test_small_differences_stay_inside_the_band(tmp_path):
    run = write_run(tmp_path / 'run', [0.11, 0.19, 0.32, 0.40, 0.48])
    ref = write_run(tmp_path / 'ref', REF)
    report = curves.compare(run, ref, {'val_acc': 0.02})
    assert report.ok and report.exit_code == 0 and report.out_epochs == []
    # A difference of exactly the band is inside, despite float rounding in the subtraction.
    assert curves.compare(write_run(tmp_path / 'edge', [0.13]), write_run(tmp_path / 'e2', [0.11]),
                          {'val_acc': 0.02}).ok


def test_outside_band_names_first_and_worst_epoch(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.10, 0.23, 0.30, 0.35, 0.50])
    ref = write_run(tmp_path / 'ref', REF)
    report = curves.compare(run, ref)  # default: val_acc within 0.02
    assert not report.ok and report.exit_code == 1
    assert report.out_epochs == [2, 4]
    assert report.first_out == (2, 'val_acc')
    assert report.worst_out == (4, 'val_acc')
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1
    assert 'OUTSIDE the band at 2 of 5 compared epochs (2, 4)' in out
    assert 'first:     epoch 2, val_acc' in out
    assert 'worst:     epoch 4, val_acc' in out and 'diff -0.0500' in out
    assert out.count('OUT\n') == 2
    assert 'next:' in out and 'tools/curves.py plot' in out


def test_tol_widens_the_band(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.10, 0.23, 0.30, 0.35, 0.50])
    ref = write_run(tmp_path / 'ref', REF)
    assert cli(capsys, 'compare', run, ref, '--tol', '0.06')[0] == 0


def test_per_metric_band_adds_the_metric(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, loss=[2.3, 2.29, 2.18, 2.27, 2.26])
    ref = write_run(tmp_path / 'ref', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.26])
    assert cli(capsys, 'compare', run, ref)[0] == 0  # loss is not compared by default
    code, out, _ = cli(capsys, 'compare', run, ref, '--tol-metric', 'loss=0.05')
    assert code == 1
    assert 'first:     epoch 3, loss' in out
    assert cli(capsys, 'compare', run, ref, '--tol-metric', 'loss=0.2')[0] == 0


def test_worst_is_relative_to_each_band(tmp_path):
    # val_acc off by 0.03 (1.5 bands of 0.02), loss off by 0.5 (1.25 bands of 0.4): val_acc is worse.
    run = write_run(tmp_path / 'run', [0.1, 0.23], loss=[2.3, 2.8])
    ref = write_run(tmp_path / 'ref', [0.1, 0.20], loss=[2.3, 2.3])
    report = curves.compare(run, ref, {'val_acc': 0.02, 'loss': 0.4})
    assert report.worst_out == (2, 'val_acc')


def test_metrics_all_compares_every_curve_column(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.2600001])
    ref = write_run(tmp_path / 'ref', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.26])
    code, out, _ = cli(capsys, 'compare', run, ref, '--metrics', 'all', '--tol', '1e-9')
    assert code == 1
    assert 'first:     epoch 5, loss' in out
    for metric in ('loss diff', 'acc diff', 'val_loss diff', 'lr diff'):
        assert metric in out
    assert 'seconds' not in out.split('epoch ', 1)[1].split('\n', 1)[0]  # wall time never compared
    assert cli(capsys, 'compare', run, ref, '--metrics', 'all', '--tol', '1e-6')[0] == 0


def test_shorter_run_is_compared_on_shared_epochs(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF[:3])
    ref = write_run(tmp_path / 'ref', REF)
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 0
    assert 'compared on 1-3 (3 shared)' in out
    assert 'shorter than the reference: reference epochs 4-5 are not compared' in out
    assert '--resume' in out


def test_longer_run_is_compared_on_shared_epochs(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF + [0.6, 0.7])
    ref = write_run(tmp_path / 'ref', REF)
    report = curves.compare(run, ref)
    assert report.ok and report.shared == [1, 2, 3, 4, 5]
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 0 and 'longer than the reference: run epochs 6-7' in out


def test_no_shared_epoch_is_an_input_error(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.1, 0.2], epochs=[6, 7])
    ref = write_run(tmp_path / 'ref', [0.1, 0.2])
    assert_one_line_error(*cli(capsys, 'compare', run, ref)[::2], 'share no epoch')


def test_nan_in_the_run_is_outside_and_worst(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.10, 0.25, float('nan')])
    ref = write_run(tmp_path / 'ref', REF[:3])
    report = curves.compare(run, ref)
    assert report.out_epochs == [2, 3]
    assert report.first_out == (2, 'val_acc') and report.worst_out == (3, 'val_acc')
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1 and 'NaN' in out


def test_run_json_differences_are_reported(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.1, 0.3], run=run_json(lr=0.05))
    ref = write_run(tmp_path / 'ref', [0.1, 0.2], run=run_json(lr=0.01))
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1
    assert 'optimizer.config.lr: 0.05 vs 0.01' in out
    assert 'args.logdir' not in out  # where a run writes does not shape its curve


def test_undeterministic_runs_get_the_rerun_hint(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.1, 0.3], run=run_json(seed=None, deterministic=False))
    ref = write_run(tmp_path / 'ref', [0.1, 0.2], run=run_json())
    out = cli(capsys, 'compare', run, ref)[1]
    assert 'was not made with --seed N --deterministic' in out


def test_history_csv_paths_work_like_run_directories(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF)
    ref = write_run(tmp_path / 'ref', REF)
    assert cli(capsys, 'compare', os.path.join(run, 'history.csv'), ref)[0] == 0


def test_long_histories_print_a_short_table(tmp_path, capsys):
    values = [0.5] * 200
    bad = list(values)
    bad[99] = 0.9
    run, ref = write_run(tmp_path / 'run', bad), write_run(tmp_path / 'ref', values)
    out = cli(capsys, 'compare', run, ref)[1]
    rows = [l for l in out.splitlines() if l.endswith((' ok', ' OUT'))]
    assert len(rows) == 7 and '...' in out  # first 3, the one outside, last 3
    out = cli(capsys, 'compare', run, ref, '--all-rows')[1]
    assert len([l for l in out.splitlines() if l.endswith((' ok', ' OUT'))]) == 200


# --- input errors ----------------------------------------------------------------------------

def test_missing_column_is_one_clear_line(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, columns=['epoch', 'loss', 'acc'])
    ref = write_run(tmp_path / 'ref', REF)
    code, _, err = cli(capsys, 'compare', run, ref)
    assert_one_line_error(code, err, 'no val_acc column', 'history.csv')


def test_missing_column_of_a_requested_metric(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF)
    ref = write_run(tmp_path / 'ref', REF, columns=['epoch', 'val_acc'])
    code, _, err = cli(capsys, 'compare', run, ref, '--tol-metric', 'val_loss=0.1')
    assert_one_line_error(code, err, 'no val_loss column', os.path.join('ref', 'history.csv'))


def test_empty_file_is_one_clear_line(tmp_path, capsys):
    ref = write_run(tmp_path / 'ref', REF)
    empty = tmp_path / 'history.csv'
    empty.write_text('')
    code, _, err = cli(capsys, 'compare', empty, ref)
    assert_one_line_error(code, err, 'is empty')
    empty.write_text(','.join(COLUMNS) + '\n')
    code, _, err = cli(capsys, 'compare', empty, ref)
    assert_one_line_error(code, err, 'no epochs')


def test_missing_file_and_directory_without_history(tmp_path, capsys):
    ref = write_run(tmp_path / 'ref', REF)
    assert_one_line_error(*cli(capsys, 'compare', tmp_path / 'nope.csv', ref)[::2],
                          'no such file')
    (tmp_path / 'bare').mkdir()
    assert_one_line_error(*cli(capsys, 'compare', tmp_path / 'bare', ref)[::2],
                          'without a history.csv')
    diverged = tmp_path / 'diverged'
    diverged.mkdir()
    (diverged / 'run.json').write_text(json.dumps({'status': 'diverged'}))
    assert_one_line_error(*cli(capsys, 'compare', diverged, ref)[::2],
                          'status diverged', 'finished no epoch')


def test_non_numeric_values_are_an_input_error(tmp_path, capsys):
    ref = write_run(tmp_path / 'ref', REF)
    bad = tmp_path / 'bad.csv'
    bad.write_text('epoch,val_acc\n1,0.1\n2,oops\n')
    assert_one_line_error(*cli(capsys, 'compare', bad, ref)[::2], 'not a number')


def test_upstream_history_without_epoch_column_is_read_by_row(tmp_path):
    # The upstream repository wrote pandas.DataFrame(history.history).to_csv(): a 0-based index.
    path = tmp_path / 'history.csv'
    path.write_text(',acc,loss,val_acc,val_loss\n0,0.1,2.3,0.1,2.3\n1,0.2,2.2,0.2,2.2\n')
    history = curves.load_history(str(path))
    assert history.epochs == [1, 2]
    assert any('no epoch column' in n for n in history.notes)


@pytest.mark.parametrize('argv', [
    ['compare', 'a'],
    ['compare', 'a', 'b', '--tol-metric', 'speed=1'],
    ['compare', 'a', 'b', '--tol-metric', 'loss'],
    ['compare', 'a', 'b', '--tol', '-1'],
    ['compare', 'a', 'b', '--metrics', 'val_acc,seconds'],
    ['frobnicate'],
])
def test_usage_errors_exit_2_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        curves.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('curves.py') and ': error: ' in err


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        curves.main(['compare', '--help'])
    out = capsys.readouterr().out
    assert '--tol-metric' in out and 'exit codes' in out and 'not enough epochs' in out


# --- claim -----------------------------------------------------------------------------------

def ramp(n, top, first_above=None):
    """n epochs of val_acc rising to `top`; 0.91 at `first_above` and after if given."""
    values = [top * (i + 1) / n for i in range(n)]
    if first_above:
        values = [0.91 if i + 1 >= first_above else min(v, 0.89) for i, v in enumerate(values)]
    return values


def test_claim_passes_at_the_first_epoch_above(tmp_path, capsys):
    run = write_run(tmp_path / 'run', ramp(350, 0.9, first_above=200))
    result = curves.claim(run)
    assert result.verdict == 'pass' and result.exit_code == 0
    code, out, _ = cli(capsys, 'claim', run)
    assert code == 0 and 'PASS' in out and 'epoch 200' in out


def test_claim_passes_before_epoch_350(tmp_path):
    assert curves.claim(write_run(tmp_path / 'run', ramp(120, 0.9, first_above=100))).verdict == 'pass'


def test_claim_fails_after_350_epochs_below(tmp_path, capsys):
    run = write_run(tmp_path / 'run', ramp(350, 0.89))
    code, out, _ = cli(capsys, 'claim', run)
    assert code == 1 and 'FAIL' in out
    assert 'best:   val_acc 0.8900 at epoch 350' in out


def test_claim_fails_when_above_only_after_350(tmp_path, capsys):
    run = write_run(tmp_path / 'run', ramp(400, 0.89)[:380] + [0.92] * 20)
    code, out, _ = cli(capsys, 'claim', run)
    assert code == 1 and 'too late' in out and 'epoch 381' in out


def test_claim_needs_strictly_above(tmp_path):
    assert curves.claim(write_run(tmp_path / 'run', [0.9] * 350)).verdict == 'fail'


def test_claim_not_enough_epochs_shows_best_so_far(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.2, 0.45, 0.4], run=run_json(status='finished'))
    code, out, _ = cli(capsys, 'claim', run)
    assert code == 3
    assert 'NOT ENOUGH EPOCHS' in out and 'epoch 3 of the 350' in out
    assert 'best:   val_acc 0.4500 at epoch 2' in out
    assert '--epochs 350' in out
    interrupted = write_run(tmp_path / 'int', [0.2], run=run_json(status='interrupted'))
    assert '--resume' in cli(capsys, 'claim', interrupted)[1]


def test_claim_threshold_and_epoch_are_options(tmp_path, capsys):
    run = write_run(tmp_path / 'run', [0.2, 0.45, 0.4])
    assert cli(capsys, 'claim', run, '--threshold', '0.4', '--by-epoch', '3')[0] == 0
    assert cli(capsys, 'claim', run, '--threshold', '0.5', '--by-epoch', '3')[0] == 1


def test_claim_missing_column(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, columns=['epoch', 'loss'])
    assert_one_line_error(*cli(capsys, 'claim', run)[::2], 'no val_acc column')


# --- plot ------------------------------------------------------------------------------------

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_plot_writes_a_png_with_runs_and_reference(tmp_path, capsys):
    a = write_run(tmp_path / 'a', REF, run=run_json())
    b = write_run(tmp_path / 'b', [0.1, 0.15, 0.2])  # no run.json: labelled by its folder
    ref = write_run(tmp_path / 'ref', REF, run=run_json())
    out = str(tmp_path / 'curves.png')
    code, printed, _ = cli(capsys, 'plot', a, b, '--reference', ref, '-o', out, '--title', 'x')
    assert code == 0 and out in printed
    with open(out, 'rb') as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(out) > 10000
    assert not os.path.exists(out + '.tmp')


def test_plot_run_writes_curves_png_in_the_logdir(tmp_path):
    logdir = write_run(tmp_path / 'run', REF + [float('nan')], run=run_json(status='diverged'))
    path = curves.plot_run(logdir)
    assert path == os.path.join(logdir, 'curves.png')
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_MAGIC


def test_plot_of_a_missing_run_is_an_input_error(tmp_path, capsys):
    code, _, err = cli(capsys, 'plot', tmp_path / 'nope', '-o', tmp_path / 'x.png')
    assert_one_line_error(code, err, 'no such file')
    assert not os.path.exists(str(tmp_path / 'x.png'))


def test_the_tool_imports_neither_keras_nor_tensorflow(tmp_path):
    run = write_run(tmp_path / 'run', REF)
    code = ('import sys; from tools import curves; '
            'curves.compare(%r, %r); curves.claim(%r); curves.plot([%r], %r); '
            'bad = [m for m in ("tensorflow", "keras") if m in sys.modules]; '
            'sys.exit("imported %%s" %% bad if bad else 0)'
            % (run, run, run, run, str(tmp_path / 'c.png')))
    subprocess.check_call([sys.executable, '-c', code], cwd=REPO)
