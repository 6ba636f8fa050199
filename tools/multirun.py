"""Several runs of a changed configuration judged together against a reference set.

One run of a changed recipe is judged by the set's band, where one more healthy run lands
with probability LEVEL at each epoch and metric (tools/band.py). k runs carry more: their
mean lies closer to the mean of their configuration, by sqrt(k). Two statistics, each with
the false-fail rate of one run's band (at most 5% over the set's 5 epochs x 2 metrics):

- **per epoch**: at each judged epoch and metric, the mean of the k runs' distances from the
  band's centre against the band for a mean of k new runs, mean +- t * s * sqrt(1/k + 1/n)
  (the single run's band narrowed by sqrt((1/k + 1/n) / (1 + 1/n))), at LEVEL each;
- **whole curve**: each run's distance from the centre in units of the set's spread s,
  averaged over its judged epochs, one score per metric. The set's own runs, each judged
  against the others, give the scores of healthy runs; the k runs' mean score is outside when
  it lies beyond mean +- t * sd * sqrt(1/k + 1/n) of theirs, at 1 - 0.05 / (2 x metrics).

docs/md has the table of what each catches with 1 and with 3 runs.
"""
import math

from tools.band import LEVEL, SET_METRICS, blow_up, left_plateau
from tools.report import OUTSIDE, UNDECIDED, check_bands, compare, set_folder
from tools.runs import CurvesError, as_history, load_references, runs_in

# One family of checks per statistic: the per-epoch cells at LEVEL each, or one score
# per metric sharing this.
FAMILY = 0.05


def t_quantile(df, level):
    from scipy.special import stdtrit
    return float(stdtrit(df, (1 + level) / 2))


def reports(runs, refs):
    """The compare() Reports of the runs against the set: (judged, stuck on the plateau the set
    left, blown up)."""
    done = [compare(r, refs, dict.fromkeys(SET_METRICS)) for r in runs]
    blown = [r for r in done if r.blew_up is not None]
    stuck = [r for r in done if r.blew_up is None and r.undecided]
    return [r for r in done if r not in blown and r not in stuck], stuck, blown


def stuck_chance(stuck, k, refs):
    """The chance that `stuck` or more of k healthy runs stay on the chance plateau as long
    as these did, at the largest rate the set allows: the one-sided 95% upper bound on the
    share of its runs that never leave (none of n: 1 - 0.05^(1/n))."""
    n = len(refs)
    never = sum(1 for r in refs if math.isinf(left_plateau(r)))
    p = 1 - 0.05 ** (1. / n) if not never else min(1., (never + 1.) / n)
    return sum(math.comb(k, i) * p ** i * (1 - p) ** (k - i) for i in range(stuck, k + 1)) \
        if hasattr(math, 'comb') else sum(
            math.factorial(k) / math.factorial(i) / math.factorial(k - i) * p ** i *
            (1 - p) ** (k - i) for i in range(stuck, k + 1))


def score(report, metric):
    """The run's mean distance from the band's centre over its judged epochs, in units of the
    set's spread s at each (the band's half-width over t * sqrt(1 + 1/n))."""
    t = report.table.loc[report.judged]
    n = len(report.refs)
    scale = t_quantile(n - 1, report.level) * math.sqrt(1 + 1. / n)
    z = (t[metric + '_diff'] / (t[metric + '_half'] / scale)).dropna()
    return float(z.mean()) if len(z) else math.nan


def per_epoch(done, n, metrics):
    """[(epoch, metric, mean distance, half-width for the mean)] over the epochs every run
    judged, and whether all lie inside."""
    k = len(done)
    epochs = sorted(set.intersection(*[set(r.judged) for r in done]))
    narrow = math.sqrt((1. / k + 1. / n) / (1 + 1. / n))
    cells = []
    for e in epochs:
        for m in metrics:
            diffs = [r.table.at[e, m + '_diff'] for r in done]
            halves = [r.table.at[e, m + '_half'] for r in done]
            cells.append((e, m, sum(diffs) / k, narrow * sum(halves) / k))
    return cells, all(abs(d) <= h for _, _, d, h in cells)


def whole_curve(done, refs, metrics):
    """[(metric, the runs' mean score, the healthy range's centre, its half-width)] and whether
    all lie inside; the healthy scores are the set's runs judged each against the others."""
    healthy = [r for r in refs if blow_up(r) is None]
    own = {m: [] for m in metrics}
    for i, ref in enumerate(healthy):
        others = [r for j, r in enumerate(refs) if r is not ref]
        report = compare(ref, others, dict.fromkeys(SET_METRICS))
        for m in metrics:
            own[m].append(score(report, m))
    k, rows = len(done), []
    for m in metrics:
        values = [v for v in own[m] if math.isfinite(v)]
        n = len(values)
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = t_quantile(n - 1, 1 - FAMILY / len(metrics)) * sd * math.sqrt(1. / k + 1. / n)
        rows.append((m, sum(score(r, m) for r in done) / k, mean, half))
    return rows, all(abs(s - c) <= h for _, s, c, h in rows)


def judge(runs, refs, metrics=SET_METRICS):
    """{'per_epoch': (cells, inside), 'whole_curve': (rows, inside), 'blew_up': names, 'runs':
    names, 'refs': Histories} for the runs judged together against the set (paths or
    Histories)."""
    runs = [as_history(r) for r in runs]
    refs = [as_history(r) for r in refs if not isinstance(r, str)] or \
        load_references(refs)
    check_bands(dict.fromkeys(metrics), refs, LEVEL)
    done, stuck, blown = reports(runs, refs)
    k = len(done) + len(stuck)
    chance = stuck_chance(len(stuck), k, refs) if stuck else 1.
    if not done and not stuck:
        raise CurvesError('every run blew up: nothing to judge')
    # Runs that stay at chance decide alone when healthy ones would do so that rarely.
    caught = chance < FAMILY
    cells = per_epoch(done, len(refs), metrics) if done else ([], True)
    rows = whole_curve(done, refs, metrics) if done else ([], True)
    return {'per_epoch': (cells[0], cells[1] and not caught),
            'whole_curve': (rows[0], rows[1] and not caught), 'refs': refs,
            'stuck': ([r.run.name for r in stuck], chance),
            'runs': [r.run.name for r in done], 'blew_up': [r.run.name for r in blown]}


def format_judgement(result):
    refs = result['refs']
    k = len(result['runs'])
    lines = ['runs:      %d judged together: %s' % (k, ', '.join(result['runs']) or 'none')]
    if result['blew_up']:
        lines.append('note:      left out, as they blew up: %s' % ', '.join(result['blew_up']))
    lines.append('set:       %d runs  [%s]' % (len(refs), set_folder(refs)))
    names, chance = result['stuck']
    if names:
        lines.append('plateau:   %d run(s) never left the chance plateau that the set left (%s): '
                     'healthy runs do so this often with chance %.3g at most%s' % (
                         len(names), ', '.join(names), chance, ', so they are OUTSIDE'
                         if chance < FAMILY else ''))
    cells, inside = result['per_epoch']
    lines += ['', 'per epoch: the mean of the runs\' distances from the band\'s centre, within '
              '+- t * s * sqrt(1/%d + 1/n) at %g each' % (k, LEVEL)]
    lines += ['  epoch %2d  %-8s %+.4f  within %.4f  %s' % (e, m, d, h, 'ok' if abs(d) <= h
                                                         else 'OUTSIDE')
              for e, m, d, h in cells]
    rows, whole = result['whole_curve']
    lines += ['', 'whole curve: the runs\' mean distance in units of the set\'s spread, against '
              'the set\'s own runs judged each against the others (%g in all)' % FAMILY]
    lines += ['  %-8s %+.3f  healthy %+.3f +- %.3f  %s' % (m, s, c, h, 'ok' if abs(s - c) <= h
                                                        else 'OUTSIDE') for m, s, c, h in rows]
    lines += ['', 'result:    per epoch %s; whole curve %s' % (
        'INSIDE' if inside else 'OUTSIDE', 'INSIDE' if whole else 'OUTSIDE')]
    return '\n'.join(lines)


# The changes of logs/reference/upstream-10k-changed, in docs/md's order.
CHANGES = (('blog', 'the blog recipe (`--recipe blog`)'), ('labelnoise', '20% label noise'),
           ('lr3x', "a learning rate 3x the recipe's (`--lr 0.03`)"),
           ('noaug', 'no augmentation'), ('nodrop', 'dropout off'))


def power_table(set_folder, changed_folder):
    """docs/md's table of what each change's runs are caught by, one run at a time and
    all together, as Markdown lines."""
    import os
    refs = load_references([set_folder])
    lines = ['| change | runs (seeds) | 1 run, band: caught | 1 run, whole curve: caught | '
             'all runs together: per epoch | whole curve |', '|---|---|---|---|---|---|']
    for name, text in CHANGES:
        runs = runs_in(os.path.join(changed_folder, name))
        singles = [(compare(r, refs).exit_code, judge([r], refs)) for r in runs]
        together = judge(runs, refs)
        stuck, chance = together['stuck']
        undecided = sum(code == UNDECIDED for code, _ in singles)

        def verdict(inside):
            return 'missed' if inside else '**caught**'
        lines.append('| %s | %d (%s) | %d of %d%s | %d of %d | %s%s | %s |' % (
            text, len(runs), ', '.join(os.path.basename(r).replace('seed-', '') for r in runs),
            sum(code == OUTSIDE for code, _ in singles), len(runs),
            ' (%d undecided)' % undecided if undecided else '',
            sum(not result['whole_curve'][1] for _, result in singles), len(runs),
            verdict(together['per_epoch'][1]),
            ' (%d stuck at chance: chance %.3f)' % (len(stuck), chance) if stuck else '',
            verdict(together['whole_curve'][1])))
    return lines
