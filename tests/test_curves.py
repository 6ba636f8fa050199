"""tools/curves.py (compare, plot, claim) on small history.csv files made here, in-process."""
import json
import os
import subprocess
import sys

import pandas
import pytest

from runkit.plot import plot_run
from tools import curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr', 'seconds']
REF = [0.10, 0.20, 0.30, 0.40, 0.50]
PROG = 'python -m tools.curves'  # and the subcommand, for argparse's errors


def write_run(folder, val_acc, loss=None, run=None, columns=COLUMNS, epochs=None):
    """A run directory with a history.csv (one row per val_acc) and, if given, a run.json."""
    os.makedirs(str(folder), exist_ok=True)
    n = len(val_acc)
    frame = pandas.DataFrame({
        'epoch': epochs or list(range(1, n + 1)),
        'loss': loss or [2.3 - 0.01 * i for i in range(n)],
        'acc': [0.1 + 0.01 * i for i in range(n)], 'val_loss': [2.3 - 0.02 * i for i in range(n)],
        'val_acc': val_acc, 'lr': [0.01] * n, 'seconds': [5.0 + i for i in range(n)]})
    frame[columns].to_csv(os.path.join(str(folder), 'history.csv'), index=False)
    if run is not None:
        with open(os.path.join(str(folder), 'run.json'), 'w') as f:
            json.dump(run, f)
    return str(folder)


def run_json(lr=0.01, seed=1, deterministic=True, status='finished'):
    return {'args': {'batch_size': 32, 'deterministic': deterministic, 'seed': seed,
                     'train_limit': 256, 'logdir': 'x'},
            'seed': seed, 'status': status, 'towers': 1,
            'versions': {'tensorflow': '1.15.5', 'keras': '1.2.2'},
            'machine': {'cpu': 'AMD EPYC', 'cores': 2},
            'optimizer': {'class_name': 'SGD', 'config': {'lr': lr, 'momentum': 0.0}}}


@pytest.fixture
def ref(tmp_path):
    """The reference most tests compare with: REF's five epochs, made deterministically."""
    return write_run(tmp_path / 'ref', REF, run=run_json())


def cli(capsys, *argv):
    code = curves.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2
    assert err.count('\n') == 1 and err.startswith(PROG) and ': error: ' in err
    for word in words:
        assert word in err


# --- compare ---------------------------------------------------------------------------------

def test_identical_runs_are_inside_and_exit_0(tmp_path, ref, capsys):
    run = write_run(tmp_path / 'run', REF, run=run_json())
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 0
    assert 'INSIDE the band at all 5 compared epochs' in out
    assert 'same settings' in out
    assert 'run (SGD lr=0.01' in out  # labelled from run.json
    # A history.csv path works like its run directory.
    assert cli(capsys, 'compare', os.path.join(run, 'history.csv'), ref)[0] == 0


def test_a_difference_of_exactly_the_band_is_inside(tmp_path, ref):
    run = write_run(tmp_path / 'run', [0.11, 0.19, 0.32, 0.40, 0.48])
    report = curves.compare(run, ref, {'val_acc': 0.02})
    assert report.ok and report.exit_code == 0 and report.out_epochs == []
    # Despite float rounding in the subtraction.
    assert curves.compare(write_run(tmp_path / 'a', [0.13]), write_run(tmp_path / 'b', [0.11]),
                          {'val_acc': 0.02}).ok


def test_outside_band_names_first_and_worst_epoch(tmp_path, ref, capsys):
    run = write_run(tmp_path / 'run', [0.10, 0.23, 0.30, 0.35, 0.50])
    report = curves.compare(run, ref)  # default: val_acc within 0.02
    assert (report.ok, report.exit_code, report.out_epochs) == (False, 1, [2, 4])
    assert report.first_out == (2, 'val_acc') and report.worst_out == (4, 'val_acc')
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1
    assert 'OUTSIDE the band at 2 of 5 compared epochs (2, 4)' in out
    assert 'first:     epoch 2, val_acc' in out
    assert 'worst:     epoch 4, val_acc' in out and 'diff -0.0500' in out
    assert out.count(' OUT\n') == 2 and out.count('*') == 3  # two values and the legend
    assert cli(capsys, 'compare', run, ref, '--tol', '0.06')[0] == 0


def test_per_metric_band_adds_the_metric(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, loss=[2.3, 2.29, 2.18, 2.27, 2.26])
    ref = write_run(tmp_path / 'ref', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.26])
    assert cli(capsys, 'compare', run, ref)[0] == 0  # loss is not compared by default
    code, out, _ = cli(capsys, 'compare', run, ref, '--tol-metric', 'loss=0.05')
    assert code == 1 and 'first:     epoch 3, loss' in out
    assert cli(capsys, 'compare', run, ref, '--tol-metric', 'loss=0.2')[0] == 0


def test_worst_is_relative_to_each_band(tmp_path):
    # val_acc off by 0.03 (1.5 bands of 0.02), loss by 0.5 (1.25 bands of 0.4): val_acc is worse.
    run = write_run(tmp_path / 'run', [0.1, 0.23], loss=[2.3, 2.8])
    ref = write_run(tmp_path / 'ref', [0.1, 0.20], loss=[2.3, 2.3])
    assert curves.compare(run, ref, {'val_acc': 0.02, 'loss': 0.4}).worst_out == (2, 'val_acc')


def test_metrics_all_compares_every_curve_column(tmp_path, capsys):
    run = write_run(tmp_path / 'run', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.2600001])
    ref = write_run(tmp_path / 'ref', REF, loss=[2.3, 2.29, 2.28, 2.27, 2.26])
    code, out, _ = cli(capsys, 'compare', run, ref, '--metrics', 'all', '--tol', '1e-9')
    assert code == 1 and 'first:     epoch 5, loss' in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith('epoch '))
    for metric in ('loss diff', 'acc diff', 'val_loss diff', 'lr diff'):
        assert metric in header
    assert 'seconds' not in header  # wall time is never compared
    assert cli(capsys, 'compare', run, ref, '--metrics', 'all', '--tol', '1e-6')[0] == 0


def test_shorter_and_longer_runs_are_compared_on_shared_epochs(tmp_path, ref, capsys):
    code, out, _ = cli(capsys, 'compare', write_run(tmp_path / 'short', REF[:3]), ref)
    assert code == 0 and 'compared on 1-3 (3 shared)' in out
    assert 'shorter than the reference: reference epochs 4-5 are not compared' in out
    longer = write_run(tmp_path / 'long', REF + [0.6, 0.7])
    assert curves.compare(longer, ref).shared == [1, 2, 3, 4, 5]
    code, out, _ = cli(capsys, 'compare', longer, ref)
    assert code == 0 and 'longer than the reference: run epochs 6-7' in out


def test_nan_in_the_run_is_outside_and_worst(tmp_path, ref, capsys):
    run = write_run(tmp_path / 'run', [0.10, 0.25, float('nan')])
    report = curves.compare(run, ref)
    assert report.out_epochs == [2, 3]
    assert report.first_out == (2, 'val_acc') and report.worst_out == (3, 'val_acc')
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1 and 'worst:     epoch 3, val_acc: run nan' in out


def test_run_json_differences(tmp_path, ref, capsys):
    run = write_run(tmp_path / 'run', [0.1, 0.3], run=run_json(lr=0.05))
    code, out, _ = cli(capsys, 'compare', run, ref)
    assert code == 1
    assert 'the two differ in 1 setting(s):\n             optimizer.config.lr: 0.05 vs 0.01' in out
    assert 'args.logdir' not in out  # where a run writes does not shape its curve
    noisy = write_run(tmp_path / 'noisy', [0.1, 0.3], run=run_json(seed=None, deterministic=False))
    out = cli(capsys, 'compare', noisy, ref)[1]
    assert 'args.deterministic: False vs True' in out and 'seed: None vs 1' in out
    out = cli(capsys, 'compare', write_run(tmp_path / 'bare', [0.1, 0.3]), ref)[1]
    assert 'run.json:  none beside' in out


def test_long_histories_print_a_short_table(tmp_path, capsys):
    values = [0.5] * 200
    run = write_run(tmp_path / 'run', values[:99] + [0.9] + values[100:])
    ref = write_run(tmp_path / 'ref', values)

    def rows(out):
        return [line for line in out.splitlines() if line.endswith((' ok', ' OUT'))]
    out = cli(capsys, 'compare', run, ref)[1]
    assert [int(r.split()[0]) for r in rows(out)] == [1, 2, 3, 100, 198, 199, 200]
    assert out.count('...') == 2
    assert len(rows(cli(capsys, 'compare', run, ref, '--all-rows')[1])) == 200


# --- input errors ----------------------------------------------------------------------------

def test_missing_columns_are_one_clear_line(tmp_path, ref, capsys):
    bare = write_run(tmp_path / 'bare', REF, columns=['epoch', 'loss', 'acc'])
    assert_one_line_error(*cli(capsys, 'compare', bare, ref)[::2], 'no val_acc column',
                          'history.csv')
    assert_one_line_error(*cli(capsys, 'claim', bare)[::2], 'no val_acc column')
    thin = write_run(tmp_path / 'thin', REF, columns=['epoch', 'val_acc'])
    assert_one_line_error(*cli(capsys, 'compare', ref, thin, '--tol-metric', 'val_loss=0.1')[::2],
                          'no val_loss column', os.path.join('thin', 'history.csv'))


@pytest.mark.parametrize('text, words', [
    ('', ['is empty']),
    (','.join(COLUMNS) + '\n', ['no epochs']),
    ('epoch,val_acc\n1,0.1\n2,oops\n', ['column val_acc', 'not a number']),
    ('epoch,val_acc\n1.5,0.1\n', ['whole numbers']),
])
def test_unusable_files_are_one_clear_line(tmp_path, ref, capsys, text, words):
    bad = tmp_path / 'history.csv'
    bad.write_text(text)
    assert_one_line_error(*cli(capsys, 'compare', bad, ref)[::2], *words)


def test_missing_file_and_directory_without_history(tmp_path, ref, capsys):
    assert_one_line_error(*cli(capsys, 'compare', tmp_path / 'nope.csv', ref)[::2],
                          'no such file')
    (tmp_path / 'bare').mkdir()
    assert_one_line_error(*cli(capsys, 'compare', tmp_path / 'bare', ref)[::2],
                          'without a history.csv')
    (tmp_path / 'diverged').mkdir()
    (tmp_path / 'diverged' / 'run.json').write_text(json.dumps({'status': 'diverged'}))
    assert_one_line_error(*cli(capsys, 'compare', tmp_path / 'diverged', ref)[::2],
                          'status diverged', 'finished no epoch')


def test_upstream_history_without_epoch_column_is_read_by_row(tmp_path):
    # The upstream repository wrote pandas.DataFrame(history.history).to_csv(): a 0-based index.
    path = tmp_path / 'history.csv'
    path.write_text(',acc,loss,val_acc,val_loss\n0,0.1,2.3,0.1,2.3\n1,0.2,2.2,0.2,2.2\n')
    history = curves.load_history(path)
    assert history.epochs == [1, 2]
    assert any('no epoch column' in n for n in history.notes)


@pytest.mark.parametrize('argv, words', [
    (['compare', 'a'], 'required: REFERENCE'),
    (['compare', 'a', 'b', '--tol-metric', 'speed=1'], "'speed=1'"),
    (['compare', 'a', 'b', '--tol-metric', 'loss'], "'loss'"),
    (['compare', 'a', 'b', '--tol', '-1'], 'must be 0 or more'),
    (['compare', 'a', 'b', '--metrics', 'val_acc,seconds'], "'val_acc,seconds'"),
    (['frobnicate'], "invalid choice: 'frobnicate'"),
])
def test_usage_errors_exit_2_in_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        curves.main(argv)
    assert_one_line_error(e.value.code, capsys.readouterr().err, words)


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


@pytest.mark.parametrize('val_acc, code, words', [
    (ramp(350, 0.9, first_above=200), 0, ['PASS', 'val_acc 0.9100 at epoch 200']),
    (ramp(120, 0.9, first_above=100), 0, ['PASS', 'epoch 100']),
    (ramp(350, 0.89), 1, ['FAIL', 'best:   val_acc 0.8900 at epoch 350']),
    ([0.9] * 350, 1, ['FAIL']),  # the claim needs strictly above
    (ramp(400, 0.89)[:380] + [0.92] * 20, 1, ['FAIL', 'too late', 'epoch 381']),
    ([0.2, 0.45, 0.4], 3, ['NOT ENOUGH EPOCHS', 'epoch 3 of the 350',
                           'best:   val_acc 0.4500 at epoch 2', '--epochs 350']),
])
def test_claim_verdicts(tmp_path, capsys, val_acc, code, words):
    run = write_run(tmp_path / 'run', val_acc, run=run_json(status='finished'))
    result = curves.claim(run)
    assert result.exit_code == code
    assert result.verdict == {0: 'pass', 1: 'fail', 3: 'not enough epochs'}[code]
    printed_code, out, _ = cli(capsys, 'claim', run)
    assert printed_code == code
    for word in words:
        assert word in out


def test_claim_hints_and_options(tmp_path, capsys):
    interrupted = write_run(tmp_path / 'int', [0.2], run=run_json(status='interrupted'))
    assert 'continue it with python allconvnet.py --resume' in cli(capsys, 'claim', interrupted)[1]
    run = write_run(tmp_path / 'run', [0.2, 0.45, 0.4])
    assert cli(capsys, 'claim', run, '--threshold', '0.4', '--by-epoch', '3')[0] == 0
    assert cli(capsys, 'claim', run, '--threshold', '0.5', '--by-epoch', '3')[0] == 1


# --- plot ------------------------------------------------------------------------------------

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_plot_writes_a_png_with_runs_and_reference(tmp_path, ref, capsys):
    a = write_run(tmp_path / 'a', REF, run=run_json())
    b = write_run(tmp_path / 'b', [0.1, 0.15, 0.2])  # no run.json: labelled by its folder
    out = tmp_path / 'curves.png'
    code, printed, _ = cli(capsys, 'plot', a, b, '--reference', ref, '-o', out, '--title', 'x')
    assert code == 0 and str(out) in printed
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 10000
    assert not (tmp_path / 'curves.png.tmp').exists()
    assert_one_line_error(*cli(capsys, 'plot', tmp_path / 'nope', '-o', tmp_path / 'x.png')[::2],
                          'no such file')
    assert not (tmp_path / 'x.png').exists()


def test_plot_run_writes_curves_png_in_the_logdir(tmp_path):
    logdir = write_run(tmp_path / 'run', REF + [float('nan')], run=run_json(status='diverged'))
    assert plot_run(logdir) == os.path.join(logdir, 'curves.png')
    with open(os.path.join(logdir, 'curves.png'), 'rb') as f:
        assert f.read(8) == PNG_MAGIC


def test_the_command_runs_as_a_module_without_keras_or_tensorflow(tmp_path, ref):
    # Module by module, what the interpreter imported: the tool must stay quick and quiet.
    out = tmp_path / 'c.png'
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'tools.curves', 'plot', ref,
                           '-o', str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0 and out.exists()
    imported = {line.split('|')[-1].strip() for line in proc.stderr.splitlines() if '|' in line}
    assert 'matplotlib' in imported
    assert not imported & {'keras', 'tensorflow'}
