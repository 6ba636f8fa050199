"""The band of the reference set, judged on the committed histories (no training, about a second).

- Leave-one-out: every run of logs/reference/upstream-10k lies inside the band of the others,
  at the epochs it lends the band (a run's epochs from a blow-up on are not among them).
- Power: the deliberately changed runs of logs/reference/upstream-10k-changed fall outside it,
  at the epoch docs/curves.md names, for the changes it catches; those it misses stay inside,
  and the one that never leaves the chance plateau is undecided.
- Both checks can fail: with a band of zero width the set's own runs are rejected, and with
  one absurdly wide the changes it catches pass. They run band() with its real parameters, so
  a broken margin in the statistic fails one of them. The alignment on the plateau's end has
  its own pair: a late start passes, a slow learner starting as late does not.
- The set's README gives the band's figures: they are what `python -m tools.curves band`
  prints from the committed histories.
"""
import os

import pandas
import pytest

from helpers import ROOT
from tools import curves

SET = os.path.join(ROOT, 'logs', 'reference', 'upstream-10k')
CHANGED = os.path.join(ROOT, 'logs', 'reference', 'upstream-10k-changed')
# What docs/curves.md says of each changed run: the first epoch outside the band, None for a
# change the band misses, 'undecided' for one that never leaves the chance plateau.
FIRST_OUT = {'blog': 4, 'lr3x': 'undecided', 'noaug': None, 'labelnoise': 4}
# Each change's first run, the one the single-run verdicts above are of.
FIRST_RUN = {'blog': 'seed-11', 'lr3x': 'seed-12', 'noaug': 'seed-13', 'labelnoise': 'seed-14'}
# Wide enough that nothing is outside: t's quantile at this level, with 8 or 9 degrees of freedom,
# is over 100 standard deviations.
ABSURD = 1 - 1e-15


def members():
    return curves.load_references([SET])


def outside_the_others(level):
    """The runs of the set that lie outside the band of the other runs, at `level`, at the
    epochs each lends the band (those before it blew up, if it did)."""
    refs = members()
    return [run.name for run in refs if not curves.compare(
        curves.before_blow_up(run), [r for r in refs if r is not run], None, level).ok]


def changed(name, level=curves.LEVEL):
    return curves.compare(os.path.join(CHANGED, name, FIRST_RUN[name]), members(), None, level)


def test_the_set_is_five_seeds_or_more_of_one_configuration_on_both_builds():
    refs = members()
    assert len(refs) >= 5 and len({r.run['seed'] for r in refs}) == len(refs)
    assert {r.run['tf_build'] for r in refs} == {'mkl', 'stock'}
    assert not any(r.run['args']['deterministic'] for r in refs)
    assert all(r.epochs == [1, 2, 3, 4, 5] for r in refs)


def test_the_run_that_blew_up_is_the_one_the_docs_name():
    # docs/curves.md and the set's README say which run blew up, and when.
    assert [(r.name, curves.blow_up(r)) for r in members() if curves.blow_up(r)] == [
        ('seed-5-stock', 5)]


def test_every_run_of_the_set_is_inside_the_band_of_the_others():
    assert outside_the_others(curves.LEVEL) == []


def test_a_band_of_zero_width_rejects_the_runs_of_the_set():
    assert outside_the_others(0.0) == [r.name for r in members()]


@pytest.mark.parametrize('name', sorted(n for n, e in FIRST_OUT.items() if isinstance(e, int)))
def test_the_band_catches_the_change(name):
    report = changed(name)
    assert report.exit_code == curves.OUTSIDE and report.first_out[0] == FIRST_OUT[name]


def test_a_change_that_never_leaves_the_plateau_is_undecided():
    names = [n for n, e in FIRST_OUT.items() if e == 'undecided']
    assert names and all(changed(n).exit_code == curves.UNDECIDED for n in names)


@pytest.mark.parametrize('name', sorted(n for n, e in FIRST_OUT.items() if not e))
def test_the_band_misses_the_change(name):
    # docs/curves.md lists it as missed; if a better statistic catches it, update both.
    assert changed(name).ok


def test_every_change_has_its_runs_and_a_verdict_in_the_docs():
    assert set(FIRST_OUT) <= set(os.listdir(CHANGED))
    assert all(os.path.join(CHANGED, n, FIRST_RUN[n]) in curves.runs_in(os.path.join(CHANGED, n))
               for n in FIRST_OUT)
    with open(os.path.join(ROOT, 'docs', 'curves.md')) as f:
        doc = f.read()
    for name in FIRST_OUT:
        assert 'upstream-10k-changed/%s' % name in doc


def made_up(val_acc, val_loss):
    frame = pandas.DataFrame({'val_acc': val_acc, 'val_loss': val_loss},
                             index=pandas.Index(range(1, len(val_acc) + 1), name='epoch'))
    return curves.History(os.path.join(SET, 'made-up', 'history.csv'), frame, None, [])


def test_a_run_that_learns_nothing_is_undecided_at_any_level():
    # val_acc 0.10 and the loss of guessing, ln 10, as a broken pipeline or a dead start leaves
    # a run: never inside, whatever the band's width; the report says what to do.
    stuck = made_up([0.1] * 5, [2.3026] * 5)
    for level in (curves.LEVEL, ABSURD):
        report = curves.compare(stuck, members(), None, level)
        assert report.exit_code == curves.UNDECIDED and not report.ok
    assert 'UNDECIDED: the run has not left the chance plateau' in curves.format_report(report)


def test_a_history_that_starts_after_epoch_1_is_judged_as_one_off_the_plateau():
    # Seed 1's epochs 3-5 alone (the first rows lost): when it left the plateau is not in the
    # file, and taking its first row for that moment would judge epoch 3 against epoch 1.
    frame = curves.load_history(os.path.join(SET, 'seed-1')).frame.loc[3:]
    cut = made_up(list(frame['val_acc']), list(frame['val_loss']))
    cut.frame.index = pandas.Index([3, 4, 5], name='epoch')
    cut.epochs = [3, 4, 5]
    report = curves.compare(cut, [r for r in members() if r.name != 'seed-1'])
    assert curves.left_plateau(cut) == 1 and report.ok and report.judged == [3, 4, 5]


def test_a_nan_accuracy_is_outside_not_a_plateau():
    report = curves.compare(made_up([0.2, float('nan'), 0.3], [2.1, 2.0, 1.9]), members())
    assert report.exit_code == curves.OUTSIDE and report.first_out == (2, 'val_acc')
    report = curves.compare(made_up([float('nan')] * 3, [2.1, 2.0, 1.9]), members())
    assert report.exit_code == curves.OUTSIDE and report.first_out[0] == 1


def test_a_late_start_passes_and_a_slow_learner_as_late_does_not():
    # Seed 1's curve two epochs later, as if it had sat on the plateau like seed 8: inside. The
    # same start with half of seed 1's gains after it, as the blog recipe learns: outside.
    seed1 = curves.load_history(os.path.join(SET, 'seed-1')).frame
    acc, loss = list(seed1['val_acc'][:3]), list(seed1['val_loss'][:3])
    late = made_up([0.1, 0.1] + acc, [2.3026, 2.3026] + loss)
    assert curves.compare(late, members()).ok and curves.left_plateau(late) > 2
    slow = made_up([0.1, 0.1] + [acc[0] + (a - acc[0]) / 2 for a in acc],
                   [2.3026, 2.3026] + [loss[0] + (v - loss[0]) / 2 for v in loss])
    assert curves.compare(slow, members()).exit_code == curves.OUTSIDE


def test_an_absurdly_wide_band_lets_every_caught_change_pass():
    caught = [name for name, epoch in FIRST_OUT.items() if isinstance(epoch, int)]
    assert caught and all(changed(name, ABSURD).ok for name in caught)


def test_the_smallest_difference_resolved_is_the_half_width():
    # A run at the set's mean, but for val_acc at one epoch moved by just more (or less) than
    # the half-width there, is outside (or inside): the band resolves what docs/curves.md says.
    refs = members()
    frames = curves.band_frames(refs, ['val_acc', 'val_loss'])
    epoch = int((frames['val_acc']['high'] - frames['val_acc']['mean']).idxmin())
    half = frames['val_acc'].at[epoch, 'high'] - frames['val_acc'].at[epoch, 'mean']
    for factor, inside in ((1.01, False), (0.99, True)):
        frame = pandas.DataFrame({m: frames[m]['mean'] for m in frames})
        frame.at[epoch, 'val_acc'] += factor * half
        assert curves.compare(made_up(frame['val_acc'], frame['val_loss']), refs).ok is inside


def test_the_set_s_readme_gives_the_band_s_figures():
    with open(os.path.join(SET, 'README.md')) as f:
        readme = f.read()
    table = [line for line in curves.band_summary(members(), curves.SET_METRICS).splitlines()
             if line.startswith('| ')]
    assert len(table) == 6
    for line in table:
        assert line in readme


# --- several runs of a change, judged together (tools/multirun.py) ------------------------------

def test_the_set_s_own_runs_one_by_one_are_inside_per_epoch():
    # Leave-one-out over the runs that did not blow up, through the multi-run judgement.
    from tools import multirun
    refs = members()
    healthy = [r for r in refs if curves.blow_up(r) is None]
    assert len(healthy) >= 9
    for run in healthy:
        assert multirun.judge([run], [r for r in refs if r is not run])['per_epoch'][1], run.name


def test_runs_that_stay_at_chance_together_are_caught_where_fewer_are_not():
    # The 3x learning rate never leaves chance in 5 epochs: one run is undecided, two are not
    # yet improbable enough for healthy runs, three are.
    from tools import multirun
    runs = curves.runs_in(os.path.join(CHANGED, 'lr3x'))
    assert len(runs) >= 3
    one, two, three = (multirun.judge(runs[:k], [SET]) for k in (1, 2, 3))
    assert one['stuck'][1] ** 3 == pytest.approx(three['stuck'][1])
    assert one['per_epoch'][1] and two['per_epoch'][1] and two['stuck'][1] > multirun.FAMILY
    assert not three['per_epoch'][1] and three['stuck'][1] < multirun.FAMILY


# The changes of logs/reference/upstream-10k-changed, in docs/curves.md's order.
CHANGES = (('blog', 'the blog recipe (`--recipe blog`)'), ('labelnoise', '20% label noise'),
           ('lr3x', "a learning rate 3x the recipe's (`--lr 0.03`)"),
           ('noaug', 'no augmentation'), ('nodrop', 'dropout off'))


def power_table():
    """docs/curves.md's table of what each change's runs are caught by, one run at a time and
    all together, as Markdown lines."""
    from tools import multirun
    refs = curves.load_references([SET])
    lines = ['| change | runs (seeds) | 1 run: caught | all runs together: caught |',
             '|---|---|---|---|']
    for name, text in CHANGES:
        runs = curves.runs_in(os.path.join(CHANGED, name))
        singles = [curves.compare(r, refs).exit_code for r in runs]
        together = multirun.judge(runs, refs)
        stuck, chance = together['stuck']
        undecided = singles.count(curves.UNDECIDED)
        lines.append('| %s | %d (%s) | %d of %d%s | %s%s |' % (
            text, len(runs), ', '.join(os.path.basename(r).replace('seed-', '') for r in runs),
            singles.count(curves.OUTSIDE), len(runs),
            ' (%d undecided)' % undecided if undecided else '',
            'missed' if together['per_epoch'][1] else '**caught**',
            ' (%d stuck at chance: chance %.3f)' % (len(stuck), chance) if stuck else ''))
    return lines


def test_the_power_table_is_measured_from_the_committed_runs():
    """After adding runs, paste what this prints over the table in docs/curves.md."""
    with open(os.path.join(ROOT, 'docs', 'curves.md')) as f:
        doc = [line.strip() for line in f]
    table = power_table()
    assert all(line in doc for line in table), 'docs/curves.md should have:\n' + '\n'.join(table)


# --- the self-check's false-fail rate, from every committed run of its configuration ----------

EXTRA = os.path.join(ROOT, 'logs', 'reference', 'upstream-10k-extra')
BUILDS = (('stock', 'the stock build'), ('mkl', 'the oneDNN build'))


def flat(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return ' '.join(f.read().replace('`', '').split())


def fails(b, alpha=0.05):
    """The self-check's false-fail rate at blow-up rate b: outside, or blown up and then not
    inside on the rerun (docs/curves.md)."""
    return alpha + b * (alpha + b)


def procedure():
    """The figures docs/curves.md and the README give for the self-check's false-fail rate,
    counted from the set and its extra seeds: {'text': the docs' sentences, 'readme': ...}."""
    from scipy.stats import beta, fisher_exact
    runs = curves.load_references([SET, EXTRA])
    counts = {build: [0, 0] for build, _ in BUILDS}
    for run in runs:
        counts[run.run['tf_build']][0] += curves.blow_up(run) is not None
        counts[run.run['tf_build']][1] += 1
    k, n = sum(c[0] for c in counts.values()), len(runs)
    extra = [r for r in curves.load_references([EXTRA]) if curves.blow_up(r) is None]
    outside = [r.name for r in extra if curves.compare(r, members()).exit_code == curves.OUTSIDE]

    def bound(k, n):  # one-sided 95%, Clopper-Pearson
        return float(beta.ppf(0.95, k + 1, n - k))
    # Whether blow-ups belong to one build: the two builds' counts, two-sided.
    p = fisher_exact([[c[0], c[1] - c[0]] for c in counts.values()])[1]
    builds = '; '.join(
        'on %s %d in %d, b = %.2f, which makes %.1f%% (its bound from %d runs, %.2f, %.0f%%)' % (
            name, counts[b][0], counts[b][1], counts[b][0] / counts[b][1],
            100 * fails(counts[b][0] / counts[b][1]), counts[b][1], bound(*counts[b]),
            100 * fails(bound(*counts[b]))) for b, name in BUILDS)
    text = ('b was measured as %d blow-up(s) in %d runs of the configuration (the set and its '
            'extra seeds). Pooled, b = %.3f, and the check fails a healthy machine with '
            'probability at most %.1f%%; without the rerun it would be %.1f%%; %d runs bound b to '
            'at most %.2f (one-sided 95%%, Clopper-Pearson), which would make %.0f%%. By build: '
            '%s. Whether blow-ups belong to the stock build, these counts cannot yet tell '
            '(Fisher\'s exact test, two-sided: p = %.2f). Out of sample, %d of the %d extra runs '
            'that did not blow up lie outside the set\'s band' % (
                k, n, k / n, 100 * fails(k / n), 100 * (0.05 + k / n), n, bound(k, n),
                100 * fails(bound(k, n)), builds, p, len(outside), len(extra)))
    stock = counts['stock']
    readme = ('b, the blow-up rate, was %d in %d here, which makes about %.1f%%; on the stock '
              'build alone it was %d in %d, which makes %.0f%%' % (
                  k, n, 100 * fails(k / n), stock[0], stock[1], 100 * fails(stock[0] / stock[1])))
    return {'text': text, 'readme': readme, 'outside': outside}


def test_the_extra_seeds_are_runs_of_the_set_s_configuration():
    refs = curves.load_references([SET, EXTRA])
    assert len(refs) > len(members())
    curves.check_bands(dict.fromkeys(curves.SET_METRICS), refs)  # refuses a mixed set


def test_the_false_fail_rate_the_docs_state_is_counted_from_the_committed_runs():
    """After adding runs to the set or its extra seeds, put what this prints in place of the
    sentences that begin 'b was measured as' in docs/curves.md and 'b, the blow-up rate' in
    the README."""
    figures = procedure()
    assert figures['text'] in flat('docs', 'curves.md'), figures['text']
    assert figures['readme'] in flat('README.md'), figures['readme']


def test_judge_takes_a_folder_of_runs_and_counts_a_run_named_twice_once(capsys):
    # Three copies of one run must not pass for three runs: that would narrow the band by
    # sqrt(3) on no evidence.
    lr3x = os.path.join(CHANGED, 'lr3x')
    one = curves.runs_in(lr3x)[0]
    assert curves.main(['judge', SET, one, one, one]) == curves.INSIDE
    assert capsys.readouterr().out.startswith('runs:      0 judged together')
    assert curves.main(['judge', SET, lr3x]) == curves.OUTSIDE  # its three runs stuck together
    assert '3 run(s) never left the chance plateau' in capsys.readouterr().out


def test_a_run_of_the_set_is_judged_against_the_others_with_their_count():
    from tools import multirun
    refs = members()
    alone = multirun.judge([refs[0]], refs[1:])
    within = multirun.judge([refs[0]], refs)  # the run is left out of its own band
    assert alone['per_epoch'] == within['per_epoch']
