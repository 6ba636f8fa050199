"""Reading runs and reference sets for tools/curves.py: a run's history.csv and run.json as a
History, a set as the Histories of its run directories. Bad input is a CurvesError, one line."""
import itertools
import os

import pandas

from runkit.errors import Refused
from runkit.files import read_json_object
from runkit.logdir import HISTORY, RUN_JSON
from runkit.plot import label

# Curve columns a comparison may use. `seconds` is wall time: never equal across reruns.
METRICS = ('val_acc', 'loss', 'acc', 'val_loss', 'lr')


class CurvesError(Refused):
    """Unusable input; str() is the one-line message for the user (exit code 2)."""


class History:
    """One run's curves: `frame` indexed by epoch, `run` its run.json record or None."""

    def __init__(self, path, frame, run, notes):
        self.path, self.frame, self.run, self.notes = path, frame, run, notes
        self.epochs = [int(e) for e in frame.index]
        self.name = os.path.basename(os.path.dirname(os.path.abspath(path)))
        self.label = label(self.name, run)


def load_history(path):
    """Read a history.csv, or the one in run directory `path`, and the run.json beside it;
    CurvesError, naming the file, when it is missing, empty, not a CSV or not numeric."""
    csv = os.path.join(path, HISTORY) if os.path.isdir(path) else str(path)
    record, run, notes = os.path.join(os.path.dirname(os.path.abspath(csv)), RUN_JSON), None, []
    try:
        run = read_json_object(record) if os.path.exists(record) else None
    except Refused as e:
        notes.append('%s: labels and checks go without it' % e)
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


def as_history(history):
    return history if isinstance(history, History) else load_history(history)
