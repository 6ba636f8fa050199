"""Regression-test accuracy curves: compare with a reference or a reference set's band, plot,
check the blog's claim.

  python -m tools.curves compare logs/mine logs/reference/upstream-10k
  python -m tools.curves compare logs/mine logs/reference/synthetic-tiny --metrics all --tol 1e-6
  python -m tools.curves compare RUN REF [REF ...] [--metrics LIST] [--level 0.995]
                                 [--tol 0.03] [--tol-metric loss=0.05] [--all-rows]
  python -m tools.curves band SET [--metrics LIST] [--level 0.995]
  python -m tools.curves plot RUN [RUN ...] [--reference REF ...] [-o curves.png] [--title TEXT]
  python -m tools.curves claim RUN [--threshold 0.90] [--by-epoch 350]

Run from the repository root. RUN and REF are history.csv files (epoch, loss, acc, val_loss,
val_acc, lr, seconds; a row per finished epoch, from 1) or the run directories holding them
beside their run.json; a REF may also be a reference set, a folder of such run directories.
One reference is compared within an absolute tolerance (--tol); several, with the band their
runs span (docs/curves.md). load_history, load_references, band, compare and claim are
importable; runkit/plot.py draws.
"""
import argparse
import collections
import itertools
import math
import os
import sys

import numpy
import pandas

from runkit import records
from runkit.errors import Refused, exit_code, prepare
from runkit.files import read_json_object
from runkit.logdir import HISTORY, RUN_JSON
from runkit.argtypes import Parser, assignment, comma_list, non_negative_float
from runkit.plot import formats, label, plot

PROG = 'python -m tools.curves'
# Curve columns a comparison may use. `seconds` is wall time: never equal across reruns.
METRICS = ('val_acc', 'loss', 'acc', 'val_loss', 'lr')
DEFAULT_TOL, CLAIM_THRESHOLD, CLAIM_EPOCH = 0.02, 0.90, 350
# What a reference set is judged on unless --metrics says otherwise: the held-out curves.
SET_METRICS = ('val_acc', 'val_loss')
# The chance that one more healthy run lands inside the band, per epoch and metric. The
# upstream-10k set is judged at 5 epochs x 2 metrics, so a healthy run fails somewhere with
# probability at most 10 x 0.5% = 5% (Bonferroni; docs/curves.md).
LEVEL = 0.995
# A 10-class network starts at chance, val_acc 0.10, and some seeds of the upstream recipe stay
# there for epochs before they learn; how long is heavy-tailed, so a drawn band is aligned on
# the epoch each run leaves that plateau: the first its val_acc reaches this. The set's plateau
# values are 0.117 at most; 0.12-0.18 catch and miss the same changed runs (docs/curves.md).
PLATEAU_EXIT = 0.15
# A 10-class softmax that guesses scores a loss of ln 10 = 2.30. A run past twice that has
# blown up, which no healthy seed does: a band drawn through it would admit anything.
BLOWN_UP = 2 * math.log(10)
# CIFAR-10's image counts, and the run.json args that cut them: an accuracy measured on N
# images carries binomial noise sqrt(p(1-p)/N) besides the seed's.
IMAGES = {'val_acc': ('test_limit', 10000), 'acc': ('train_limit', 50000)}
INSIDE, OUTSIDE, USAGE, NOT_ENOUGH = 0, 1, 2, 3  # exit codes, explained in EXIT_CODES
# compare: the run never left the plateau that the references left, or it blew up, which a
# healthy seed of the set's configuration also does at times: neither says the code changed.
UNDECIDED = NOT_ENOUGH
# The fewest runs a set's band is drawn from. Drawn from every subset of upstream-10k's ten
# runs, the band catches the blog recipe's run in 9% of the subsets of 2, 23% of 3, 54% of
# 4, 83% of 5 and all of 6 or more (docs/curves.md): below 5 it passes nearly anything.
MIN_SET_RUNS = 5
# What a set's band judges: its runs must agree in these (run.json, settings()).
JUDGED_SETTINGS = ('recipe_name', 'args.recipe', 'args.train_limit', 'args.test_limit',
                   'args.epochs')
# A table longer than this hides the epochs nobody needs to read, or the verdict scrolls away.
MAX_ROWS = 40
# run.json args that say where and how loudly a run wrote, not what it trained.
NOT_TRAINING_ARGS = ('logdir', 'overwrite', 'quiet', 'resume')
# The runs of a set differ in these by design, so a run differing in them is no news.
ACROSS_SEEDS = ('seed', 'args.seed')


class CurvesError(Refused):
    """Unusable input; str() is the one-line message for the user (exit code 2)."""


class History:
    """One run's curves: `frame` indexed by epoch, `run` its run.json record or None."""

    def __init__(self, path, frame, run, notes):
        self.path, self.frame, self.run, self.notes = path, frame, run, notes
        self.epochs = [int(e) for e in frame.index]
        self.name = os.path.basename(os.path.dirname(os.path.abspath(path)))
        self.label = label(self.name, run)


def read_record(csv):
    """(the run.json beside `csv` as a dict or None, [a note when it is unusable])."""
    record = os.path.join(os.path.dirname(os.path.abspath(csv)), RUN_JSON)
    if not os.path.exists(record):
        return None, []
    try:
        return read_json_object(record), []
    except Refused as e:
        return None, ['%s: labels and checks go without it' % e]


def load_history(path):
    """Read a history.csv, or the one in run directory `path`, and the run.json beside it;
    CurvesError, naming the file, when it is missing, empty, not a CSV or not numeric."""
    csv = os.path.join(path, HISTORY) if os.path.isdir(path) else str(path)
    run, notes = read_record(csv)
    if not os.path.exists(csv):
        if not os.path.isdir(path):
            raise CurvesError('%s: no such file or directory' % path)
        if (run or {}).get('status'):
            raise CurvesError('%s has no history.csv: the run (status %s in its run.json) '
                              'finished no epoch' % (path, run['status']))
        raise CurvesError('%s is a directory without a history.csv: pass a run directory '
                          '(a --logdir), a history.csv file or a reference set (a folder of '
                          'run directories)' % path)
    try:
        frame = pandas.read_csv(csv)
    except OSError as e:
        raise CurvesError('cannot read %s (%s)' % (csv, e.strerror or e))
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


def runs_in(folder):
    """The run directories directly inside `folder` (those with a history.csv), by name."""
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise CurvesError('cannot read %s (%s)' % (folder, e.strerror or e))
    return sorted(os.path.join(folder, d) for d in names
                  if os.path.isfile(os.path.join(folder, d, HISTORY)))


def load_references(paths):
    """The Histories of `paths`, each a run directory, a history.csv or a reference set (a
    folder without a history.csv whose subfolders hold one), a set giving all its runs."""
    histories, seen = [], set()
    for path in paths:
        members = []
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, HISTORY)):
            members = runs_in(path)
        for history in [load_history(p) for p in members or [path]]:
            # The same run named twice (a set and one of its runs) would count twice.
            if os.path.realpath(history.path) not in seen:
                seen.add(os.path.realpath(history.path))
                histories.append(history)
    return histories


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


def band(values, level=LEVEL, images=None):
    """(centre, half-width) of the band that one more run of the references' configuration
    falls in with probability `level`, from the references' values of one metric at one epoch:
    the normal prediction interval mean +- t * s * sqrt(1 + 1/n), with s the values' standard
    deviation and t Student's quantile for n - 1 degrees of freedom. For an accuracy measured
    on `images` images, s^2 gains the binomial variance p(1 - p) / images. NaN without two
    finite values."""
    from scipy.special import stdtrit  # here: scipy.special loads in 0.2 s, scipy.stats in 1 s
    values = [v for v in values if math.isfinite(v)]
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    if images:
        p = min(max(mean, 0.), 1.)
        variance += p * (1 - p) / images
    return mean, float(stdtrit(n - 1, (1 + level) / 2)) * math.sqrt(variance * (1 + 1. / n))


def blow_up(history):
    """The first epoch whose loss or val_loss is above BLOWN_UP, or None; for a run whose
    run.json says it diverged (a NaN or infinite loss stopped it), the epoch it stopped in."""
    columns = [c for c in ('loss', 'val_loss') if c in history.frame.columns]
    above = history.frame[columns].gt(BLOWN_UP).any(axis=1)
    if above.any():
        return int(above.idxmax())
    if (history.run or {}).get('status') == 'diverged':
        return max(history.epochs, default=0) + 1
    return None


def before_blow_up(history):
    """`history` up to the epoch before it blew up: what a run of a set lends the band."""
    epoch = blow_up(history)
    if epoch is None:
        return history
    return History(history.path, history.frame.loc[:epoch - 1], history.run, history.notes + [
        '%s blew up at epoch %d (a loss above 2 ln 10 = %.2f): its epochs from %d on are left '
        'out of the band' % (history.name, epoch, BLOWN_UP, epoch)])


def image_count(refs, metric):
    """How many images the references measured `metric` on (from run.json), or None: a loss
    has no binomial noise, and without run.json the count is unknown."""
    if metric not in IMAGES or any(r.run is None for r in refs):
        return None
    arg, total = IMAGES[metric]
    return min(min((r.run.get('args') or {}).get(arg) or total, total) for r in refs)


def left_plateau(history):
    """The epoch, fractional, at which `history`'s val_acc first reaches PLATEAU_EXIT: linear
    between that epoch and the one before. A run off the plateau at its first row left it at
    a time the history does not show, and is taken to have left by epoch 1, as most runs do
    (a history may start later than epoch 1). inf when it never does, or has no val_acc."""
    if 'val_acc' not in history.frame.columns:
        return math.inf
    acc = history.frame['val_acc'].dropna()
    above = acc.index[acc >= PLATEAU_EXIT]
    if not len(above):
        return math.inf
    before = acc.loc[:above[0] - 1]
    if before.empty:
        return float(min(above[0], 1))
    e0, v0, e1, v1 = before.index[-1], before.iloc[-1], above[0], acc.loc[above[0]]
    return float(e0 + (PLATEAU_EXIT - v0) / (v1 - v0) * (e1 - e0))


def alignment(delay, refs):
    """(`delay`, each reference's left_plateau()): what a drawn band aligns on, for a run that
    left the plateau at epoch `delay`; None when fewer than two references leave it, so that
    there is nothing to align and the band is drawn epoch by epoch."""
    theirs = [left_plateau(r) for r in refs]
    return (delay, theirs) if sum(map(math.isfinite, theirs)) >= 2 else None


def set_alignment(refs, delay=None):
    """alignment() for a run that left the plateau at epoch `delay`, by default (and for one
    that never did) at epoch 1, as most do: what a set's band is drawn for on its own."""
    return alignment(1. if delay is None or math.isinf(delay) else delay, refs)


def run_alignment(run, refs, shared):
    """The alignment() a drawn band judges `run` by over the epochs `shared`, or None: none
    without val_acc, and none when its val_acc is NaN before it left the plateau, since a NaN
    is no plateau: judged epoch by epoch, no band admits it."""
    if 'val_acc' not in run.frame.columns:
        return None
    shift = alignment(left_plateau(run), refs)
    if shift is not None and run.frame.loc[[e for e in shared if e < shift[0]],
                                           'val_acc'].isnull().any():
        return None
    return shift


def unjudged_note(table):
    """'epochs E are not judged: why', for a table with some epochs judged and some not."""
    unbanded = ~table['judged'] & ~table['plateau']
    reasons = [text for rows, text in (
        (table['plateau'], 'the run had not left the plateau'),
        (unbanded, 'fewer than two references reach as many epochs past the plateau as the run'))
        if rows.any()]
    return 'epochs %s are not judged: %s' % (epoch_ranges(table.index[~table['judged']]),
                                             '; '.join(reasons))


def reference_values(refs, metric, epochs, shift=None):
    """DataFrame over `epochs`, a column per reference, of its `metric`: at the same epoch, or
    with `shift` = alignment(run's delay, refs) as many epochs after it left the plateau as
    the run is at each of `epochs`, interpolated linearly between its epochs; NaN where that
    is before the plateau's end or after the reference's last epoch."""
    if shift is None:
        return pandas.DataFrame({i: r.frame[metric] for i, r in enumerate(refs)}).reindex(epochs)
    mine, theirs = shift
    columns = {}
    for i, (ref, delay) in enumerate(zip(refs, theirs)):
        curve = ref.frame[metric].dropna()
        times = [delay + e - mine for e in epochs]
        columns[i] = [float(numpy.interp(t, curve.index, curve.values))
                      if len(curve) and max(delay, curve.index[0]) <= t <= curve.index[-1]
                      else math.nan for t in times]
    return pandas.DataFrame(columns, index=epochs)


def bands(refs, metric, epochs, tol=None, level=LEVEL, shift=None):
    """(centre, half-width), Series over `epochs`: the references' range widened by `tol` on
    each side (one reference: its value +- tol), or with `tol` None the band() of their runs,
    aligned on the plateau's end by `shift` (reference_values)."""
    values = reference_values(refs, metric, epochs, shift if tol is None else None)
    if tol is not None:
        low, high = values.min(axis=1), values.max(axis=1)
        return (low + high) / 2, (high - low) / 2 + tol
    images = image_count(refs, metric)
    pairs = [band(values.loc[e].tolist(), level, images) for e in epochs]
    return (pandas.Series([p[0] for p in pairs], index=epochs),
            pandas.Series([p[1] for p in pairs], index=epochs))


def settings(run):
    """run.json flattened to {'optimizer.config.lr': 0.01, ...} over what shapes a curve."""
    def without(key, *names):
        return {k: v for k, v in (run.get(key) or {}).items() if k not in names}
    shaping = {'args': without('args', *NOT_TRAINING_ARGS), 'versions': without('versions'),
               'machine': without('machine', 'platform'), 'optimizer': without('optimizer', 'note')}
    shaping.update((k, run[k]) for k in ('seed', 'towers', 'git_commit', 'tf_build', 'xla',
                                         'devices', 'recipe_name', 'recipe') if k in run)
    return pandas.json_normalize(shaping).iloc[0].to_dict()


def differences(run, refs):
    """(lines 'setting: run's vs the references'' where the run differs from references that
    agree, lines for the settings the references differ in among themselves), or (None, [])
    when a run.json is missing. A set's runs differ in their seed by design: not listed."""
    if run.run is None or any(r.run is None for r in refs):
        return None, []
    mine, theirs = settings(run.run), [settings(r.run) for r in refs]
    skip = ACROSS_SEEDS if len(refs) > 1 else ()
    differ, varies = [], []
    # Top-level settings (the recipe, the build) first: a long list is cut after 12.
    for key in sorted(set(mine).union(*theirs) - set(skip), key=lambda k: (k.count('.'), k)):
        groups = collections.OrderedDict()
        for ref, values in zip(refs, theirs):
            groups.setdefault(repr(values.get(key)), (values.get(key, '-'), []))[1].append(ref.name)
        if len(groups) > 1:
            varies.append('%s: run %s; references %s' % (key, mine.get(key, '-'), ', '.join(
                '%s (%s)' % (value, ' '.join(names)) for value, names in groups.values())))
        elif mine.get(key) != theirs[0].get(key):
            differ.append('%s: %s vs %s' % (key, mine.get(key, '-'), theirs[0].get(key, '-')))
    return differ, varies


class Report:
    """The outcome of compare(): `table` has, per shared epoch, <metric>_run, _centre, _half,
    _diff (run - centre) and _ok for every compared metric, ok, plateau (the run had not left
    it: not judged) and judged; first_out and worst_out are (epoch, metric) or None. `ref` is
    the reference when there is one, else None; `shift` the alignment() or None. A run that
    never left the plateau the references left is `undecided`, neither ok nor outside."""

    def __init__(self, run, refs, tolerances, level, table, notes, shift=None):
        self.run, self.refs, self.tolerances, self.level = run, refs, tolerances, level
        self.ref = refs[0] if len(refs) == 1 else None
        self.table, self.notes, self.shared = table, notes, [int(e) for e in table.index]
        self.shift = shift
        self.out_epochs = [int(e) for e in table.index[~table['ok']]]
        self.plateau = [int(e) for e in table.index[table['plateau']]]
        self.judged = [int(e) for e in table.index[table['judged']]]
        self.unbanded = sorted(set(self.shared) - set(self.plateau) - set(self.judged))
        self.undecided = shift is not None and not self.judged
        # A blow-up is its own outcome: a healthy seed does it too (docs/curves.md).
        self.blew_up = blow_up(run)
        self.ok = not self.out_epochs and not self.undecided and self.blew_up is None
        self.exit_code = (UNDECIDED if self.undecided or self.blew_up is not None else
                          INSIDE if self.ok else OUTSIDE)
        cells = [(e, m) for e in self.out_epochs for m in tolerances if not table.at[e, m + '_ok']]
        # max() keeps the first of equals, so ties go to the earliest epoch.
        self.worst_out = max(cells, key=self.excess, default=None)
        self.first_out = max([c for c in cells if c[0] == cells[0][0]], key=self.excess,
                             default=None)
        self.differences, self.varies = differences(run, refs)

    def excess(self, cell):
        """(half-widths the run lies from the band's centre, that distance, which breaks ties
        when a band has width 0); NaN on one side only counts as infinite."""
        diff = abs(self.table.at[cell[0], cell[1] + '_diff'])
        half = self.table.at[cell[0], cell[1] + '_half']
        if math.isnan(diff):
            return math.inf, math.inf
        return (diff / half if half > 0 else math.inf), diff


def as_history(history):
    return history if isinstance(history, History) else load_history(history)


def check_bands(tolerances, refs, level):
    wrong = {m: t for m, t in tolerances.items()
             if m not in METRICS or not (t is None or t >= 0)}
    if wrong:
        raise CurvesError('cannot compare %r: metrics are %s, bands 0 or more'
                          % (wrong, ', '.join(METRICS)))
    if None in tolerances.values() and len(refs) < MIN_SET_RUNS:
        raise CurvesError('a band needs %d or more reference runs besides the run itself, not '
                          '%d: fewer pass nearly any run (docs/curves.md); pass a larger set, '
                          'or a --tol' % (MIN_SET_RUNS, len(refs)))
    if None in tolerances.values() and all(r.run is not None for r in refs):
        theirs = [settings(r.run) for r in refs]
        for key in sorted(set().union(*theirs)):
            if (key in JUDGED_SETTINGS or key.startswith('recipe.')) and len(
                    {repr(t.get(key)) for t in theirs}) > 1:
                raise CurvesError('the reference runs differ in %s (%s): a band is drawn from '
                                  'runs of one configuration that differ only in their seed'
                                  % (key, ', '.join(sorted({str(t.get(key)) for t in theirs}))))
    if not 0 <= level < 1:
        raise CurvesError('level %g: the chance of a healthy run inside the band is 0 or more '
                          'and below 1' % level)


def shared_epochs(run, refs, need):
    """The run's epochs that `need` or more references have, and notes on the others."""
    counts = collections.Counter(e for r in refs for e in r.epochs)
    covered = sorted(e for e, c in counts.items() if c >= need)
    shared = sorted(set(run.epochs) & set(covered))
    word = 'reference' if len(refs) == 1 else 'references'
    if not shared:
        raise CurvesError('%s (epochs %s) and %s (epochs %s%s) share no epoch' % (
            run.path, epoch_ranges(run.epochs), refs[0].path if len(refs) == 1 else
            '%d references' % len(refs), epoch_ranges(covered),
            '' if need == 1 else ', those with %d or more runs' % need))
    notes = []
    if set(counts) - set(shared):
        notes.append('the run is shorter than the %s: reference epochs %s are not compared'
                     % (word, epoch_ranges(set(counts) - set(shared))))
    if set(run.epochs) - set(shared):
        notes.append('the run is longer than the %s: run epochs %s have no %s and are not '
                     'compared' % (word, epoch_ranges(set(run.epochs) - set(shared)),
                                   'reference' if need == 1 else 'band (under %d runs)' % need))
    return shared, notes


def band_references(run, refs, tolerances):
    """(the references a band is drawn from, notes): without the run itself, and for a drawn
    band without the epochs where a reference had blown up."""
    notes = []
    if len(refs) > 1 and any(os.path.realpath(r.path) == os.path.realpath(run.path) for r in refs):
        refs = [r for r in refs if os.path.realpath(r.path) != os.path.realpath(run.path)]
        notes.append('the run is one of the references: it is left out of the band')
    if (tolerances is None and len(refs) > 1) or None in (tolerances or {}).values():
        refs = [before_blow_up(r) for r in refs]
    if blow_up(run) is not None:
        notes.append('the run blew up at epoch %d: a loss above 2 ln 10 = %.2f'
                     % (blow_up(run), BLOWN_UP))
    return refs, run.notes + [n for r in refs for n in r.notes] + notes


def compare(run, refs, tolerances=None, level=LEVEL):
    """A Report on `run` against `refs`, one reference or a list of them (paths or History),
    over the epochs they share. `tolerances` maps each compared metric to an absolute band
    around the references' range (the value itself, for one reference), or to None for the
    band() of several; default {'val_acc': 0.02} for one reference, SET_METRICS with None for
    several. An epoch is inside when every metric is. Raises CurvesError on bad input."""
    run = as_history(run)
    refs = [as_history(r) for r in (refs if isinstance(refs, (list, tuple)) else [refs])]
    refs, notes = band_references(run, refs, tolerances)
    if tolerances is None:
        tolerances = dict.fromkeys(SET_METRICS) if len(refs) > 1 else {'val_acc': DEFAULT_TOL}
    tolerances = dict(tolerances)
    check_bands(tolerances, refs, level)
    for history in [run] + refs:
        require_columns(history, tolerances)
    shared, more = shared_epochs(run, refs, 2 if None in tolerances.values() else 1)
    shift = run_alignment(run, refs, shared) if None in tolerances.values() else None
    table = pandas.DataFrame({'ok': True}, index=pandas.Index(shared, name='epoch'))
    # Before the run leaves the plateau there is nothing to judge but whether it leaves at all.
    table['plateau'] = [shift is not None and e < shift[0] for e in shared]
    table['judged'] = ~table['plateau']
    for metric, tol in tolerances.items():
        a = run.frame.loc[shared, metric]
        centre, half = bands(refs, metric, shared, tol, level, shift)
        if tol is None and shift is not None:
            # Fewer than two references reach as far past the plateau as the run: no band.
            table['judged'] &= centre.notnull()
        # The slack absorbs float noise in the subtraction, so a band of 0.02 admits 0.13 - 0.11.
        inside = ((a - centre).abs() <= half * (1 + 1e-9) + 1e-15) | (a.isnull() & centre.isnull())
        table[metric + '_run'], table[metric + '_centre'] = a, centre
        table[metric + '_half'], table[metric + '_diff'] = half, a - centre
        table[metric + '_ok'] = inside
    for metric in tolerances:
        table[metric + '_ok'] |= ~table['judged']
        table['ok'] &= table[metric + '_ok']
    if table['judged'].any() and not table['judged'].all():
        more.append(unjudged_note(table))
    return Report(run, refs, tolerances, level, table, notes + more, shift)


def set_folder(refs):
    """The folder the references' run directories share, as the user named it if possible."""
    folders = [os.path.dirname(os.path.dirname(r.path) if r.path.endswith(HISTORY)
                               else r.path) for r in refs]
    try:
        return os.path.commonpath(folders) or os.curdir
    except ValueError:  # some relative, some absolute
        return os.path.commonpath([os.path.abspath(f) for f in folders])


def band_text(report):
    """The band line(s) of the report: how each metric is judged."""
    if report.ref is not None:
        return ['band:      |run - reference| <= %s (absolute)' % ', '.join(
            '%g for %s' % (t, m) for m, t in report.tolerances.items())]
    drawn = [m for m, t in report.tolerances.items() if t is None]
    lines = ['band:      the references\' range widened by %g for %s' % (t, m)
             for m, t in report.tolerances.items() if t is not None]
    if drawn:
        images = ['%s with the binomial noise of %d images' % (m, image_count(report.refs, m))
                  for m in drawn if image_count(report.refs, m)]
        lines.insert(0, 'band:      %s: mean +- t * s * sqrt(1 + 1/n) of the %d references at '
                        'each epoch, where one more run of their configuration lands with '
                        'probability %g (Student\'s t, %d degrees of freedom; s of %s; '
                        'docs/curves.md)' % (', '.join(drawn), len(report.refs), report.level,
                                             len(report.refs) - 1,
                                             '; '.join(images) or 'the runs'))
    if report.shift is not None:
        lines.append(plateau_text(report.shift))
    return lines


def plateau_text(shift):
    mine, theirs = shift
    left = sorted(t for t in theirs if math.isfinite(t))
    return ('aligned:   on the epoch each run left the chance plateau (val_acc reached %g): the '
            'run %s, the references at %.2f-%.2f%s; the run\'s epoch E is judged against the '
            'references E - %s epochs after theirs, interpolated between epochs' % (
                PLATEAU_EXIT, 'at %.2f' % mine if math.isfinite(mine) else 'never',
                left[0], left[-1], '' if len(left) == len(theirs) else
                ' (%d never)' % (len(theirs) - len(left)),
                '%.2f' % mine if math.isfinite(mine) else 'D'))


def header(report):
    shared = report.shared
    if report.ref is not None:
        names = 'reference: %s  [%s]' % (report.ref.label, report.ref.path)
    else:
        names = 'references: %d runs, %s  [%s]' % (
            len(report.refs), ', '.join(r.name for r in report.refs), set_folder(report.refs))
    lines = ['run:       %s  [%s]' % (report.run.label, report.run.path), names]
    lines += band_text(report)
    lines.append('epochs:    compared on %s (%d shared); the run has %s, the %s %s' % (
        epoch_ranges(shared), len(shared), epoch_ranges(report.run.epochs),
        'reference' if report.ref is not None else 'references',
        epoch_ranges(set(e for r in report.refs for e in r.epochs))))
    return lines + ['note:      %s' % n for n in report.notes]


def shown_rows(report, all_rows):
    """The epochs the table prints: all, or for long histories the ends and those outside."""
    shared = report.shared
    if all_rows or len(shared) <= MAX_ROWS:
        return shared
    cells = [c[0] for c in (report.first_out, report.worst_out) if c]
    return sorted(set(shared[:3] + shared[-3:] + report.out_epochs[:10] + cells))


def single_table(report, rows, digits):
    """One reference: its value and the difference, per epoch; further metrics only their
    difference, to keep the table narrow (their values are in the files)."""
    table = report.table
    first = list(report.tolerances)[0]
    show = table.loc[rows, [first + '_run', first + '_centre']].applymap(
        lambda v: '%.*f' % (digits, v))
    show.columns = ['run ' + first, 'ref ' + first]
    for m in report.tolerances:
        diff = table.loc[rows, m + '_diff'].map(lambda v: '%+.*f' % (digits, v))
        show['diff' if m == first else m + ' diff'] = diff + table.loc[rows, m + '_ok'].map(
            {True: ' ', False: '*'})
    return show


def band_table(report, rows, digits):
    """Several references: per epoch and metric, the run's value and the band, low-high."""
    table, show = report.table, pandas.DataFrame(index=pandas.Index(rows, name='epoch'))
    for m in report.tolerances:
        low = table.loc[rows, m + '_centre'] - table.loc[rows, m + '_half']
        high = table.loc[rows, m + '_centre'] + table.loc[rows, m + '_half']
        show[m] = table.loc[rows, m + '_run'].map(lambda v: '%.*f' % (digits, v)) + \
            table.loc[rows, m + '_ok'].map({True: ' ', False: '*'})
        show[m + ' band'] = ['%.*f-%.*f' % (digits, a, digits, b) if judged else '-'
                             for a, b, judged in zip(low, high, table.loc[rows, 'judged'])]
    return show


def table_lines(report, rows, digits):
    show = (single_table if report.ref is not None else band_table)(report, rows, digits)
    table = report.table.loc[rows]
    show['band'] = ['plateau' if p else 'no band' if not j else 'ok' if ok else 'OUT'
                    for p, j, ok in zip(table['plateau'], table['judged'], table['ok'])]
    show = show.reset_index().astype(str)
    widths = [max([len(c)] + [len(v) for v in show[c]]) for c in show.columns]
    text = [' '.join(str(v).rjust(w + 1) for v, w in zip(row, widths))
            for row in [list(show.columns)] + show.values.tolist()]
    lines, shared = [text[0]], report.shared
    for previous, epoch, line in zip([None] + rows, rows, text[1:]):
        if previous is not None and shared.index(epoch) != shared.index(previous) + 1:
            lines.append('  ...')
        lines.append(line)
    return lines


def cell_text(report, cell, digits):
    """'epoch E, METRIC: run V, ...' for a cell outside the band."""
    epoch, m = cell
    t = report.table.loc[epoch]
    if report.ref is not None:
        return 'epoch %d, %s: run %.*f, reference %.*f, diff %+.*f, band %g' % (
            epoch, m, digits, t[m + '_run'], digits, t[m + '_centre'], digits, t[m + '_diff'],
            report.tolerances[m])
    low, high = t[m + '_centre'] - t[m + '_half'], t[m + '_centre'] + t[m + '_half']
    beyond = t[m + '_run'] - high if t[m + '_diff'] > 0 else low - t[m + '_run']
    return 'epoch %d, %s: run %.*f, band %.*f-%.*f, %.*f %s it' % (
        epoch, m, digits, t[m + '_run'], digits, low, digits, high, digits, abs(beyond),
        'above' if t[m + '_diff'] > 0 else 'below')


def undecided_text(report):
    mine, theirs = report.shift
    last = report.shared[-1]
    left = sorted(t for t in theirs if t <= last)
    if math.isfinite(mine):
        return ('result:    UNDECIDED: no epoch is judged: the run left the plateau at %.2f, and '
                'fewer than two references reach as many epochs past it' % mine)
    return ('result:    UNDECIDED: the run has not left the chance plateau (val_acc below %g) by '
            'its last shared epoch, %d; %d of the %d references had left it by then, the latest '
            'at epoch %.2f. A healthy seed may stay there longer than they did: train once more '
            'with another seed; a second run that stays at chance points at the machine' % (
                PLATEAU_EXIT, last, len(left), len(theirs), left[-1] if left else math.nan))


def verdict_lines(report, digits):
    shared = report.judged
    if report.blew_up is not None:
        return ['result:    BLEW UP at epoch %d (a loss above 2 ln 10 = %.2f, worse than '
                'guessing): a healthy seed of the set\'s configuration does this at times '
                '(docs/curves.md gives the rate), so this run says nothing of the code: train '
                'once more with another seed (the self-check does so by itself)'
                % (report.blew_up, BLOWN_UP)]
    if report.undecided:
        return [undecided_text(report)]
    if report.ok:
        where = ('the one compared epoch' if len(shared) == 1 else
                 'all %d compared epochs' % len(shared))
        return ['result:    INSIDE the band at ' + where]
    lines = ['result:    OUTSIDE the band at %d of %d compared epochs (%s); * marks the '
             'values outside' % (len(report.out_epochs), len(shared),
                                 epoch_ranges(report.out_epochs))]
    for title, cell in (('first', report.first_out), ('worst', report.worst_out)):
        lines.append('%s:     %s' % (title, cell_text(report, cell, digits)))
    return lines


def record_lines(report):
    """The run.json settings that differ, and those the references differ in themselves."""
    diffs, versus = report.differences, 'the two differ' if report.ref else \
        'the run differs from the references'
    if diffs is None:
        missing = next(h for h in [report.run] + report.refs if h.run is None)
        return ['run.json:  none beside %s, so versions and settings cannot be checked'
                % missing.path]
    lines = ['run.json:  %s in %d setting(s):' % (versus, len(diffs)) if diffs else
             'run.json:  same settings, versions and machine type' +
             ('' if report.ref else " as the references' (their seeds aside)")]
    lines += ['             %s' % d for d in diffs[:12] + (
        ['... and %d more' % (len(diffs) - 12)] if len(diffs) > 12 else [])]
    if report.varies:
        lines.append('           the references differ among themselves in %d (not judged):'
                     % len(report.varies))
        lines += ['             %s' % v for v in report.varies]
    return lines


def format_report(report, all_rows=False):
    """What `compare` prints: the runs, the band, the per-epoch table, the verdict, run.json."""
    fixed = [t for t in report.tolerances.values() if t]
    # An absolute band of 1e-6 needs its digits; a drawn band does with four.
    digits = int(min(10, max(4, math.ceil(-math.log10(min(fixed))) + 2))) if fixed else 4
    rows = shown_rows(report, all_rows)
    return '\n'.join(header(report) + [''] + table_lines(report, rows, digits) + [''] +
                     verdict_lines(report, digits) + record_lines(report))


def band_frames(refs, metrics, level=LEVEL, delay=None):
    """{metric: DataFrame by epoch of the references' mean, low and high of the band, min and
    max}, for the metrics every reference has, over the epochs two or more of them have: the
    band of a run that left the plateau at epoch `delay`, by default at its first, as most do
    (none before it)."""
    refs = [before_blow_up(r) for r in refs]
    counts = collections.Counter(e for r in refs for e in r.epochs)
    epochs = sorted(e for e, c in counts.items() if c >= 2)
    frames = {}
    if not epochs:
        return frames
    shift = set_alignment(refs, delay)
    for m in [m for m in metrics if all(m in r.frame.columns for r in refs)]:
        centre, half = bands(refs, m, epochs, None, level, shift)
        values = reference_values(refs, m, epochs, shift)
        frame = pandas.DataFrame({'mean': centre, 'low': centre - half, 'high': centre + half,
                                  'min': values.min(axis=1), 'max': values.max(axis=1)})
        frames[m] = frame.dropna(subset=['mean'])
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
        delays = shift[1]
        lines.append('for a run that left the chance plateau (val_acc %g) by its first epoch, as '
                     '%d of these did; the others left at %s (docs/curves.md)' % (
                         PLATEAU_EXIT, sum(d <= 1 for d in delays), ', '.join(
                             '%.2f' % d for d in sorted(delays) if d > 1) or '-'))
    lines += ['',
        '| epoch | ' + ' | '.join('%s mean | %s runs min-max | %s band' % (m, m, m)
                                 for m in frames) + ' |',
        '|---|' + '---|---|---|' * len(frames)]
    for e in next(iter(frames.values())).index:
        lines.append('| %d | ' % e + ' | '.join(
            '%.4f | %.4f-%.4f | %.4f-%.4f' % tuple(f.loc[e, c] for c in
                                                    ('mean', 'min', 'max', 'low', 'high'))
            for f in frames.values()) + ' |')
    for m, f in frames.items():
        half = f['high'] - f['mean']
        lines.append('%s: a run is outside once it is more than %.4f (epoch %d) to %.4f (epoch '
                     '%d) from the mean' % (m, half.min(), half.idxmin(), half.max(),
                                           half.idxmax()))
    return '\n'.join(lines)


def band_curves(refs, level=LEVEL, delay=None):
    """What plot() draws for a reference set: (label, {column: DataFrame of low, high, min,
    max by epoch}) for the validation curves, aligned for a run that left the plateau at
    epoch `delay` (band_frames)."""
    name = os.path.basename(os.path.abspath(set_folder(refs)))
    frames = band_frames(refs, SET_METRICS, level, delay)
    # An accuracy outside [0, 1] cannot happen, so the drawing stops there; a loss below 0 too.
    for column, frame in frames.items():
        frame['low'] = frame['low'].clip(lower=0)
        if column.endswith('acc'):
            frame['high'] = frame['high'].clip(upper=1)
    shift = set_alignment(refs, delay)
    aligned = ', aligned on leaving the plateau at epoch %.2f' % shift[0] if shift else ''
    return ('%s: %d runs, band at level %g%s, darker: their range' % (
        name, len(refs), level, aligned), frames)


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


def level_arg(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number' % text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError('must be 0 or more and below 1, got %s' % text)
    return value


EXIT_CODES = """exit codes:
  judge    0 the runs together are inside, 1 outside (by --statistic)
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
                       help='per-epoch differences from a reference, or a reference set\'s band')
    c.add_argument('run', metavar='RUN')
    c.add_argument('reference', metavar='REFERENCE', nargs='+',
                   help='a run, several, or a reference set (a folder of runs)')
    c.add_argument('--metrics', type=comma_list(METRICS + ('all',)), default=None,
                   metavar='LIST', help='comma-separated, from %s; all: those every file has '
                   '(default: val_acc for one reference, %s for several)'
                   % (', '.join(METRICS), ','.join(SET_METRICS)))
    c.add_argument('--level', type=level_arg, default=LEVEL, metavar='P',
                   help='several references: the chance that a healthy run lands inside the '
                        'band, per epoch and metric (default %(default)s)')
    c.add_argument('--tol', type=non_negative_float, default=None, metavar='BAND',
                   help='absolute band of every metric without its own, around the '
                        "reference's value or the references' range (default for one "
                        'reference: %g)' % DEFAULT_TOL)
    c.add_argument('--tol-metric', type=assignment(non_negative_float, METRICS), action='append',
                   default=[], metavar='METRIC=BAND', help='also compare METRIC; repeatable')
    c.add_argument('--all-rows', action='store_true', help='print every shared epoch (default: '
                   'over %d, the first and last three and those outside the band)' % MAX_ROWS)
    j = sub.add_parser('judge', epilog=EXIT_CODES, formatter_class=p.formatter_class,
                       help='several runs of one changed configuration judged together against '
                            'a reference set (tools/multirun.py)')
    j.add_argument('reference', metavar='SET')
    j.add_argument('runs', metavar='RUN', nargs='+')
    j.add_argument('--statistic', choices=('per-epoch', 'whole-curve'), default='per-epoch',
                   help='what decides the exit code (default %(default)s; the report shows '
                        'both, docs/curves.md their power)')
    b = sub.add_parser('band', help="a reference set's band per epoch, as a Markdown table")
    b.add_argument('reference', metavar='REFERENCE', nargs='+')
    b.add_argument('--metrics', type=comma_list(METRICS), default=list(SET_METRICS),
                   metavar='LIST', help='default: %s' % ','.join(SET_METRICS))
    b.add_argument('--level', type=level_arg, default=LEVEL, metavar='P',
                   help='default %(default)s')
    pl = sub.add_parser('plot', help='accuracy and loss against epoch, the reference beneath')
    pl.add_argument('runs', nargs='+', metavar='RUN')
    pl.add_argument('-o', '--out', default='curves.png',
                    help='the image (.png, .svg, .pdf, ...; default %(default)s)')
    pl.add_argument('--reference', metavar='REF', action='append',
                    help='a run drawn beneath, or a reference set drawn as its band; repeatable')
    pl.add_argument('--level', type=level_arg, default=LEVEL, metavar='P',
                    help="the band's level (default %(default)s)")
    pl.add_argument('--title', help='a title above both panels')
    cl = sub.add_parser('claim', help="the blog's claim: val_acc above THRESHOLD by BY_EPOCH")
    cl.add_argument('run', metavar='RUN')
    cl.add_argument('--threshold', type=float, default=CLAIM_THRESHOLD, help='default %(default)s')
    cl.add_argument('--by-epoch', type=int, default=CLAIM_EPOCH, help='default %(default)s')
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
        # It builds on this module, imported anew there under its own name: paths, not Histories.
        from tools import multirun
        result = multirun.judge(args.runs, [args.reference])
        print(multirun.format_judgement(result))
        inside = result['per_epoch' if args.statistic == 'per-epoch' else 'whole_curve'][1]
        return INSIDE if inside else OUTSIDE
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
            lines.append('        the run is %s: continue it with %s' % (status, records.command(
                ['--resume', os.path.dirname(history.path) or os.curdir])))
    lines.append('best:   %s (history: epochs %s)' % (
        best(val) or 'none (val_acc is NaN throughout)', epoch_ranges(history.epochs)))
    lines += ['note:   %s' % n for n in history.notes]
    code = {'pass': INSIDE, 'fail': OUTSIDE}.get(verdict, NOT_ENOUGH)
    return Claim(verdict, code, '\n'.join(lines))


if __name__ == '__main__':
    prepare(PROG, tensorflow=False)
    sys.exit(exit_code(main, PROG))
