"""A run judged against one reference or a reference set's band, and the report that
`python -m tools.curves compare` prints: the table per epoch, the verdict, run.json's
differences."""
import collections
import math
import os

import pandas

from runkit.logdir import HISTORY
from tools.band import (BLOWN_UP, LEVEL, MIN_SET_RUNS, PLATEAU_EXIT, SET_METRICS, bands,
                        before_blow_up, blow_up, image_count, run_alignment)
from tools.runs import CurvesError, as_history, epoch_ranges, require_columns

# One reference: the band of val_acc around it, unless --tol says otherwise.
DEFAULT_TOL = 0.02
# Exit codes (curves.EXIT_CODES). UNDECIDED: the run never left the plateau that the references
# left, or it blew up, which a healthy seed also does at times: neither says the code changed.
INSIDE, OUTSIDE, USAGE, NOT_ENOUGH = 0, 1, 2, 3
UNDECIDED = NOT_ENOUGH
# What a set's band judges: its runs must agree in these (run.json, settings()).
JUDGED_SETTINGS = ('recipe_name', 'args.recipe', 'args.train_limit', 'args.test_limit',
                   'args.epochs')
# A table longer than this hides the epochs nobody needs to read, or the verdict scrolls away.
MAX_ROWS = 40
# run.json args that say where and how loudly a run wrote, not what it trained.
NOT_TRAINING_ARGS = ('logdir', 'overwrite', 'quiet', 'resume')
# The runs of a set differ in these by design, so a run differing in them is no news.
ACROSS_SEEDS = ('seed', 'args.seed')


def unjudged_note(table):
    """'epochs E are not judged: why', for a table with some epochs judged and some not."""
    unbanded = ~table['judged'] & ~table['plateau']
    reasons = [text for rows, text in (
        (table['plateau'], 'the run had not left the plateau'),
        (unbanded, 'fewer than two references reach as many epochs past the plateau as the run'))
        if rows.any()]
    return 'epochs %s are not judged: %s' % (epoch_ranges(table.index[~table['judged']]),
                                             '; '.join(reasons))


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
    """compare()'s outcome. `table` has, per shared epoch, <metric>_run, _centre, _half, _diff
    (run - centre) and _ok for each metric, ok, plateau (not left yet: not judged) and judged;
    first_out and worst_out are (epoch, metric) or None; `ref` the one reference or None,
    `shift` the alignment or None. A run that never left the plateau the references left is
    `undecided`, and one that blew up `blew_up`: neither ok nor outside."""

    def __init__(self, run, refs, tolerances, level, table, notes, shift=None):
        self.run, self.refs, self.tolerances, self.level = run, refs, tolerances, level
        self.ref = refs[0] if len(refs) == 1 else None
        self.table, self.notes, self.shared = table, notes, [int(e) for e in table.index]
        self.shift = shift
        self.out_epochs = [int(e) for e in table.index[~table['ok']]]
        self.plateau = [int(e) for e in table.index[table['plateau']]]
        self.judged = [int(e) for e in table.index[table['judged']]]
        self.undecided = shift is not None and not self.judged
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


def check_bands(tolerances, refs):
    """CurvesError for a set too small or too mixed to draw a band from. The command lines'
    types (runkit.argtypes) have refused metrics, bands and levels out of range already."""
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
    notes, mine = [], os.path.realpath(run.path)
    if len(refs) > 1 and any(os.path.realpath(r.path) == mine for r in refs):
        refs = [r for r in refs if os.path.realpath(r.path) != mine]
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
    check_bands(tolerances, refs)
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
        for column, values in (('run', a), ('centre', centre), ('half', half),
                               ('diff', a - centre), ('ok', inside)):
            table[metric + '_' + column] = values
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
    if report.shift is None:
        return lines
    mine, theirs = report.shift
    left = sorted(t for t in theirs if math.isfinite(t))
    return lines + ['aligned:   on the epoch each run left the chance plateau (val_acc reached '
                    '%g): the run %s, the references at %.2f-%.2f%s; the run\'s epoch E is judged '
                    'against the references E - %s epochs after theirs, interpolated between '
                    'epochs' % (PLATEAU_EXIT, 'at %.2f' % mine if math.isfinite(mine) else 'never',
                                left[0], left[-1], '' if len(left) == len(theirs) else
                                ' (%d never)' % (len(theirs) - len(left)),
                                '%.2f' % mine if math.isfinite(mine) else 'D')]


def header(report):
    shared, refs = report.shared, report.refs
    names = ('reference: %s  [%s]' % (report.ref.label, report.ref.path) if report.ref else
             'references: %d runs, %s  [%s]' % (len(refs), ', '.join(r.name for r in refs),
                                                 set_folder(refs)))
    epochs = 'epochs:    compared on %s (%d shared); the run has %s, the %s %s' % (
        epoch_ranges(shared), len(shared), epoch_ranges(report.run.epochs),
        'reference' if report.ref else 'references',
        epoch_ranges(set(e for r in refs for e in r.epochs)))
    return (['run:       %s  [%s]' % (report.run.label, report.run.path), names] +
            band_text(report) + [epochs] + ['note:      %s' % n for n in report.notes])


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
    text = show.reset_index().astype(str).to_string(index=False).splitlines()
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


def undecided_line(report):
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
        return [undecided_line(report)]
    if report.ok:
        return ['result:    INSIDE the band at ' + ('the one compared epoch' if len(shared) == 1
                                                    else 'all %d compared epochs' % len(shared))]
    lines = ['result:    OUTSIDE the band at %d of %d compared epochs (%s); * marks the '
             'values outside' % (len(report.out_epochs), len(shared),
                                 epoch_ranges(report.out_epochs))]
    return lines + ['%s:     %s' % (title, cell_text(report, cell, digits))
                    for title, cell in (('first', report.first_out), ('worst', report.worst_out))]


def record_lines(report):
    """The run.json settings that differ, and those the references differ in themselves."""
    diffs = report.differences
    if diffs is None:
        missing = next(h for h in [report.run] + report.refs if h.run is None)
        return ['run.json:  none beside %s, so versions and settings cannot be checked'
                % missing.path]
    lines = ['run.json:  %s in %d setting(s):' % (
        'the two differ' if report.ref else 'the run differs from the references', len(diffs))
             if diffs else
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
