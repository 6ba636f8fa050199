"""tools/curves.py (compare, plot, claim) on small history.csv files made here, in-process."""
import json
import math
import os
import subprocess
import sys

import pandas
import pytest

from helpers import ROOT
from runkit import Failure
from runkit.errors import exit_code
from runkit.plot import plot_run
from tools import curves

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
    code = exit_code(lambda: curves.main([str(a) for a in argv]), curves.PROG)
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
    (['compare', 'a', 'b', '--tol', '-1'], '0 or more, got -1'),
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
    assert 'allconvnet.py --resume %s' % interrupted in cli(capsys, 'claim', interrupted)[1]
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
    from runkit.logdir import claim
    logdir = write_run(tmp_path / 'run', REF + [float('nan')], run=run_json(status='diverged'))
    held = claim(logdir, overwrite=False, resuming=True)
    assert plot_run(held) == os.path.join(logdir, 'curves.png')
    held.release()
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


# --- several references and reference sets -----------------------------------------------------

# Five seeds' val_acc over three epochs: per epoch a mean of 0.20, 0.30, 0.40.
SPREAD = [-0.02, -0.01, 0.0, 0.01, 0.02]


def write_set(folder, builds=('mkl',) * 5, shift=0.0, spread=SPREAD):
    """A reference set: one run directory per seed, val_acc and val_loss spread around a mean."""
    for i, (offset, build) in enumerate(zip(spread, builds)):
        run = dict(run_json(seed=i + 1, deterministic=False), tf_build=build)
        write_run(os.path.join(str(folder), 'seed-%d' % (i + 1)),
                  [0.2 + offset + shift, 0.3 + offset + shift, 0.4 + offset + shift], run=run)
    return str(folder)


def test_a_run_inside_a_set_s_band_exits_0_and_the_report_says_how_it_was_judged(tmp_path,
                                                                                   capsys):
    refs = write_set(tmp_path / 'set', builds=('mkl',) * 4 + ('stock',))
    run = write_run(tmp_path / 'run', [0.21, 0.29, 0.40],
                    run=dict(run_json(seed=77, deterministic=False), tf_build='mkl'))
    code, out, _ = cli(capsys, 'compare', run, refs)
    assert code == 0 and 'INSIDE the band at all 3 compared epochs' in out
    assert 'references: 5 runs, seed-1, seed-2, seed-3, seed-4, seed-5' in out
    assert 'val_acc, val_loss: mean +- t * s * sqrt(1 + 1/n)' in out  # both judged by default
    header = next(line for line in out.splitlines() if line.lstrip().startswith('epoch '))
    assert header.split() == ['epoch', 'val_acc', 'val_acc', 'band', 'val_loss', 'val_loss',
                              'band', 'band']
    # Seeds differ by design; the build differs within the set, which is shown as such.
    assert "same settings, versions and machine type as the references'" in out
    assert 'seed:' not in out and 'args.seed' not in out
    assert 'differ among themselves in 1' in out
    assert 'tf_build: run mkl; references mkl (seed-1 seed-2 seed-3 seed-4), stock (seed-5)' in out


def test_a_run_outside_a_set_s_band_names_epoch_band_and_the_setting_that_differs(tmp_path,
                                                                                  capsys):
    refs = write_set(tmp_path / 'set')
    run = write_run(tmp_path / 'run', [0.2, 0.5, 0.1], run=dict(
        run_json(lr=0.03, seed=9, deterministic=False), tf_build='mkl'))
    report = curves.compare(run, curves.load_references([refs]))
    assert (report.exit_code, report.out_epochs) == (1, [2, 3])
    assert report.first_out == (2, 'val_acc') and report.worst_out == (3, 'val_acc')
    code, out, _ = cli(capsys, 'compare', run, refs)
    assert code == 1 and 'first:     epoch 2, val_acc: run 0.5000, band ' in out
    assert 'above it' in out.split('first:')[1].splitlines()[0]
    assert 'worst:     epoch 3, val_acc: run 0.1000' in out and 'below it' in out
    assert 'differs from the references in 1 setting(s):\n             optimizer.config.lr: ' \
           '0.03 vs 0.01' in out


def test_the_band_is_the_statistic_of_the_runs_at_each_epoch(tmp_path):
    refs = curves.load_references([write_set(tmp_path / 'set')])
    report = curves.compare(write_run(tmp_path / 'run', [0.2, 0.3, 0.4]), refs)
    for epoch, mean in ((1, 0.2), (2, 0.3), (3, 0.4)):
        centre, half = curves.band([mean + o for o in SPREAD], curves.LEVEL, 10000)
        assert report.table.at[epoch, 'val_acc_centre'] == pytest.approx(centre)
        assert report.table.at[epoch, 'val_acc_half'] == pytest.approx(half)
    # The binomial term comes from the runs' test images: 128 widen the band.
    for ref in refs:
        ref.run = dict(ref.run, args=dict(ref.run['args'], test_limit=128))
    wider = curves.compare(write_run(tmp_path / 'run2', [0.2, 0.3, 0.4]), refs)
    assert wider.table.at[1, 'val_acc_half'] > report.table.at[1, 'val_acc_half'] * 1.5
    assert wider.table.at[1, 'val_loss_half'] == pytest.approx(report.table.at[1, 'val_loss_half'])


def test_a_set_member_is_left_out_of_its_own_band(tmp_path, capsys):
    refs = write_set(tmp_path / 'set', ('mkl',) * 6, spread=SPREAD + [0.0])
    code, out, _ = cli(capsys, 'compare', os.path.join(refs, 'seed-1'), refs)
    assert code == 0 and 'references: 5 runs, seed-2, seed-3, seed-4, seed-5, seed-6' in out
    assert 'the run is one of the references: it is left out of the band' in out


def test_tol_with_several_references_widens_their_range(tmp_path, capsys):
    refs = write_set(tmp_path / 'set')
    member = write_run(tmp_path / 'copy', [0.18, 0.28, 0.38])  # seed-1's values
    # A bitwise rerun of one run of a set passes a band of 1e-6 around the set's range ...
    code, out, _ = cli(capsys, 'compare', member, refs, '--tol', '1e-6', '--metrics', 'all')
    assert code == 0 and "the references' range widened by 1e-06 for val_acc" in out
    # ... and a value 0.03 below the range does not, at 0.02.
    below = write_run(tmp_path / 'below', [0.15, 0.28, 0.38])
    assert cli(capsys, 'compare', below, refs, '--tol', '0.02')[0] == 1
    assert cli(capsys, 'compare', below, refs, '--tol', '0.04')[0] == 0
    # --tol-metric alone adds an absolute band beside the drawn ones.
    report = curves.compare(below, curves.load_references([refs]),
                            {'val_acc': None, 'loss': 0.5})
    assert report.table.at[1, 'loss_half'] == pytest.approx(0.5)


def test_several_runs_named_one_by_one_make_a_set(tmp_path):
    refs = write_set(tmp_path / 'set')
    names = [os.path.join(refs, 'seed-%d' % i) for i in range(1, 6)]
    run = write_run(tmp_path / 'run', [0.2, 0.3, 0.6])
    assert curves.compare(run, names).out_epochs == curves.compare(
        run, curves.load_references([refs])).out_epochs == [3]
    # Named twice (the set and one of its runs), a run counts once.
    assert len(curves.load_references([refs, names[0]])) == 5


@pytest.mark.parametrize('argv, words', [
    (['--level', '1'], 'below 1'),
    (['--level', 'x'], "'x' is not a number"),
])
def test_bad_band_flags_are_one_line(tmp_path, capsys, argv, words):
    refs = write_set(tmp_path / 'set')
    with pytest.raises(SystemExit) as e:
        curves.main(['compare', refs, refs] + argv)
    assert_one_line_error(e.value.code, capsys.readouterr().err, words)


def test_a_band_needs_five_runs(tmp_path, capsys):
    # Five runs, one judged against the set: four are left for the band, which then passes
    # nearly anything (docs/curves.md has the counts behind five).
    five = write_set(tmp_path / 'five')
    assert_one_line_error(*cli(capsys, 'compare', os.path.join(five, 'seed-1'), five)[::2],
                          'band needs 5 or more reference runs besides the run itself, not 4')
    with pytest.raises(curves.CurvesError):
        curves.compare(write_run(tmp_path / 'run', REF), [os.path.join(five, 'seed-1')],
                       {'val_acc': None})
    assert curves.compare(write_run(tmp_path / 'run', [0.2, 0.3, 0.4]),
                          curves.load_references([five])).ok


def test_a_band_of_runs_that_differ_in_what_it_judges_is_refused(tmp_path, capsys):
    refs = write_set(tmp_path / 'set')
    record = json.load(open(os.path.join(refs, 'seed-2', 'run.json')))
    record['args']['train_limit'] = 20000
    json.dump(record, open(os.path.join(refs, 'seed-2', 'run.json'), 'w'))
    run = write_run(tmp_path / 'run', [0.2, 0.3, 0.4])
    assert_one_line_error(*cli(capsys, 'compare', run, refs)[::2],
                          'the reference runs differ in args.train_limit')


def test_a_set_of_one_run_is_a_single_reference(tmp_path, capsys):
    write_run(tmp_path / 'run', REF)
    # A set of one run is a single reference, compared within the default tolerance.
    write_run(tmp_path / 'one' / 'seed-1', REF)
    assert cli(capsys, 'compare', tmp_path / 'run', tmp_path / 'one')[0] == 0


def test_band_prints_a_set_s_figures(tmp_path, capsys):
    code, out, _ = cli(capsys, 'band', write_set(tmp_path / 'set'))
    assert code == 0
    assert out.startswith('5 runs (seed-1, seed-2, seed-3, seed-4, seed-5), band at level %g'
                          % curves.LEVEL)
    centre, half = curves.band([0.3 + o for o in SPREAD], curves.LEVEL, 10000)
    assert '| 2 | 0.3000 | 0.2800-0.3200 | %.4f-%.4f |' % (centre - half, centre + half) in out
    assert 'val_acc: a run is outside once it is more than' in out


def test_a_reference_that_blew_up_lends_the_band_only_its_epochs_before(tmp_path, capsys):
    refs = write_set(tmp_path / 'set', ('mkl',) * 6, spread=SPREAD + [0.0])
    blown = os.path.join(refs, 'seed-5', 'history.csv')
    frame = pandas.read_csv(blown)
    frame.loc[2, ['loss', 'val_loss', 'val_acc']] = [8.8, 14.5, 0.1]  # epoch 3
    frame.to_csv(blown, index=False)
    history = curves.load_history(blown)
    assert curves.blow_up(history) == 3 and curves.before_blow_up(history).epochs == [1, 2]
    run = write_run(tmp_path / 'run', [0.2, 0.3, 0.4])
    report = curves.compare(run, curves.load_references([refs]))
    assert report.ok and any('seed-5 blew up at epoch 3' in n for n in report.notes)
    centre, _ = curves.band([0.38, 0.39, 0.40, 0.41, 0.40], curves.LEVEL, 10000)
    assert report.table.at[3, 'val_acc_centre'] == pytest.approx(centre)
    # A run that blows up is its own outcome, undecided: a healthy seed does it too.
    code, out, _ = cli(capsys, 'compare', os.path.join(refs, 'seed-5'), refs)
    assert code == 3 and 'the run blew up at epoch 3' in out and 'BLEW UP at epoch 3' in out
    # Bitwise comparisons keep every epoch of a reference.
    assert curves.compare(blown, blown, {'loss': 0.0}).shared == [1, 2, 3]


# --- the band statistic ------------------------------------------------------------------------

def test_band_is_the_normal_prediction_interval():
    from scipy import stats  # another implementation of Student's quantile than band()'s
    values = [0.30, 0.32, 0.35, 0.31, 0.33]
    centre, half = curves.band(values, 0.99)
    s = pandas.Series(values).std()
    assert centre == pytest.approx(0.322)
    assert half == pytest.approx(stats.t.ppf(0.995, 4) * s * (1 + 1 / 5.) ** 0.5)
    # An accuracy's binomial noise widens it, even where the runs agree exactly.
    assert curves.band([0.5, 0.5, 0.5], 0.99)[1] == 0
    assert curves.band([0.5, 0.5, 0.5], 0.99, images=100)[1] == pytest.approx(
        stats.t.ppf(0.995, 2) * (0.25 / 100 * (1 + 1 / 3.)) ** 0.5)
    assert all(math.isnan(v) for v in curves.band([0.3, float('nan')]))


def test_band_holds_one_more_run_as_often_as_its_level_says():
    # The promise behind the band: with normal seed noise, a new run lands inside with
    # probability `level`, whatever the number of runs.
    import numpy
    rng = numpy.random.RandomState(0)
    for n, level in ((3, 0.9), (5, 0.9), (5, 0.5)):
        draws = rng.normal(0.3, 0.02, size=(4000, n + 1))
        inside = 0
        for row in draws:
            centre, half = curves.band(list(row[:n]), level)
            inside += abs(row[n] - centre) <= half
        assert abs(inside / 4000. - level) < 0.025, (n, level, inside)


# --- plot and run.json input -------------------------------------------------------------------

def test_plot_draws_a_set_as_its_band(tmp_path, capsys):
    refs = write_set(tmp_path / 'set')
    run = write_run(tmp_path / 'run', [0.2, 0.3, 0.5], run=run_json())
    out = tmp_path / 'band.png'
    code, printed, _ = cli(capsys, 'plot', run, '--reference', refs, '-o', out)
    assert code == 0 and out.read_bytes()[:8] == PNG_MAGIC
    label, frames = curves.band_curves(curves.load_references([refs]))
    assert sorted(frames) == ['val_acc', 'val_loss'] and label.startswith('set: 5 runs')
    assert (frames['val_acc']['low'] <= frames['val_acc']['min']).all()
    assert (frames['val_acc']['max'] <= frames['val_acc']['high']).all()


def test_a_one_epoch_run_is_drawn_with_whole_epoch_ticks_and_markers_that_differ():
    from runkit.plot import figure
    frame = pandas.DataFrame({'loss': [2.2], 'acc': [0.15], 'val_loss': [2.1], 'val_acc': [0.2]},
                             index=pandas.Index([1], name='epoch'))
    fig = figure([('one', frame)])
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1]
        faces = {tuple(line.get_markerfacecolor()) if not isinstance(
            line.get_markerfacecolor(), str) else line.get_markerfacecolor()
            for line in ax.get_lines()}
        assert len(faces) == 2  # validation filled, train hollow
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-2:] == ['validation', 'train']


def test_the_legend_names_the_recipe():
    from runkit.plot import label
    assert label('seed-1', dict(run_json(), recipe_name='upstream')).startswith(
        'seed-1 (upstream recipe, SGD lr=0.01')


@pytest.mark.parametrize('out, words', [
    ('x.xyz', 'cannot write .xyz images'),
    ('', "-o '': name the image"),
    ('DIR', 'is a directory'),
])
def test_plot_to_a_path_it_cannot_write_is_one_line_and_leaves_nothing(tmp_path, ref, capsys,
                                                                       monkeypatch, out, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'DIR').mkdir()
    before = sorted(os.listdir(str(tmp_path)))
    assert_one_line_error(*cli(capsys, 'plot', ref, '-o', out)[::2], words)
    assert sorted(os.listdir(str(tmp_path))) == before
    assert os.listdir(str(tmp_path / 'DIR')) == []


def test_plot_leaves_no_temporary_file_when_the_rename_fails(tmp_path, ref):
    # plot() itself, past the checks of the command line: the image's name is a directory.
    from runkit.plot import plot as draw
    (tmp_path / 'taken.png').mkdir()
    frame = curves.load_history(ref).frame
    # OSError, or the WriteFailed that runkit's writer makes of it.
    with pytest.raises((OSError, Failure)):
        draw([('ref', frame)], str(tmp_path / 'taken.png'))
    assert sorted(os.listdir(str(tmp_path))) == ['ref', 'taken.png']


@pytest.mark.parametrize('text', ['[1, 2]', '"finished"', '3', 'null'])
def test_a_run_json_that_is_not_an_object_is_a_note(tmp_path, ref, capsys, text):
    run = write_run(tmp_path / 'run', REF)
    (tmp_path / 'run' / 'run.json').write_text(text)
    code, out, err = cli(capsys, 'compare', run, ref)
    assert code == 0 and err == ''
    note = next(line for line in out.splitlines() if line.startswith('note:'))
    assert 'run.json' in note and 'object' in note and 'labels and checks go without it' in note
    assert cli(capsys, 'claim', run)[0] == 3
    assert cli(capsys, 'plot', run, '-o', tmp_path / 'c.png')[0] == 0
