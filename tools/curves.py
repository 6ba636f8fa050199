"""Regression-test accuracy curves: compare with a reference or a reference set's band, judge
several runs together, plot, check the blog's claim.

  python -m tools.curves compare logs/mine logs/reference/upstream-10k
  python -m tools.curves compare logs/mine logs/reference/synthetic-tiny --metrics all --tol 1e-6
  python -m tools.curves compare RUN REF [REF ...] [--metrics LIST] [--level 0.995]
                                 [--tol 0.03] [--tol-metric loss=0.05] [--all-rows]
  python -m tools.curves judge SET RUN [RUN ...]
  python -m tools.curves band SET [--metrics LIST] [--level 0.995]
  python -m tools.curves plot RUN [RUN ...] [--reference REF ...] [-o curves.png] [--title TEXT]
  python -m tools.curves claim RUN [--threshold 0.90] [--by-epoch 350]

Run from the repository root. RUN and REF are history.csv files or the run directories that
hold them beside their run.json; a REF may be a reference set, a folder of run directories.
One reference is compared within an absolute tolerance (--tol); several, with the band their
runs span (docs/curves.md).
"""
import argparse
import collections
import math
import os
import sys

import pandas

from runkit import records
from runkit.argtypes import (Parser, assignment, comma_list, fraction, non_negative_float,
                             positive_int)
from runkit.errors import exit_code, prepare
from runkit.plot import formats, plot
from tools import multirun
# The rooms this command line joins; what the suite and a user's script import, from here.
from tools.band import (LEVEL, MIN_SET_RUNS, PLATEAU_EXIT, SET_METRICS, band, bands,  # noqa: F401
                        before_blow_up, blow_up, left_plateau, reference_values, set_alignment)
from tools.report import (DEFAULT_TOL, INSIDE, MAX_ROWS, NOT_ENOUGH, OUTSIDE, UNDECIDED,  # noqa
                          check_bands, compare, format_report, set_folder)
from tools.runs import (METRICS, CurvesError, History, as_history, epoch_ranges,  # noqa: F401
                        load_history, load_references, require_columns, runs_in)

CLAIM_THRESHOLD, CLAIM_EPOCH = 0.90, 350
PROG = 'python -m tools.curves'


def band_frames(refs, metrics, level=LEVEL, delay=1.):
    """{metric: DataFrame by epoch of the band's mean, low and high and the references' min and
    max}, for the metrics every reference has, over the epochs two or more have: the band of a
    run that left the plateau at epoch `delay`."""
    refs = [before_blow_up(r) for r in refs]
    counts = collections.Counter(e for r in refs for e in r.epochs)
    epochs = sorted(e for e, c in counts.items() if c >= 2)
    shift, frames = set_alignment(refs, delay), {}
    for m in [m for m in metrics if epochs and all(m in r.frame.columns for r in refs)]:
        centre, half = bands(refs, m, epochs, None, level, shift)
        values = reference_values(refs, m, epochs, shift)
        frames[m] = pandas.DataFrame({'mean': centre, 'low': centre - half, 'high': centre + half,
                                      'min': values.min(axis=1), 'max': values.max(axis=1)}
                                     ).dropna(subset=['mean'])
    return frames


def band_summary(refs, metrics, level=LEVEL):
    """What `band` prints: a set's band per epoch, as a Markdown table, and how close to the
    mean a run may come and still be caught."""
    frames = band_frames(refs, metrics, level)
    if not frames or next(iter(frames.values())).empty:
        raise CurvesError('the references share no epoch with two or more runs, or no metric of '
                          '%s' % ', '.join(metrics))
    shift = set_alignment([before_blow_up(r) for r in refs])
    lines = ['%d runs (%s), band at level %g per epoch and metric' % (
        len(refs), ', '.join(r.name for r in refs), level)]
    if shift is not None:
        lines.append('for a run that left the chance plateau (val_acc %g) by its first epoch, as '
                     '%d of these did; the others left at %s (docs/curves.md)' % (
                         PLATEAU_EXIT, sum(d <= 1 for d in shift[1]),
                         ', '.join('%.2f' % d for d in sorted(shift[1]) if d > 1) or '-'))
    lines += ['', '| epoch | ' + ' | '.join('%s mean | %s runs min-max | %s band' % (m, m, m)
                                           for m in frames) + ' |',
              '|---|' + '---|---|---|' * len(frames)]
    lines += ['| %d | ' % e + ' | '.join('%.4f | %.4f-%.4f | %.4f-%.4f' % tuple(
        f.loc[e, ['mean', 'min', 'max', 'low', 'high']]) for f in frames.values()) + ' |'
        for e in next(iter(frames.values())).index]
    for m, f in frames.items():
        half = f['high'] - f['mean']
        lines.append('%s: a run is outside once it is more than %.4f (epoch %d) to %.4f (epoch '
                     '%d) from the mean' % (m, half.min(), half.idxmin(), half.max(),
                                           half.idxmax()))
    return '\n'.join(lines)


def band_curves(refs, level=LEVEL, delay=None):
    """What plot() draws for a reference set: (label, band_frames() of the validation curves)
    for a run that left the plateau at epoch `delay`; one that never did, or None, is drawn
    for as one that left at epoch 1, as most do."""
    delay = delay if delay is not None and math.isfinite(delay) else 1.
    frames = band_frames(refs, SET_METRICS, level, delay)
    # An accuracy outside [0, 1] cannot happen, so the drawing stops there; a loss below 0 too.
    for column, frame in frames.items():
        frame['low'] = frame['low'].clip(lower=0)
        if column.endswith('acc'):
            frame['high'] = frame['high'].clip(upper=1)
    aligned = (', aligned on leaving the plateau at epoch %.2f' % delay
               if set_alignment(refs) else '')
    return ('%s: %d runs, band at level %g%s, darker: their range' % (
        os.path.basename(os.path.abspath(set_folder(refs))), len(refs), level, aligned), frames)


def check_out(out):
    """Refuse an image path that cannot be written, before anything is drawn."""
    if not out:
        raise CurvesError("-o '': name the image, e.g. -o curves.png")
    if os.path.isdir(out):
        raise CurvesError('-o %s is a directory: name the image, e.g. -o %s'
                          % (out, os.path.join(out, 'curves.png')))
    fmt = os.path.splitext(out)[1].lstrip('.').lower()
    if fmt and fmt not in formats():
        raise CurvesError('-o %s: cannot write .%s images; give one of .%s'
                          % (out, fmt, ', .'.join(sorted(formats()))))


EXIT_CODES = """exit codes:
  judge    0 the runs together are inside, 1 outside
  compare  0 inside the band at every judged epoch, 1 outside at one or more, 3 undecided:
           the run never left the chance plateau that the references left, or it blew up
           (a loss above 2 ln 10, or diverged), which healthy seeds do at times
  claim    0 pass, 1 fail, 3 not enough epochs yet
  all      2 bad usage or unusable input (missing file, missing column, empty file)"""


def build_parser():
    p = Parser(prog=PROG, description=__doc__, epilog=EXIT_CODES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', metavar='{compare,judge,band,plot,claim}',
                           required=True)
    c = sub.add_parser('compare', epilog=EXIT_CODES, formatter_class=p.formatter_class,
                       help="a run against a reference, or a reference set's band")
    c.add_argument('run', metavar='RUN')
    c.add_argument('reference', metavar='REFERENCE', nargs='+',
                   help='a run, several, or a reference set (a folder of runs)')
    c.add_argument('--metrics', type=comma_list(METRICS + ('all',)), default=None,
                   metavar='LIST', help='comma-separated, from %s; all: those every file has '
                   '(default: val_acc for one reference, %s for several)'
                   % (', '.join(METRICS), ','.join(SET_METRICS)))
    c.add_argument('--level', type=fraction, default=LEVEL, metavar='P', help='several '
                   'references: the chance per epoch and metric that a healthy run lands inside '
                   'the band (default %(default)s)')
    c.add_argument('--tol', type=non_negative_float, default=None, metavar='BAND',
                   help='absolute band of every metric without its own, around the '
                        "reference's value or the references' range (default for one "
                        'reference: %g)' % DEFAULT_TOL)
    c.add_argument('--tol-metric', type=assignment(non_negative_float, METRICS), action='append',
                   default=[], metavar='METRIC=BAND', help='also compare METRIC; repeatable')
    c.add_argument('--all-rows', action='store_true', help='print every shared epoch (default: '
                   'over %d, the first and last three and those outside the band)' % MAX_ROWS)
    j = sub.add_parser('judge', epilog=EXIT_CODES, formatter_class=p.formatter_class,
                       help='several runs of one change together against a reference set')
    j.add_argument('reference', metavar='SET')
    j.add_argument('runs', metavar='RUN', nargs='+', help='runs, or a folder of them; each once')
    b = sub.add_parser('band', help="a reference set's band per epoch, as a Markdown table")
    b.add_argument('reference', metavar='REFERENCE', nargs='+')
    b.add_argument('--metrics', type=comma_list(METRICS), default=list(SET_METRICS),
                   metavar='LIST', help='default: %s' % ','.join(SET_METRICS))
    b.add_argument('--level', type=fraction, default=LEVEL, metavar='P',
                   help='default %(default)s')
    pl = sub.add_parser('plot', help='accuracy and loss against epoch, the reference beneath')
    pl.add_argument('runs', nargs='+', metavar='RUN')
    pl.add_argument('-o', '--out', default='curves.png',
                    help='the image (.png, .svg, .pdf, ...; default %(default)s)')
    pl.add_argument('--reference', metavar='REF', action='append',
                    help='a run drawn beneath, or a reference set drawn as its band; repeatable')
    pl.add_argument('--level', type=fraction, default=LEVEL, metavar='P',
                    help="the band's level (default %(default)s)")
    pl.add_argument('--title', help='a title above both panels')
    cl = sub.add_parser('claim', help="the blog's claim: val_acc above THRESHOLD by BY_EPOCH")
    cl.add_argument('run', metavar='RUN')
    cl.add_argument('--threshold', type=fraction, default=CLAIM_THRESHOLD, help='%(default)s')
    cl.add_argument('--by-epoch', type=positive_int, default=CLAIM_EPOCH, help='%(default)s')
    return p


def tolerances_from(args, run, refs):
    """The compared metrics and their bands from the flags: --tol, or one reference, makes
    every band absolute; several references without it, the drawn band."""
    if args.metrics is None:
        metrics = list(SET_METRICS) if len(refs) > 1 else ['val_acc']
    elif 'all' in args.metrics:
        metrics = [m for m in METRICS if all(m in h.frame for h in [run] + refs)]
    else:
        metrics = args.metrics
    base = args.tol if args.tol is not None else (None if len(refs) > 1 else DEFAULT_TOL)
    return dict([(m, base) for m in metrics] + args.tol_metric)


def plot_command(args):
    check_out(args.out)
    runs = [load_history(r) for r in args.runs]
    refs = load_references(args.reference or [])
    for history in runs + refs:
        if not set(history.frame.columns) & {'acc', 'val_acc', 'loss', 'val_loss'}:
            require_columns(history, ['val_acc'])
    reference = (refs[0].label, refs[0].frame) if len(refs) == 1 else None
    # One run: the band aligned on when it left the plateau; several: on a run that left it
    # by its first epoch.
    delay = left_plateau(runs[0]) if len(runs) == 1 else None
    shaded = band_curves(refs, args.level, delay) if len(refs) > 1 else None
    return plot([(h.label, h.frame) for h in runs], args.out, title=args.title,
                reference=reference, band=shaded)


def main(argv=None):
    """The exit code; bad input raises CurvesError, which exit_code() makes one line."""
    args = build_parser().parse_args(argv)
    if args.command == 'compare':
        run, refs = load_history(args.run), load_references(args.reference)
        report = compare(run, refs, tolerances_from(args, run, refs), args.level)
        print(format_report(report, args.all_rows))
        return report.exit_code
    if args.command == 'judge':
        result = multirun.judge(load_references(args.runs), [args.reference])
        print(multirun.format_judgement(result))
        return INSIDE if result['per_epoch'][1] else OUTSIDE
    if args.command == 'band':
        print(band_summary(load_references(args.reference), args.metrics, args.level))
        return 0
    if args.command == 'plot':
        print('wrote %s' % plot_command(args))
        return 0
    result = claim(args.run, args.threshold, args.by_epoch)
    print(result.text)
    return result.exit_code


Claim = collections.namedtuple('Claim', 'verdict exit_code text')


def best(val_acc):
    """'val_acc V at epoch E' for the first of the best epochs, or None when all are NaN."""
    val_acc = val_acc.dropna()
    return None if val_acc.empty else 'val_acc %.4f at epoch %d' % (val_acc.max(), val_acc.idxmax())


def claim(path, threshold=CLAIM_THRESHOLD, by_epoch=CLAIM_EPOCH):
    """The blog's claim, val_acc above `threshold` by `by_epoch`: 'pass' when an epoch up to
    `by_epoch` is strictly above, 'fail' when the history reaches it without one, else 'not
    enough epochs'."""
    history = as_history(path)
    require_columns(history, ['val_acc'])
    val, last = history.frame['val_acc'], history.epochs[-1]
    above = val[val > threshold]
    lines = ["claim:  val_acc above %g by epoch %d (the blog's claim)" % (threshold, by_epoch),
             'run:    %s  [%s]' % (history.label, history.path)]
    if not above.empty and above.index[0] <= by_epoch:
        verdict = 'pass'
        lines.append('result: PASS: val_acc %.4f at epoch %d, the first above %g'
                     % (above.iloc[0], above.index[0], threshold))
    elif last >= by_epoch:
        verdict = 'fail'
        lines.append('result: FAIL: no epoch up to %d has val_acc above %g; the best by then is '
                     '%s' % (by_epoch, threshold, best(val.loc[:by_epoch]) or 'none (all NaN)'))
        if not above.empty:
            lines.append('        (it gets above %g later, at epoch %d: too late for the claim)'
                         % (threshold, above.index[0]))
    else:
        verdict = 'not enough epochs'
        lines.append('result: NOT ENOUGH EPOCHS: the history ends at epoch %d of the %d the claim '
                     'needs, and no epoch so far is above %g' % (last, by_epoch, threshold))
        status = (history.run or {}).get('status')
        if status:
            lines.append('        ' + {
                'finished': 'the run finished after %d epochs: train with --epochs %d or more to '
                            'test the claim' % (last, by_epoch),
                'running': 'the run is still training: check again later'}.get(status, (
                    'the run is %s: continue it with %s' % (status, records.command(
                        ['--resume', os.path.dirname(history.path) or os.curdir])))))
    lines.append('best:   %s (history: epochs %s)' % (
        best(val) or 'none (val_acc is NaN throughout)', epoch_ranges(history.epochs)))
    lines += ['note:   %s' % n for n in history.notes]
    code = {'pass': INSIDE, 'fail': OUTSIDE}.get(verdict, NOT_ENOUGH)
    return Claim(verdict, code, '\n'.join(lines))


if __name__ == '__main__':
    prepare(PROG, tensorflow=False)
    sys.exit(exit_code(main, PROG))
