"""Regression-test accuracy curves: compare a run with a reference, plot runs, check the blog's claim.

    python tools/curves.py compare RUN REFERENCE [--metrics LIST] [--tol T] [--tol-metric M=T]
    python tools/curves.py plot RUN [RUN ...] [--reference REF] [-o curves.png]
    python tools/curves.py claim RUN [--threshold 0.90] [--by-epoch 350]

RUN, REF and REFERENCE are history.csv files (columns epoch, loss, acc, val_loss, val_acc, lr,
seconds; one row per finished epoch, epoch from 1) or the run directories that hold them next
to their run.json. The same functions are importable: load_history, compare, plot, claim.

Only pandas, numpy and matplotlib are imported (matplotlib only when plotting, through the Agg
canvas, never pyplot): no Keras, no TensorFlow, so the tool is quick, needs no display, and
allconvnet.py can call plot() at the end of training without side effects.
"""
from __future__ import print_function

import argparse
import json
import math
import os
import sys
import textwrap

import numpy as np
import pandas

# Curve columns a comparison may use. `seconds` is wall time: never equal across reruns.
METRICS = ('val_acc', 'loss', 'acc', 'val_loss', 'lr')
DEFAULT_TOL = 0.02
CLAIM_THRESHOLD = 0.90
CLAIM_EPOCH = 350
# Exit codes (also in --help).
INSIDE, OUTSIDE, USAGE, NOT_ENOUGH = 0, 1, 2, 3
# run.json args that say where and how loudly a run wrote, not what it trained.
NOT_TRAINING_ARGS = ('logdir', 'overwrite', 'quiet', 'resume')


class CurvesError(Exception):
    """Unusable input; str() is the one-line message for the user (exit code 2)."""


# --- Loading ---------------------------------------------------------------------------------

class History(object):
    """One run's curves: `frame` is indexed by epoch (ascending); `run` is its run.json or None."""

    def __init__(self, path, frame, run=None, notes=()):
        self.path = path
        self.frame = frame
        self.run = run
        self.notes = list(notes)

    @property
    def rundir(self):
        return os.path.dirname(os.path.abspath(self.path))

    @property
    def name(self):
        return os.path.basename(self.rundir) or self.path

    @property
    def epochs(self):
        return [int(e) for e in self.frame.index]

    def label(self):
        """The logdir's name and the settings that shape a curve, from run.json when there is one."""
        if not self.run:
            return self.name
        parts = []
        opt = self.run.get('optimizer') or {}
        config = opt.get('config') or {}
        if 'lr' in config:
            text = '%s lr=%g' % (opt.get('class_name', 'optimizer'), config['lr'])
            if config.get('momentum'):
                text += ' m=%g%s' % (config['momentum'], ' nesterov' if config.get('nesterov') else '')
            parts.append(text)
        args = self.run.get('args') or {}
        if args.get('batch_size'):
            parts.append('bs %s' % args['batch_size'])
        if args.get('train_limit'):
            parts.append('%s train' % args['train_limit'])
        if (self.run.get('towers') or 1) > 1:
            parts.append('%s towers' % self.run['towers'])
        if self.run.get('seed') is not None:
            parts.append('seed %s%s' % (self.run['seed'], ' det' if args.get('deterministic') else ''))
        if self.run.get('status') not in (None, 'finished'):
            parts.append(self.run['status'])
        return '%s (%s)' % (self.name, ', '.join(parts)) if parts else self.name


def _status(rundir):
    try:
        with open(os.path.join(rundir, 'run.json')) as f:
            return json.load(f).get('status')
    except (OSError, ValueError, AttributeError):
        return None


def _csv_path(path):
    if os.path.isdir(path):
        csv = os.path.join(path, 'history.csv')
        if not os.path.exists(csv):
            status = _status(path)
            if status:
                raise CurvesError('%s has no history.csv: the run (status %s in its run.json) '
                                  'finished no epoch' % (path, status))
            raise CurvesError('%s is a directory without a history.csv: pass a run directory '
                              '(a --logdir) or a history.csv file' % path)
        return csv
    if not os.path.exists(path):
        raise CurvesError('%s: no such file or directory' % path)
    return path


def load_history(path):
    """Read a history.csv, or the history.csv in run directory `path`, plus its run.json.

    Raises CurvesError, with a message that names the file, when the file is missing, empty,
    not a CSV, or holds non-numeric values.
    """
    if isinstance(path, History):
        return path
    csv = _csv_path(path)
    if os.path.getsize(csv) == 0:
        raise CurvesError('%s is empty: the run has not finished an epoch yet (or the file was '
                          'truncated)' % csv)
    try:
        frame = pandas.read_csv(csv)
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise CurvesError('%s is not a readable CSV (%s)' % (csv, str(e).strip().splitlines()[0]))
    if frame.empty:
        raise CurvesError('%s has a header but no epochs: the run has not finished an epoch yet'
                          % csv)
    notes = []
    if 'epoch' not in frame.columns:
        # The upstream repository's history.csv: pandas' 0-based index, no epoch column.
        if frame.columns[0].startswith('Unnamed'):
            frame['epoch'] = frame[frame.columns[0]] + 1
        else:
            frame['epoch'] = np.arange(1, len(frame) + 1)
        notes.append('%s has no epoch column: rows are taken as epochs 1-%d in order'
                     % (csv, len(frame)))
    for column in ('epoch',) + METRICS:
        if column in frame.columns:
            try:
                frame[column] = frame[column].astype(float)
            except ValueError:
                raise CurvesError('%s: column %s holds a value that is not a number' % (csv, column))
    epoch = frame['epoch']
    if epoch.isnull().any() or (epoch != epoch.round()).any() or (epoch < 0).any():
        raise CurvesError('%s: the epoch column must hold whole numbers' % csv)
    frame['epoch'] = epoch.astype(int)
    if frame['epoch'].duplicated().any():
        # A resumed run truncates its history, so repeats come from hand-joined files.
        notes.append('%s repeats some epochs: the last row of each is used' % csv)
        frame = frame.drop_duplicates('epoch', keep='last')
    frame = frame.set_index('epoch').sort_index()
    run = None
    run_json = os.path.join(os.path.dirname(os.path.abspath(csv)), 'run.json')
    if os.path.exists(run_json):
        try:
            with open(run_json) as f:
                run = json.load(f)
        except (OSError, ValueError) as e:
            notes.append('%s is unreadable (%s): labels and checks go without it' % (run_json, e))
    return History(csv, frame, run, notes)


def require_columns(history, columns):
    missing = [c for c in columns if c not in history.frame.columns]
    if missing:
        raise CurvesError('%s has no %s column%s (it has: %s)' % (
            history.path, ', '.join(missing), 's' if len(missing) > 1 else '',
            ', '.join(['epoch'] + list(history.frame.columns))))


def epoch_ranges(epochs):
    """[1, 2, 3, 7, 8] -> '1-3, 7-8'."""
    epochs = sorted(epochs)
    if not epochs:
        return 'none'
    spans, start, prev = [], epochs[0], epochs[0]
    for e in epochs[1:] + [None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        spans.append('%d' % start if start == prev else '%d-%d' % (start, prev))
        if e is not None:
            start = prev = e
    return ', '.join(spans)


# --- compare ---------------------------------------------------------------------------------

class Report(object):
    """The outcome of compare(): per-epoch differences, and where they leave the band."""

    def __init__(self, run, ref, tolerances, table, notes):
        self.run = run
        self.ref = ref
        self.tolerances = tolerances
        self.table = table  # index epoch; <m>_run, <m>_ref, <m>_diff, <m>_ok per metric; ok
        self.notes = notes

    @property
    def metrics(self):
        return list(self.tolerances)

    @property
    def shared(self):
        return [int(e) for e in self.table.index]

    @property
    def ok(self):
        return bool(self.table['ok'].all())

    @property
    def exit_code(self):
        return INSIDE if self.ok else OUTSIDE

    @property
    def out_epochs(self):
        return [int(e) for e in self.table.index[~self.table['ok']]]

    def _excess(self, epoch, metric):
        """(bands the difference spans, its size): NaN on one side only counts as infinite.

        The size breaks ties when a band of 0 makes every ratio infinite.
        """
        diff = self.table.at[epoch, metric + '_diff']
        if np.isnan(diff):
            return math.inf, math.inf
        tol = self.tolerances[metric]
        return (abs(diff) / tol if tol > 0 else math.inf), abs(diff)

    def _outside_cells(self, epoch):
        return [m for m in self.metrics if not self.table.at[epoch, m + '_ok']]

    @property
    def first_out(self):
        """(epoch, metric) of the first departure, or None."""
        for epoch in self.out_epochs:
            metric = max(self._outside_cells(epoch), key=lambda m: self._excess(epoch, m))
            return epoch, metric
        return None

    @property
    def worst_out(self):
        """(epoch, metric) with the largest difference relative to its band, or None."""
        cells = [(e, m) for e in self.out_epochs for m in self._outside_cells(e)]
        if not cells:
            return None
        # max() keeps the first of equals, so ties go to the earliest epoch.
        return max(cells, key=lambda c: self._excess(*c))

    def run_json_differences(self):
        """['key: run value vs reference value', ...] over what shapes a curve."""
        if not (self.run.run and self.ref.run):
            return None
        a, b = _flat_settings(self.run.run), _flat_settings(self.ref.run)
        return ['%s: %s vs %s' % (k, a.get(k, '-'), b.get(k, '-'))
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

    def format(self, all_rows=False, max_rows=40):
        return '\n'.join(_format_report(self, all_rows, max_rows))


def _flat_settings(run):
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk('%s.%s' % (prefix, k) if prefix else k, v)
        else:
            flat[prefix] = value
    walk('args', dict((k, v) for k, v in (run.get('args') or {}).items()
                      if k not in NOT_TRAINING_ARGS))
    walk('versions', run.get('versions') or {})
    walk('machine', dict((k, v) for k, v in (run.get('machine') or {}).items() if k != 'platform'))
    walk('optimizer', dict((k, v) for k, v in (run.get('optimizer') or {}).items() if k != 'note'))
    for key in ('seed', 'towers', 'git_commit'):
        if key in run:
            flat[key] = run[key]
    return flat


def compare(run, ref, tolerances=None):
    """Compare `run` with `ref` (paths or History) on the epochs both have.

    tolerances maps metric -> absolute band: an epoch is inside when |run - ref| <= band for
    every metric. Default {'val_acc': 0.02}. Returns a Report; raises CurvesError on bad input.
    """
    run, ref = load_history(run), load_history(ref)
    tolerances = dict(tolerances or {'val_acc': DEFAULT_TOL})
    for metric, tol in tolerances.items():
        if metric not in METRICS:
            raise CurvesError('cannot compare %r: choose from %s' % (metric, ', '.join(METRICS)))
        if not tol >= 0:
            raise CurvesError('the band for %s must be 0 or more, got %r' % (metric, tol))
    require_columns(run, tolerances)
    require_columns(ref, tolerances)
    shared = sorted(set(run.epochs) & set(ref.epochs))
    if not shared:
        raise CurvesError('%s (epochs %s) and %s (epochs %s) share no epoch' % (
            run.path, epoch_ranges(run.epochs), ref.path, epoch_ranges(ref.epochs)))
    notes = run.notes + ref.notes
    only_run = sorted(set(run.epochs) - set(shared))
    only_ref = sorted(set(ref.epochs) - set(shared))
    if only_ref:
        notes.append('the run is shorter than the reference: reference epochs %s are not '
                     'compared' % epoch_ranges(only_ref))
    if only_run:
        notes.append('the run is longer than the reference: run epochs %s have no reference and '
                      'are not compared' % epoch_ranges(only_run))
    table = pandas.DataFrame(index=pandas.Index(shared, name='epoch'))
    table['ok'] = True
    for metric, tol in tolerances.items():
        a = run.frame.loc[shared, metric].astype(float)
        b = ref.frame.loc[shared, metric].astype(float)
        diff = a - b
        both_nan = a.isnull() & b.isnull()
        # The slack absorbs float noise in the subtraction, so a band of 0.02 admits 0.13 - 0.11.
        inside = (diff.abs() <= tol * (1 + 1e-9) + 1e-15) | both_nan
        table[metric + '_run'], table[metric + '_ref'] = a, b
        table[metric + '_diff'], table[metric + '_ok'] = diff, inside
        table['ok'] &= inside
    return Report(run, ref, tolerances, table, notes)


def _digits(tolerances):
    smallest = min([t for t in tolerances.values() if t > 0] or [1e-9])
    return int(min(10, max(4, math.ceil(-math.log10(smallest)) + 2)))


def _rows_to_show(report, all_rows, max_rows):
    epochs = report.shared
    if all_rows or len(epochs) <= max_rows:
        return epochs
    keep = set(epochs[:3] + epochs[-3:] + report.out_epochs[:10])
    for cell in (report.first_out, report.worst_out):
        if cell:
            keep.add(cell[0])
    return sorted(keep)


def _format_report(report, all_rows, max_rows):
    d = _digits(report.tolerances)
    width = d + 4
    shared = report.shared
    lines = ['run:       %s  [%s]' % (report.run.label(), report.run.path),
             'reference: %s  [%s]' % (report.ref.label(), report.ref.path),
             'band:      |run - reference| <= %s (absolute)' % ', '.join(
                 '%g for %s' % (t, m) for m, t in report.tolerances.items()),
             'epochs:    compared on %s (%d shared); the run has %s, the reference %s' % (
                 epoch_ranges(shared), len(shared), epoch_ranges(report.run.epochs),
                 epoch_ranges(report.ref.epochs))]
    lines += ['note:      %s' % n for n in report.notes]
    lines.append('')
    # The first metric gets run, reference and diff; further ones only their diff, to keep
    # the table narrow (their values are in the first/worst lines and in the files).
    first, rest = report.metrics[0], report.metrics[1:]
    width = max(width, len(first) + 5, *[len(m) + 6 for m in rest])
    head = '%5s  %*s %*s %*s ' % ('epoch', width, 'run ' + first, width, 'ref ' + first, width,
                                  'diff')
    head += ''.join('  %*s ' % (width, m + ' diff') for m in rest)
    lines.append(head + '  band')
    previous = None
    for epoch in _rows_to_show(report, all_rows, max_rows):
        if previous is not None and shared.index(epoch) != shared.index(previous) + 1:
            lines.append('%5s' % '...')
        previous = epoch
        t = report.table.loc[epoch]
        mark = dict((m, ' ' if t[m + '_ok'] else '*') for m in report.metrics)
        row = '%5d  %*.*f %*.*f %+*.*f%s' % (epoch, width, d, t[first + '_run'], width, d,
                                             t[first + '_ref'], width, d, t[first + '_diff'],
                                             mark[first])
        row += ''.join('  %+*.*f%s' % (width, d, t[m + '_diff'], mark[m]) for m in rest)
        lines.append(row + '  ' + ('ok' if t['ok'] else 'OUT'))
    lines.append('')
    out = report.out_epochs
    if report.ok:
        lines.append('result:    INSIDE the band at all %d compared epochs' % len(shared))
    else:
        lines.append('result:    OUTSIDE the band at %d of %d compared epochs (%s); * marks the '
                     'values outside' % (len(out), len(shared), epoch_ranges(out)))
        for title, cell in (('first', report.first_out), ('worst', report.worst_out)):
            epoch, m = cell
            t = report.table.loc[epoch]
            lines.append('%s:     epoch %d, %s: run %.*f, reference %.*f, diff %+.*f, band %g'
                         % (title, epoch, m, d, t[m + '_run'], d, t[m + '_ref'], d,
                            t[m + '_diff'], report.tolerances[m]))
    differences = report.run_json_differences()
    if differences is None:
        lines.append('run.json:  none beside %s, so versions and settings cannot be checked' % (
            report.run.path if not report.run.run else report.ref.path))
    elif differences:
        lines.append('run.json:  the two differ in %d setting(s):' % len(differences))
        lines += ['             %s' % d_ for d_ in differences[:12]]
        if len(differences) > 12:
            lines.append('             ... and %d more' % (len(differences) - 12))
    else:
        lines.append('run.json:  same settings, versions and machine type')
    lines.append('next:')
    lines += ['  - %s' % h for h in _next_steps(report, differences)]
    return lines


def _short(path):
    """`path` relative to the working directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def _is_deterministic(history):
    run = history.run or {}
    return run.get('seed') is not None and bool((run.get('args') or {}).get('deterministic'))


def _next_steps(report, differences):
    plot_cmd = ('python tools/curves.py plot %s --reference %s -o compare.png'
                % (_short(report.run.rundir), _short(report.ref.rundir)))
    steps = []
    if report.ok:
        if report.notes and any('shorter' in n for n in report.notes):
            steps.append('only the shared epochs were checked: finish the run (python '
                         'allconvnet.py --resume DIR) to check the rest')
        steps.append('nothing to fix. To see both curves: %s' % plot_cmd)
        return steps
    differences = differences or []
    if any(d.startswith(('versions.', 'machine.')) for d in differences):
        steps.append('pins or hardware differ (see run.json above). If the new setup is '
                     'intended, judge whether a departure of this size is acceptable, and if '
                     'so make a new reference from it')
    if any(d.startswith(('args.', 'optimizer.', 'seed', 'towers')) for d in differences):
        steps.append('the two were trained with different settings (see run.json above): if '
                     'that is the change under test, this departure is its effect; if not, '
                     'rerun with the reference\'s flags (its run.json "argv")')
    for history, which in ((report.run, 'the run'), (report.ref, 'the reference')):
        if not _is_deterministic(history):
            steps.append('%s was not made with --seed N --deterministic, so noise alone moves its '
                         'curve: rerun both with the same --seed and --deterministic, or widen '
                         'the band (docs/curves.md: picking a tolerance)' % which)
    epoch, _ = report.first_out
    if np.isnan(report.table.filter(like='_run').values.astype(float)).any():
        steps.append('the run has NaN values: it diverged (see run.json "status")')
    if epoch == report.shared[0]:
        steps.append('it departs at the first compared epoch: suspect the set-up (data, '
                     'initialisation, optimizer, learning rate, model) rather than slow drift')
    else:
        steps.append('the curves agree up to epoch %d: look at what changes after it (learning '
                     'rate, divergence, data order)' % report.shared[report.shared.index(epoch) - 1])
    steps.append('see both: %s' % plot_cmd)
    return steps


# --- plot ------------------------------------------------------------------------------------

def plot(paths, out, reference=None, title=None):
    """Accuracy and loss against epoch for each run (solid: validation, dashed: train).

    `reference`, if given, is drawn thick and grey beneath the runs. Returns `out`. The file
    is written whole (temporary name, then rename), so a reader never sees half a PNG.
    """
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = [load_history(p) for p in paths]
    ref = load_history(reference) if reference is not None else None
    for history in runs + ([ref] if ref else []):
        if not set(history.frame.columns) & {'acc', 'val_acc', 'loss', 'val_loss'}:
            require_columns(history, ['val_acc'])
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    acc_ax, loss_ax = fig.subplots(1, 2)
    colours = ['C%d' % i for i in range(10)]
    handles = []

    def draw(history, colour, label, **style):
        frame = history.frame
        few = len(frame) <= 30  # a line through 3 points hides them; mark each epoch
        for ax, train, val in ((acc_ax, 'acc', 'val_acc'), (loss_ax, 'loss', 'val_loss')):
            for column, dash in ((val, '-'), (train, '--')):
                if column in frame.columns:
                    ax.plot(frame.index, frame[column], dash, color=colour,
                            marker='o' if few else None, markersize=3, **style)
        handles.append(Line2D([], [], color=colour, label=label, **style))

    if ref:
        draw(ref, 'black', 'reference: %s' % ref.label(), linewidth=4, alpha=0.35, zorder=1)
    for i, history in enumerate(runs):
        draw(history, colours[i % len(colours)], history.label(), linewidth=1.5, zorder=2)
    for ax, name in ((acc_ax, 'accuracy'), (loss_ax, 'loss')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(name)
        ax.set_title('%s (solid: validation, dashed: train)' % name, fontsize='medium')
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.legend(handles=handles, loc='upper center', bbox_to_anchor=(0.5, 0.0), fontsize='small',
               frameon=False)
    fig.tight_layout()
    fmt = os.path.splitext(out)[1].lstrip('.').lower() or 'png'
    tmp = out + '.tmp'
    fig.savefig(tmp, format=fmt, dpi=100, bbox_inches='tight')
    os.replace(tmp, out)
    return out


def plot_run(logdir):
    """Write logdir/curves.png from logdir/history.csv (what allconvnet.py calls after training)."""
    return plot([logdir], os.path.join(logdir, 'curves.png'))


# --- claim -----------------------------------------------------------------------------------

class Claim(object):
    """The outcome of claim(): verdict is 'pass', 'fail' or 'not enough epochs'."""

    def __init__(self, history, threshold, by_epoch, verdict, lines):
        self.history = history
        self.threshold = threshold
        self.by_epoch = by_epoch
        self.verdict = verdict
        self.lines = lines

    @property
    def exit_code(self):
        return {'pass': INSIDE, 'fail': OUTSIDE}.get(self.verdict, NOT_ENOUGH)

    def format(self):
        return '\n'.join(self.lines)


def _best(values):
    values = values.dropna()
    if values.empty:
        return None, None
    epoch = values.idxmax()  # the first epoch of equal bests
    return int(epoch), float(values[epoch])


def claim(path, threshold=CLAIM_THRESHOLD, by_epoch=CLAIM_EPOCH):
    """Check the blog's claim: val_acc above `threshold` at some epoch <= `by_epoch`.

    'pass' as soon as one epoch up to `by_epoch` is strictly above; 'fail' when the history
    reaches `by_epoch` without one; otherwise 'not enough epochs'.
    """
    history = load_history(path)
    require_columns(history, ['val_acc'])
    val = history.frame['val_acc'].astype(float)
    last = history.epochs[-1]
    within = val[val.index <= by_epoch]
    above = within[within > threshold]
    best_epoch, best = _best(val)
    lines = ['claim:  val_acc above %g by epoch %d (the blog\'s claim)' % (threshold, by_epoch),
             'run:    %s  [%s]' % (history.label(), history.path)]
    if not above.empty:
        verdict = 'pass'
        lines.append('result: PASS: val_acc %.4f at epoch %d, the first above %g'
                     % (above.iloc[0], above.index[0], threshold))
    elif last >= by_epoch:
        verdict = 'fail'
        in_epoch, in_best = _best(within)
        lines.append('result: FAIL: no epoch up to %d has val_acc above %g; the best by then is '
                     '%s' % (by_epoch, threshold, 'none (all NaN)' if in_epoch is None else
                             '%.4f at epoch %d' % (in_best, in_epoch)))
        later = val[(val.index > by_epoch) & (val > threshold)]
        if not later.empty:
            lines.append('        (it gets above %g later, at epoch %d: too late for the claim)'
                         % (threshold, later.index[0]))
    else:
        verdict = 'not enough epochs'
        lines.append('result: NOT ENOUGH EPOCHS: the history ends at epoch %d of the %d the claim '
                     'needs, and no epoch so far is above %g' % (last, by_epoch, threshold))
        status = (history.run or {}).get('status')
        if status == 'finished':
            lines.append('        the run finished after %d epochs: train with --epochs %d or '
                         'more to test the claim' % (last, by_epoch))
        elif status in ('interrupted', 'diverged', 'failed'):
            lines.append('        the run is %s: continue it with python allconvnet.py --resume %s'
                         % (status, _short(history.rundir)))
        elif status == 'running':
            lines.append('        the run is still training: check again later')
    lines.append('best:   %s (history: epochs %s)' % (
        'none (val_acc is NaN throughout)' if best_epoch is None else
        'val_acc %.4f at epoch %d' % (best, best_epoch), epoch_ranges(history.epochs)))
    lines += ['note:   %s' % n for n in history.notes]
    return Claim(history, threshold, by_epoch, verdict, lines)


# --- command line ----------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (`curves.py: error: ...`) and exit code 2."""

    def error(self, message):
        sys.stderr.write('%s: error: %s\n' % (self.prog, message))
        sys.exit(USAGE)


def _metric_list(text):
    if text == 'all':
        return text
    names = [m.strip() for m in text.split(',') if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise argparse.ArgumentTypeError('%r: give a comma-separated list of %s, or all'
                                         % (text, ', '.join(METRICS)))
    return names


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number' % text)
    if not value >= 0:
        raise argparse.ArgumentTypeError('must be 0 or more, got %s' % text)
    return value


def _metric_tolerance(text):
    metric, sep, value = text.partition('=')
    if not sep or metric not in METRICS:
        raise argparse.ArgumentTypeError('%r: write METRIC=BAND with METRIC one of %s, e.g. '
                                         'loss=0.05' % (text, ', '.join(METRICS)))
    return metric, _tolerance(value)


EPILOG = """\
exit codes:
  compare  0 inside the band at every shared epoch, 1 outside at one or more
  claim    0 pass, 1 fail, 3 not enough epochs yet
  all      2 bad usage or unusable input (missing file, missing column, empty file)

examples:
  python tools/curves.py compare logs/mine logs/reference/synthetic-tiny
  python tools/curves.py compare logs/mine REF --tol 0.03 --tol-metric loss=0.05
  python tools/curves.py compare logs/mine REF --metrics all --tol 1e-6
  python tools/curves.py plot logs/a logs/b --reference REF -o curves.png
  python tools/curves.py claim logs/mine
"""


def build_parser():
    p = Parser(prog='curves.py', formatter_class=argparse.RawDescriptionHelpFormatter,
               description=textwrap.fill('Regression-test accuracy curves of allconvnet.py '
                                         'runs. RUN and REF are history.csv files or the run '
                                         'directories holding them.', 79),
               epilog=EPILOG)
    sub = p.add_subparsers(dest='command', metavar='{compare,plot,claim}')
    sub.required = True

    c = sub.add_parser('compare', formatter_class=argparse.RawDescriptionHelpFormatter,
                       help='per-epoch differences from a reference, against a tolerance band',
                       description=textwrap.fill(
                           'Compare RUN with REFERENCE on the epochs both have. An epoch is '
                           'inside the band when |run - reference| <= band for every compared '
                           'metric. Exit 0 inside, 1 outside, 2 bad input.', 79),
                       epilog=EPILOG)
    c.add_argument('run', metavar='RUN')
    c.add_argument('reference', metavar='REFERENCE')
    c.add_argument('--metrics', type=_metric_list, default=['val_acc'], metavar='LIST',
                   help='comma-separated metrics to compare, from %s; or all (those of them '
                        'both files have). Default: val_acc' % ', '.join(METRICS))
    c.add_argument('--tol', type=_tolerance, default=DEFAULT_TOL, metavar='BAND',
                   help='absolute band for every compared metric without its own '
                        '(default %(default)s)')
    c.add_argument('--tol-metric', type=_metric_tolerance, action='append', default=[],
                   metavar='METRIC=BAND',
                   help='a band for one metric, which is then compared too; repeatable, '
                        'e.g. --tol-metric loss=0.05 --tol-metric acc=0.03')
    c.add_argument('--all-rows', action='store_true',
                   help='print every shared epoch (default: all up to 40, else the first and '
                        'last three and those outside the band)')

    pl = sub.add_parser('plot', help='accuracy and loss against epoch, runs overlaid',
                        description='Two panels, accuracy and loss against epoch: solid lines '
                                    'validation, dashed train, one colour per run labelled from '
                                    'its run.json; the reference thick and grey beneath.')
    pl.add_argument('runs', nargs='+', metavar='RUN')
    pl.add_argument('-o', '--out', default='curves.png',
                    help='image to write; the extension picks the format (default %(default)s)')
    pl.add_argument('--reference', metavar='REF', help='a reference drawn distinctly')
    pl.add_argument('--title', help='a title above both panels')

    cl = sub.add_parser('claim', help="the blog's claim: val_acc above 0.90 by epoch 350",
                        description="Check the blog's claim: val_acc above THRESHOLD (strictly) "
                                    'at some epoch up to BY_EPOCH. Exit 0 pass, 1 fail, 3 not '
                                    'enough epochs yet, 2 bad input.')
    cl.add_argument('run', metavar='RUN')
    cl.add_argument('--threshold', type=float, default=CLAIM_THRESHOLD,
                    help='default %(default)s')
    cl.add_argument('--by-epoch', type=int, default=CLAIM_EPOCH, help='default %(default)s')
    return p


def tolerances_from_args(args, run, ref):
    """metric -> band from --metrics, --tol and --tol-metric ('all' needs the loaded files)."""
    metrics = args.metrics
    if metrics == 'all':
        metrics = [m for m in METRICS if m in run.frame.columns and m in ref.frame.columns]
    tolerances = dict((m, args.tol) for m in metrics)
    tolerances.update(args.tol_metric)
    return tolerances


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'compare':
            run, ref = load_history(args.run), load_history(args.reference)
            report = compare(run, ref, tolerances_from_args(args, run, ref))
            print(report.format(all_rows=args.all_rows))
            return report.exit_code
        if args.command == 'plot':
            print('wrote %s' % plot(args.runs, args.out, reference=args.reference,
                                   title=args.title))
            return 0
        result = claim(args.run, args.threshold, args.by_epoch)
        print(result.format())
        return result.exit_code
    except CurvesError as e:
        sys.stderr.write('curves.py: error: %s\n' % e)
        return USAGE
    except OSError as e:
        sys.stderr.write('curves.py: error: %s\n' % e)
        return USAGE


if __name__ == '__main__':
    sys.exit(main())
