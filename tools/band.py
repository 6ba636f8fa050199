"""The band's statistic (docs/curves.md, "The band"): where one more healthy run of a reference
set's configuration lands, epoch by epoch, aligned on the epoch each run leaves the plateau of
chance accuracy; and what a run that blew up lends it."""
import math
import statistics

import numpy
import pandas

from tools.runs import History

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
# blown up (seed 5 of upstream-10k did): a band drawn through it would admit anything.
BLOWN_UP = 2 * math.log(10)
# CIFAR-10's image counts, and the run.json args that cut them: an accuracy measured on N
# images carries binomial noise sqrt(p(1-p)/N) besides the seed's.
IMAGES = {'val_acc': ('test_limit', 10000), 'acc': ('train_limit', 50000)}
# The fewest runs a set's band is drawn from. Drawn from every subset of upstream-10k's ten
# runs, the band catches the blog recipe's run in 9% of the subsets of 2, 23% of 3, 54% of
# 4, 83% of 5 and all of 6 or more (docs/curves.md): below 5 it passes nearly anything.
MIN_SET_RUNS = 5


def band(values, level=LEVEL, images=None):
    """(centre, half-width) of the normal prediction interval mean +- t * s * sqrt(1 + 1/n)
    of one more run, from the references' values of one metric at one epoch (t: Student's, n - 1
    degrees of freedom). An accuracy measured on `images` images adds the binomial variance
    p(1 - p) / images to s^2. NaN without two finite values."""
    from scipy.special import stdtrit  # here: scipy.special loads in 0.2 s, scipy.stats in 1 s
    values = [v for v in values if math.isfinite(v)]
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean, variance = statistics.mean(values), statistics.variance(values)
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
    """The epoch, fractional, at which val_acc first reaches PLATEAU_EXIT, linear between that
    epoch and the one before; inf when it never does. A run off the plateau at its first row
    (a history may start later than epoch 1) is taken to have left by epoch 1, as most do."""
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


def set_alignment(refs, delay=1.):
    """(delay, each reference's left_plateau()): what a drawn band aligns on, for a run that
    left the plateau at epoch `delay`; None when fewer than two references leave it, so that
    the band is drawn epoch by epoch."""
    theirs = [left_plateau(r) for r in refs]
    return (delay, theirs) if sum(map(math.isfinite, theirs)) >= 2 else None


def run_alignment(run, refs, shared):
    """The alignment a drawn band judges `run` by over the epochs `shared`, or None: none
    without val_acc, and none when its val_acc is NaN before it left the plateau, since a NaN
    is no plateau: judged epoch by epoch, no band admits it."""
    if 'val_acc' not in run.frame.columns:
        return None
    shift = set_alignment(refs, left_plateau(run))
    if shift is not None and run.frame.loc[[e for e in shared if e < shift[0]],
                                           'val_acc'].isnull().any():
        return None
    return shift


def reference_values(refs, metric, epochs, shift=None):
    """DataFrame over `epochs`, a column per reference, of its `metric`: at the same epoch, or
    with `shift` from set_alignment() as many epochs after it left the plateau as the run is at
    each of `epochs`, interpolated between its epochs; NaN before the plateau's end or after
    the reference's last epoch."""
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
