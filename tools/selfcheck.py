"""The self-check: does this machine train All-CNN-C the way the reference machine did?

  python -m tools.selfcheck [--reference SET] [--seed N] [--logdir DIR] [FLAG ...]
  make check ARGS="--gpus 2"

It trains the reference set's configuration, the command line in its runs' run.json, once more
with a fresh seed; judges the run against the band of the set's runs; prints the table, the
verdict and the speed; and draws band.png beside the run. Any FLAG it does not know goes to
allconvnet.py after the set's own (e.g. --gpus 2; --epochs 2 checks only two epochs).
"""
import argparse
import os
import signal
import subprocess
import sys
import time

from runkit.argtypes import Parser, folder, fraction, seed
from runkit.errors import exit_code, prepare, say
from runkit.plot import plot
from tools import curves

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = 'python -m tools.selfcheck'
EXIT_CODES = """exit codes:
  0    inside the set's band at every epoch (after a blow-up: the one rerun, with the next seed)
  1    outside at one or more epochs, or two runs in a row blew up
  3    undecided: the run never left the chance plateau that the reference runs left (a healthy
       seed may be that slow: check once more)
  2    no run to judge: a bad flag, no data, fewer GPUs than --gpus asks (allconvnet.py's own
       one-line error), an unusable reference set (under %d runs, or of several configurations)
  4, 5 allconvnet.py could not write its files, or memory ran out (its own line)
  128+N  signal N stopped the run""" % curves.MIN_SET_RUNS


def default_reference():
    return os.environ.get('ALLCONVNET_REFERENCE_SET') or os.path.join(
        REPO, 'logs', 'reference', 'upstream-10k')


def without_own(argv):
    """`argv` without --quiet, --seed and --logdir (these with their value, in either spelling)."""
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument('--seed', '--logdir')
    own.add_argument('--quiet', action='store_true')
    return own.parse_known_args(argv)[1]


def configuration(refs):
    """The set's command line, seed, logdir and --quiet aside; CurvesError unless all agree."""
    argvs = []
    for ref in refs:
        argv = (ref.run or {}).get('argv')
        if not isinstance(argv, list):
            raise curves.CurvesError('%s has no run.json with the command line (argv) that made '
                                     'it: not a run of a reference set' % ref.path)
        argvs.append(without_own(argv))
        if argvs[-1] != argvs[0]:
            raise curves.CurvesError('the runs of the set were not made with one command line '
                                     '(seed and logdir aside): %s has %s, %s has %s' % (
                                         refs[0].name, ' '.join(argvs[0]), ref.name,
                                         ' '.join(argvs[-1])))
    return argvs[0]


def minutes(history):
    return history.frame['seconds'].sum() / 60. if 'seconds' in history.frame else float('nan')


def images_per_second(history, first=0):
    """Training images per second of epoch wall time (validation included) after epoch `first`."""
    limit = ((history.run or {}).get('args') or {}).get('train_limit') or 50000
    return min(limit, 50000) / history.frame['seconds'].iloc[first:].mean()


def train(argv):
    """allconvnet.py's exit code; its output goes straight to the terminal."""
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'allconvnet.py')] + argv)
    # Set after the start, so that allconvnet.py keeps the default handlers. Ctrl-C reaches it
    # from the terminal (here it is ignored); docker stop's TERM and ssh's HUP reach us alone.
    previous = {s: signal.signal(s, lambda signum, frame: proc.send_signal(signum))
                for s in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def judge(logdir, refs, level=curves.LEVEL, diverged=False):
    """(text, exit code, whether the run blew up) for the run in `logdir`; draws band.png."""
    run = curves.load_history(logdir)
    report = curves.compare(run, refs, dict.fromkeys(curves.SET_METRICS), level)
    image = plot([(run.label, run.frame)], os.path.join(logdir, 'band.png'),
                 band=curves.band_curves(refs, level, curves.left_plateau(run)),
                 title='self-check: %s against %s' % (run.name, curves.set_folder(refs)))
    speed = '%.0f training images/s over %d epoch(s), %.1f min' % (
        images_per_second(run), len(run.epochs), minutes(run))
    if len(run.epochs) > 1:
        # Epoch 1 also builds and compiles the graph.
        speed += ' (%.0f/s from epoch 2 on)' % images_per_second(run, 1)
    theirs = sorted(images_per_second(r) for r in refs)
    machines = sorted({((r.run or {}).get('machine') or {}).get('cpu') or 'a machine not recorded'
                       for r in refs})
    speed += '; the reference runs %.0f-%.0f on %s (epoch wall time, validation included)' % (
        theirs[0], theirs[-1], ' and '.join(machines))
    epoch = report.blew_up  # compare's, which the table above reports
    blew_up = diverged or epoch is not None
    if blew_up:
        also = ' and '.join(r.name for r in refs if curves.blow_up(r) is not None) or 'none'
        how = ('diverged (its loss became NaN or infinite)' if diverged else
               'blew up at epoch %d (its loss passed twice that of guessing)' % epoch)
        verdict = ('BLEW UP: the run %s; %s of the set did too, and a healthy machine does so '
                   'at times (docs/curves.md)' % (how, also))
    elif report.undecided:
        verdict = ('UNDECIDED: the run is still at chance accuracy, which a slow healthy seed '
                   'can be too: run the check once more; if it stays at chance again, this '
                   'machine does not train the network')
    elif report.ok:
        verdict = ('PASS: inside the band of %d reference runs at all %d epochs%s: this machine '
                   'trains the configuration within the spread of their seeds' % (
                       len(refs), len(report.judged),
                       ' after it left the chance plateau' if report.plateau else ''))
    else:
        verdict = ('FAIL: outside the band at epoch(s) %s (first: epoch %d, %s); docs/curves.md '
                   'says what to look at' % (curves.epoch_ranges(report.out_epochs),
                                             report.first_out[0], report.first_out[1]))
    text = '\n'.join([curves.format_report(report), '', 'speed:     ' + speed,
                      'plot:      %s' % image, 'self-check: ' + verdict])
    return text, curves.UNDECIDED if blew_up else report.exit_code, blew_up


def check(refs, base, seed, logdir, level):
    """(exit code, whether the run blew up) of one training of `base` and its verdict."""
    command = base + ['--seed', str(seed), '--logdir', logdir]
    print('self-check: training the configuration of %s (%d runs, the fastest in %.0f min) once '
          'more:\n  allconvnet.py %s' % (curves.set_folder(refs), len(refs),
                                         min(map(minutes, refs)), ' '.join(command)), flush=True)
    code = train(command)
    if code >= 128:
        # allconvnet.py's line offers --resume, which trains on without a verdict.
        say(PROG, 'stopped', 'nothing was judged; check again with: make check')
    if code not in (0, 3):
        return code, False  # allconvnet.py said why, or what was kept, in one line
    try:
        text, verdict, blew_up = judge(logdir, refs, level, diverged=code == 3)
    except curves.CurvesError:
        if code != 3:
            raise
        print('self-check: BLEW UP: the run diverged before its first epoch ended')
        return curves.UNDECIDED, True
    print(text)
    return verdict, blew_up


def main(argv=None):
    """The exit code; a blow-up is trained once more, with the next seed, which decides."""
    p = Parser(prog=PROG, description=__doc__, epilog=EXIT_CODES, allow_abbrev=False,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', type=folder, default=default_reference(), metavar='SET',
                   help='the reference set (default: $ALLCONVNET_REFERENCE_SET, else upstream-10k)')
    p.add_argument('--seed', type=seed, default=int(time.time()),
                   help="the run's seed (default: the Unix time, fresh at every check)")
    p.add_argument('--logdir', help='where the run goes (default: logs/selfcheck-<UTC time>)',
                   default=time.strftime('logs/selfcheck-%Y%m%dT%H%M%SZ', time.gmtime()))
    p.add_argument('--level', type=fraction, default=curves.LEVEL, metavar='P',
                   help="the band's level per epoch and metric (default %(default)s)")
    args, extra = p.parse_known_args(argv)
    refused = [f for f in (a.split('=')[0] for a in extra) if f in ('--resume', '--overwrite')]
    if refused:
        raise curves.CurvesError('%s: the self-check trains a fresh run of its own' % refused[0])
    refs = curves.load_references([args.reference])
    # A set too small to judge, or of mixed configurations, is refused before the training.
    try:
        curves.check_bands(dict.fromkeys(curves.SET_METRICS), refs)
    except curves.CurvesError as e:
        raise curves.CurvesError('%s is not a reference set to judge by: %s'
                                 % (args.reference, e)) from None
    base = configuration(refs) + extra
    verdict, blew_up = check(refs, base, args.seed, args.logdir, args.level)
    if not blew_up:
        return verdict
    rerun = (args.seed + 1) % 2 ** 32  # numpy's seeds end there
    print('self-check: the rule for a blow-up: one more run, with seed %d, decides' % rerun)
    verdict, blew_up = check(refs, base, rerun, args.logdir + '-rerun', args.level)
    if blew_up:
        print('self-check: FAIL: two runs in a row blew up, which a healthy machine does with '
              'the small chance docs/curves.md gives')
    return curves.OUTSIDE if blew_up else verdict


if __name__ == '__main__':
    prepare(PROG)
    sys.exit(exit_code(main, PROG))
