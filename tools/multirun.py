"""Several runs of a changed configuration judged together against a reference set.

One run of a changed recipe is judged by the set's band, where one more healthy run lands with
probability LEVEL at each epoch and metric (tools/band.py). k runs carry more: their mean lies
closer to the mean of their configuration, by sqrt(k). So at each judged epoch and metric the
mean of the k runs' distances from the band's centre is judged against the band for a mean of
k new runs, mean +- t * s * sqrt(1/k + 1/n), at LEVEL each: one run's false-fail rate. Runs
that never leave the chance plateau decide alone. docs/curves.md has what this catches.
"""
import math

from tools.band import LEVEL, SET_METRICS, left_plateau
from tools.report import check_bands, compare, set_folder
from tools.runs import CurvesError, as_history, load_references

# The chance below which k runs stuck on the plateau are too many for healthy runs.
FAMILY = 0.05


def stuck_chance(stuck, k, refs):
    """The chance that `stuck` or more of k healthy runs stay on the chance plateau as long
    as these did, at the largest rate the set allows: the one-sided 95% upper bound on the
    share of its runs that never leave (none of n: 1 - 0.05^(1/n))."""
    from scipy.stats import binom
    n = len(refs)
    never = sum(1 for r in refs if math.isinf(left_plateau(r)))
    p = 1 - 0.05 ** (1. / n) if not never else min(1., (never + 1.) / n)
    return float(binom.sf(stuck - 1, k, p))


def per_epoch(done, n, metrics):
    """[(epoch, metric, mean distance, half-width for the mean)] over the epochs every run
    judged, and whether all lie inside."""
    k = len(done)
    epochs = sorted(set.intersection(*[set(r.judged) for r in done]))
    narrow = math.sqrt((1. / k + 1. / n) / (1 + 1. / n))
    cells = [(e, m, sum(r.table.at[e, m + '_diff'] for r in done) / k,
              narrow * sum(r.table.at[e, m + '_half'] for r in done) / k)
             for e in epochs for m in metrics]
    return cells, all(abs(d) <= h for _, _, d, h in cells)


def judge(runs, refs, metrics=SET_METRICS):
    """{'per_epoch': (cells, inside), 'stuck': (names, chance), 'runs': names, 'blew_up': names,
    'refs': Histories} for the runs (paths or Histories) judged together against the set (a
    list of Histories, or the paths load_references takes)."""
    refs = [as_history(r) for r in refs if not isinstance(r, str)] or load_references(refs)
    check_bands(dict.fromkeys(metrics), refs)
    reports = [compare(r, refs, dict.fromkeys(metrics)) for r in runs]
    blown = [r for r in reports if r.blew_up is not None]
    stuck = [r for r in reports if r.blew_up is None and r.undecided]
    done = [r for r in reports if r not in blown and r not in stuck]
    if not done and not stuck:
        raise CurvesError('every run blew up: nothing to judge')
    chance = stuck_chance(len(stuck), len(done) + len(stuck), refs) if stuck else 1.
    # A run that is one of the set's is judged against the others (compare): n is theirs.
    cells, inside = per_epoch(done, min(len(r.refs) for r in done), metrics) if done else ([], True)
    return {'per_epoch': (cells, inside and chance >= FAMILY), 'refs': refs,
            'stuck': ([r.run.name for r in stuck], chance),
            'runs': [r.run.name for r in done], 'blew_up': [r.run.name for r in blown]}


def format_judgement(result):
    refs, k = result['refs'], len(result['runs'])
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
    lines += ['  epoch %2d  %-8s %+.4f  within %.4f  %s'
              % (e, m, d, h, 'ok' if abs(d) <= h else 'OUTSIDE') for e, m, d, h in cells]
    return '\n'.join(lines + ['', 'result:    %s' % ('INSIDE' if inside else 'OUTSIDE')])
