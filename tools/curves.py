"""Regression-test accuracy curves: compare with a reference, plot, check the blog's claim.

  python -m tools.curves compare logs/mine logs/reference/synthetic-tiny --metrics all --tol 1e-6
  python -m tools.curves compare RUN REF [--tol 0.03] [--tol-metric loss=0.05] [--all-rows]
  python -m tools.curves plot RUN [RUN ...] [--reference REF] [-o curves.png] [--title TEXT]
  python -m tools.curves claim RUN [--threshold 0.90] [--by-epoch 350]

Run from the repository root. RUN and REF are history.csv files (epoch, loss, acc, val_loss,
val_acc, lr, seconds; a row per finished epoch, from 1) or the run directories holding them
beside their run.json. load_history, compare and claim are importable; runkit/plot.py draws.
"""
import argparse
import collections
import itertools
import math
import os
import sys

import pandas

from runkit import records
from runkit.argtypes import Parser, assignment, comma_list, non_negative_float
from runkit.plot import label, plot

# Curve columns a comparison may use. `seconds` is wall time: never equal across reruns.
METRICS = ('val_acc', 'loss', 'acc', 'val_loss', 'lr')
DEFAULT_TOL, CLAIM_THRESHOLD, CLAIM_EPOCH = 0.02, 0.90, 350
INSIDE, OUTSIDE, USAGE, NOT_ENOUGH = 0, 1, 2, 3  # exit codes, explained in EXIT_CODES
# A table longer than this hides the epochs nobody needs to read, or the verdict scrolls away.
MAX_ROWS = 40
# run.json args that say where and how loudly a run wrote, not what it trained.
NOT_TRAINING_ARGS = ('logdir', 'overwrite', 'quiet', 'resume')


class CurvesError(Exception):
    """Unusable input; str() is the one-line message for the user (exit code 2)."""


class History:
    """One run's curves: `frame` indexed by epoch, `run` its run.json record or None."""

    def __init__(self, path, frame, run, notes):
        self.path, self.frame, self.run, self.notes = path, frame, run, notes
        self.epochs = [int(e) for e in frame.index]
        self.label = label(os.path.basename(os.path.dirname(os.path.abspath(path))), run)


def load_history(path):
    """Read a history.csv, or the one in run directory `path`, and the run.json beside it;
    CurvesError, naming the file, when it is missing, empty, not a CSV or not numeric."""
    csv = os.path.join(path, 'history.csv') if os.path.isdir(path) else str(path)
    run, notes = None, []
    record = os.path.join(os.path.dirname(os.path.abspath(csv)), 'run.json')
    if os.path.exists(record):
        try:
            run = records.read_json(record)
        except (OSError, ValueError) as e:
            notes.append('%s is unreadable (%s): labels and checks go without it' % (record, e))
    if not os.path.exists(csv):
        if not os.path.isdir(path):
            raise CurvesError('%s: no such file or directory' % path)
        if (run or {}).get('status'):
            raise CurvesError('%s has no history.csv: the run (status %s in its run.json) '
                              'finished no epoch' % (path, run['status']))
        raise CurvesError('%s is a directory without a history.csv: pass a run directory '
                          '(a --logdir) or a history.csv file' % path)
    try:
        frame = pandas.read_csv(csv)
    except pandas.errors.EmptyDataError:
        raise CurvesError('%s is empty: no epoch has finished yet, or the file was cut' % csv)
    except (pandas.errors.ParserError, UnicodeDecodeError) as e:
        raise CurvesError('%s is not a readable CSV (%s)' % (csv, str(e).strip().splitlines()[0]))
    if frame.empty:
        raise CurvesError('%s has a header but no epochs: no epoch has finished yet' % csv)
    if 'epoch' not in frame.columns:
        # The upstream repository's history.csv: pandas' 0-based index, no epoch column.
        unnamed = frame.columns[0].startswith('Unnamed')
        frame['epoch'] = frame[frame.columns[0]] + 1 if unnamed else range(1, len(frame) + 1)
        notes.append('%s has no epoch column: rows are taken as epochs 1-%d in order'
                     % (csv, len(frame)))
    for column in [c for c in ('epoch',) + METRICS if c in frame.columns]:
        try:
            frame[column] = frame[column].astype(float)
        except ValueError:
            raise CurvesError('%s: column %s holds a value that is not a number' % (csv, column))
    if not ((frame['epoch'] >= 0) & (frame['epoch'] % 1 == 0)).all():
        raise CurvesError('%s: the epoch column must hold whole numbers' % csv)
    if frame['epoch'].duplicated().any():
        # A resumed run truncates its history, so repeats come from hand-joined files.
        notes.append('%s repeats some epochs: the last row of each is used' % csv)
    frame = frame.drop_duplicates('epoch', keep='last').astype({'epoch': int})
    return History(csv, frame.set_index('epoch').sort_index(), run, notes)


def require_columns(history, columns):
    missing = [c for c in columns if c not in history.frame.columns]
    if missing:
        raise CurvesError('%s has no %s column%s (it has: %s)' % (
            history.path, ', '.join(missing), 's' if len(missing) > 1 else '',
            ', '.join(['epoch'] + list(history.frame.columns))))


def epoch_ranges(epochs):
    """[1, 2, 3, 7, 8] -> '1-3, 7-8'."""
    spans = [[e for _, e in group] for _, group in
             itertools.groupby(enumerate(sorted(epochs)), lambda pair: pair[1] - pair[0])]
    return ', '.join('%d' % s[0] if len(s) == 1 else '%d-%d' % (s[0], s[-1])
                     for s in spans) or 'none'


def settings(run):
    """run.json flattened to {'optimizer.config.lr': 0.01, ...} over what shapes a curve."""
    def without(key, *names):
        return {k: v for k, v in (run.get(key) or {}).items() if k not in names}
    shaping = {'args': without('args', *NOT_TRAINING_ARGS), 'versions': without('versions'),
               'machine': without('machine', 'platform'), 'optimizer': without('optimizer', 'note')}
    shaping.update((k, run[k]) for k in ('seed', 'towers', 'git_commit') if k in run)
    return pandas.json_normalize(shaping).iloc[0].to_dict()


class Report:
    """The outcome of compare(): `table` has, per shared epoch, <metric>_run, _ref, _diff and
    _ok for every compared metric, and ok; first_out and worst_out are (epoch, metric) or None."""

    def __init__(self, run, ref, tolerances, table, notes):
        self.run, self.ref, self.tolerances, self.table = run, ref, tolerances, table
        self.notes, self.shared = notes, [int(e) for e in table.index]
        self.out_epochs = [int(e) for e in table.index[~table['ok']]]
        self.ok = not self.out_epochs
        self.exit_code = INSIDE if self.ok else OUTSIDE
        cells = [(e, m) for e in self.out_epochs for m in tolerances if not table.at[e, m + '_ok']]
        # max() keeps the first of equals, so ties go to the earliest epoch.
        self.worst_out = max(cells, key=self.excess, default=None)
        self.first_out = max([c for c in cells if c[0] == cells[0][0]], key=self.excess,
                             default=None)
        a, b = [settings(h.run) if h.run else None for h in (run, ref)]
        self.differences = None if a is None or b is None else [
            '%s: %s vs %s' % (k, a.get(k, '-'), b.get(k, '-'))
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

    def excess(self, cell):
        """(bands the difference spans, its size, which breaks ties when a band is 0); NaN on
        one side only counts as infinite."""
        diff, tol = abs(self.table.at[cell[0], cell[1] + '_diff']), self.tolerances[cell[1]]
        if math.isnan(diff):
            return math.inf, math.inf
        return (diff / tol if tol > 0 else math.inf), diff


def compare(run, ref, tolerances=None):
    """A Report on `run` against `ref` (paths or History) over the epochs both have: an epoch is
    inside when |run - ref| <= band for every metric of `tolerances` (default {'val_acc': 0.02}),
    bands absolute. Raises CurvesError on bad input."""
    run, ref = [h if isinstance(h, History) else load_history(h) for h in (run, ref)]
    tolerances = dict(tolerances or {'val_acc': DEFAULT_TOL})
    wrong = {m: t for m, t in tolerances.items() if m not in METRICS or not t >= 0}
    if wrong:
        raise CurvesError('cannot compare %r: metrics are %s, bands 0 or more'
                          % (wrong, ', '.join(METRICS)))
    for history in (run, ref):
        require_columns(history, tolerances)
    shared = sorted(set(run.epochs) & set(ref.epochs))
    if not shared:
        raise CurvesError('%s (epochs %s) and %s (epochs %s) share no epoch' % (
            run.path, epoch_ranges(run.epochs), ref.path, epoch_ranges(ref.epochs)))
    notes = run.notes + ref.notes
    if set(ref.epochs) - set(shared):
        notes.append('the run is shorter than the reference: reference epochs %s are not '
                     'compared' % epoch_ranges(set(ref.epochs) - set(shared)))
    if set(run.epochs) - set(shared):
        notes.append('the run is longer than the reference: run epochs %s have no reference and '
                     'are not compared' % epoch_ranges(set(run.epochs) - set(shared)))
    table = pandas.DataFrame({'ok': True}, index=pandas.Index(shared, name='epoch'))
    for metric, tol in tolerances.items():
        a, b = run.frame.loc[shared, metric], ref.frame.loc[shared, metric]
        # The slack absorbs float noise in the subtraction, so a band of 0.02 admits 0.13 - 0.11.
        inside = ((a - b).abs() <= tol * (1 + 1e-9) + 1e-15) | (a.isnull() & b.isnull())
        table[metric + '_run'], table[metric + '_ref'] = a, b
        table[metric + '_diff'], table[metric + '_ok'] = a - b, inside
        table['ok'] &= inside
    return Report(run, ref, tolerances, table, notes)


def format_report(report, all_rows=False):
    """What `compare` prints: the two runs, the per-epoch table, the verdict, run.json."""
    smallest = min([t for t in report.tolerances.values() if t > 0] or [1e-9])
    digits = int(min(10, max(4, math.ceil(-math.log10(smallest)) + 2)))
    shared, table = report.shared, report.table
    lines = ['run:       %s  [%s]' % (report.run.label, report.run.path),
             'reference: %s  [%s]' % (report.ref.label, report.ref.path),
             'band:      |run - reference| <= %s (absolute)' % ', '.join(
                 '%g for %s' % (t, m) for m, t in report.tolerances.items()),
             'epochs:    compared on %s (%d shared); the run has %s, the reference %s' % (
                 epoch_ranges(shared), len(shared), epoch_ranges(report.run.epochs),
                 epoch_ranges(report.ref.epochs))]
    lines += ['note:      %s' % n for n in report.notes] + ['']
    rows = shared
    if not all_rows and len(shared) > MAX_ROWS:
        cells = [c[0] for c in (report.first_out, report.worst_out) if c]
        rows = sorted(set(shared[:3] + shared[-3:] + report.out_epochs[:10] + cells))
    # The first metric gets run, reference and diff; further ones only their diff, to keep
    # the table narrow (their values are in the first/worst lines and in the files).
    first = list(report.tolerances)[0]
    show = table.loc[rows, [first + '_run', first + '_ref']].applymap(
        lambda v: '%.*f' % (digits, v))
    show.columns = ['run ' + first, 'ref ' + first]
    for m in report.tolerances:
        diff = table.loc[rows, m + '_diff'].map(lambda v: '%+.*f' % (digits, v))
        show['diff' if m == first else m + ' diff'] = diff + table.loc[rows, m + '_ok'].map(
            {True: ' ', False: '*'})
    show['band'] = table.loc[rows, 'ok'].map({True: 'ok', False: 'OUT'})
    text = show.reset_index().to_string(index=False).splitlines()
    lines.append(text[0])
    for previous, epoch, line in zip([None] + rows, rows, text[1:]):
        if previous is not None and shared.index(epoch) != shared.index(previous) + 1:
            lines.append('  ...')
        lines.append(line)
    lines.append('')
    if report.ok:
        lines.append('result:    INSIDE the band at all %d compared epochs' % len(shared))
    else:
        lines.append('result:    OUTSIDE the band at %d of %d compared epochs (%s); * marks the '
                     'values outside' % (len(report.out_epochs), len(shared),
                                         epoch_ranges(report.out_epochs)))
        for title, (epoch, m) in (('first', report.first_out), ('worst', report.worst_out)):
            t = table.loc[epoch]
            lines.append('%s:     epoch %d, %s: run %.*f, reference %.*f, diff %+.*f, band %g'
                         % (title, epoch, m, digits, t[m + '_run'], digits, t[m + '_ref'],
                            digits, t[m + '_diff'], report.tolerances[m]))
    diffs = report.differences
    if diffs is None:
        lines.append('run.json:  none beside %s, so versions and settings cannot be checked'
                     % (report.ref.path if report.run.run else report.run.path))
    else:
        lines.append('run.json:  the two differ in %d setting(s):' % len(diffs)
                     if diffs else 'run.json:  same settings, versions and machine type')
        lines += ['             %s' % d for d in diffs[:12] + (
            ['... and %d more' % (len(diffs) - 12)] if len(diffs) > 12 else [])]
    return '\n'.join(lines)


EXIT_CODES = """exit codes:
  compare  0 inside the band at every shared epoch, 1 outside at one or more
  claim    0 pass, 1 fail, 3 not enough epochs yet
  all      2 bad usage or unusable input (missing file, missing column, empty file)"""


def build_parser():
    p = Parser(prog='python -m tools.curves', description=__doc__, epilog=EXIT_CODES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', metavar='{compare,plot,claim}', required=True)
    c = sub.add_parser('compare', epilog=EXIT_CODES, formatter_class=p.formatter_class,
                       help='per-epoch differences from a reference, against a tolerance band')
    c.add_argument('run', metavar='RUN')
    c.add_argument('reference', metavar='REFERENCE')
    c.add_argument('--metrics', type=comma_list(METRICS + ('all',)), default=['val_acc'],
                   metavar='LIST', help='comma-separated, from %s; all: those both files have '
                                        '(default: val_acc)' % ', '.join(METRICS))
    c.add_argument('--tol', type=non_negative_float, default=DEFAULT_TOL, metavar='BAND',
                   help='absolute band of every metric without its own (default %(default)s)')
    c.add_argument('--tol-metric', type=assignment(non_negative_float, METRICS), action='append',
                   default=[], metavar='METRIC=BAND', help='also compare METRIC; repeatable')
    c.add_argument('--all-rows', action='store_true', help='print every shared epoch (default: '
                   'over %d, the first and last three and those outside the band)' % MAX_ROWS)
    pl = sub.add_parser('plot', help='accuracy and loss against epoch, the reference beneath')
    pl.add_argument('runs', nargs='+', metavar='RUN')
    pl.add_argument('-o', '--out', default='curves.png', help='the image (.png, .svg, .pdf)')
    pl.add_argument('--reference', metavar='REF')
    pl.add_argument('--title', help='a title above both panels')
    cl = sub.add_parser('claim', help="the blog's claim: val_acc above THRESHOLD by BY_EPOCH")
    cl.add_argument('run', metavar='RUN')
    cl.add_argument('--threshold', type=float, default=CLAIM_THRESHOLD, help='default %(default)s')
    cl.add_argument('--by-epoch', type=int, default=CLAIM_EPOCH, help='default %(default)s')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'compare':
            run, ref = load_history(args.run), load_history(args.reference)
            metrics = ([m for m in METRICS if m in run.frame and m in ref.frame]
                       if 'all' in args.metrics else args.metrics)
            report = compare(run, ref, dict([(m, args.tol) for m in metrics] + args.tol_metric))
            print(format_report(report, args.all_rows))
            return report.exit_code
        if args.command == 'plot':
            runs = [load_history(r) for r in args.runs]
            ref = load_history(args.reference) if args.reference else None
            for history in runs + ([ref] if ref else []):
                if not set(history.frame.columns) & {'acc', 'val_acc', 'loss', 'val_loss'}:
                    require_columns(history, ['val_acc'])
            print('wrote %s' % plot([(h.label, h.frame) for h in runs], args.out, title=args.title,
                                    reference=(ref.label, ref.frame) if ref else None))
            return 0
        result = claim(args.run, args.threshold, args.by_epoch)
        print(result.text)
        return result.exit_code
    except (CurvesError, OSError) as e:
        sys.stderr.write('python -m tools.curves: error: %s\n' % e)
        return USAGE


Claim = collections.namedtuple('Claim', 'verdict exit_code text')


def best(val_acc):
    """'val_acc V at epoch E' for the first of the best epochs, or None when all are NaN."""
    val_acc = val_acc.dropna()
    return None if val_acc.empty else 'val_acc %.4f at epoch %d' % (val_acc.max(), val_acc.idxmax())


def claim(path, threshold=CLAIM_THRESHOLD, by_epoch=CLAIM_EPOCH):
    """The blog's claim, val_acc above `threshold` by `by_epoch`: 'pass' when an epoch up to
    `by_epoch` is strictly above, 'fail' when the history reaches it without one, else 'not
    enough epochs'."""
    history = path if isinstance(path, History) else load_history(path)
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
        if status == 'finished':
            lines.append('        the run finished after %d epochs: train with --epochs %d or '
                         'more to test the claim' % (last, by_epoch))
        elif status == 'running':
            lines.append('        the run is still training: check again later')
        elif status:
            lines.append('        the run is %s: continue it with python allconvnet.py --resume %s'
                         % (status, os.path.dirname(history.path) or os.curdir))
    lines.append('best:   %s (history: epochs %s)' % (
        best(val) or 'none (val_acc is NaN throughout)', epoch_ranges(history.epochs)))
    lines += ['note:   %s' % n for n in history.notes]
    code = {'pass': INSIDE, 'fail': OUTSIDE}.get(verdict, NOT_ENOUGH)
    return Claim(verdict, code, '\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
