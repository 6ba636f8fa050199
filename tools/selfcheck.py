"""The self-check: does this machine train All-CNN-C the way the reference machine did?

  python -m tools.selfcheck [--reference SET] [--seed N] [--logdir DIR] [FLAG ...]
  make check ARGS="--gpus 2"

It trains the reference set's configuration once more, with a fresh seed, into
logs/selfcheck-<UTC>/ with the progress bar showing; then it judges the run against the band
the set's runs span (`python -m tools.curves compare`), prints the per-epoch table, the verdict
and the speed, and draws band.png beside the run. The configuration is the command line stored
in the set's run.json files, so it cannot drift from the set. The set is
$ALLCONVNET_REFERENCE_SET if that is set, else logs/reference/upstream-10k. Any FLAG it does not
know goes to allconvnet.py after the set's own (e.g. --gpus 2, --jit off); a flag that changes
the training shows in the report as a setting that differs, and --epochs 2 checks only the
first two epochs.
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import time

from runkit.argtypes import Parser
from runkit.errors import exit_code, prepare, say
from runkit.plot import plot
from tools import curves

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = 'python -m tools.selfcheck'
# allconvnet.py flags the self-check sets itself, each with whether it takes a value: the
# set's own values are stripped from its command line.
OWN = {'--seed': True, '--logdir': True, '--quiet': False}
# These would not train a fresh run of the configuration.
REFUSED = ('--resume', '--overwrite')
EXIT_CODES = """exit codes:
  0    the run is inside the set's band at every epoch (or it blew up, and the one rerun with
       the next seed is inside)
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


def build_parser():
    p = Parser(prog=PROG, description=__doc__, epilog=EXIT_CODES, allow_abbrev=False,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reference', default=None, metavar='SET',
                   help='the reference set (default: $ALLCONVNET_REFERENCE_SET, else '
                        'logs/reference/upstream-10k)')
    p.add_argument('--seed', type=int, default=None,
                   help="the run's seed (default: the Unix time, fresh at every check)")
    p.add_argument('--logdir', default=None,
                   help='where the run goes (default: logs/selfcheck-<UTC time>)')
    p.add_argument('--level', type=curves.level_arg, default=curves.LEVEL, metavar='P',
                   help="the band's level per epoch and metric (default %(default)s)")
    return p


def without_own(argv):
    """`argv` without the flags the self-check sets itself (as --flag value or --flag=value)."""
    kept, skip = [], False
    for arg in argv:
        name = arg.split('=', 1)[0]
        if skip:
            skip = False
        elif name in OWN:
            skip = OWN[name] and '=' not in arg
        else:
            kept.append(arg)
    return kept


def configuration(refs):
    """The set's command line without seed, logdir and --quiet, from its runs' run.json;
    CurvesError unless every run has one and they agree."""
    argvs = []
    for ref in refs:
        argv = (ref.run or {}).get('argv')
        if not isinstance(argv, list):
            raise curves.CurvesError('%s has no run.json with the command line (argv) that made '
                                     'it: not a run of a reference set' % ref.path)
        argvs.append(without_own(argv))
    for ref, argv in zip(refs, argvs):
        if argv != argvs[0]:
            raise curves.CurvesError('the runs of the set were not made with one command line '
                                     '(seed and logdir aside): %s has %s, %s has %s' % (
                                         refs[0].name, ' '.join(argvs[0]), ref.name,
                                         ' '.join(argv)))
    return argvs[0]


def minutes(history):
    return history.frame['seconds'].sum() / 60. if 'seconds' in history.frame else float('nan')


def images_per_second(history, first=0):
    """Training images per second of epoch wall time (validation included), from epoch
    `first` + 1 on."""
    args = (history.run or {}).get('args') or {}
    seconds = history.frame['seconds'].iloc[first:]
    return min(args.get('train_limit') or 50000, 50000) * len(seconds) / seconds.sum()


def speed(run, refs):
    """The run's speed beside the reference runs'."""
    theirs = sorted(images_per_second(r) for r in refs)
    text = '%.0f training images/s over %d epoch(s), %.1f min' % (
        images_per_second(run), len(run.epochs), run.frame['seconds'].sum() / 60.)
    if len(run.epochs) > 1:
        # Epoch 1 also builds and compiles the graph.
        text += ' (%.0f/s from epoch 2 on)' % images_per_second(run, 1)
    machines = sorted({((r.run or {}).get('machine') or {}).get('cpu') or 'a machine not recorded'
                       for r in refs})
    return text + '; the reference runs %.0f-%.0f on %s (epoch wall time, validation included)' % (
        theirs[0], theirs[-1], ' and '.join(machines))


def train(argv):
    """allconvnet.py's exit code; its output goes straight to the terminal."""
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'allconvnet.py')] + argv)

    def forward(signum, frame):
        proc.send_signal(signum)
    # Set after the start, so that allconvnet.py keeps the default handlers. Ctrl-C reaches it
    # from the terminal; here it must only not end the wait. TERM and HUP (docker stop, a
    # closed ssh session) come to this process alone, so they are passed on.
    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def judge(logdir, refs, level=curves.LEVEL, diverged=False):
    """(text, exit code, whether the run blew up) for the run in `logdir` against the band of
    `refs`; band.png is drawn beside the run."""
    run = curves.load_history(logdir)
    report = curves.compare(run, refs, dict.fromkeys(curves.SET_METRICS), level)
    image = plot([(run.label, run.frame)], os.path.join(logdir, 'band.png'),
                 band=curves.band_curves(refs, level, curves.left_plateau(run)),
                 title='self-check: %s against %s' % (run.name, curves.set_folder(refs)))
    lines = [curves.format_report(report), '', 'speed:     %s' % speed(run, refs),
             'plot:      %s' % image]
    epoch = curves.blow_up(run)
    if diverged or epoch is not None:
        also = [r.name for r in refs if curves.blow_up(r) is not None]
        lines.append('self-check: BLEW UP: the run %s; %s of the set did too, and a healthy '
                     'machine does so at times (docs/curves.md)' % (
                         'diverged (its loss became NaN or infinite)' if diverged else
                         'blew up at epoch %d (its loss passed twice that of guessing)' % epoch,
                         ' and '.join(also) if also else 'none'))
        return '\n'.join(lines), curves.UNDECIDED, True
    if report.undecided:
        lines.append('self-check: UNDECIDED: the run is still at chance accuracy, which a slow '
                     'healthy seed can be too: run the check once more; if it stays at chance '
                     'again, this machine does not train the network')
        return '\n'.join(lines), report.exit_code, False
    if report.ok:
        lines.append('self-check: PASS: inside the band of %d reference runs at all %d epochs%s: '
                     'this machine trains the configuration within the spread of their seeds'
                     % (len(refs), len(report.judged), ' after it left the chance plateau'
                        if report.plateau else ''))
    else:
        lines.append('self-check: FAIL: outside the band at epoch(s) %s (first: epoch %d, %s); '
                     'docs/curves.md says what to look at' % (
                         curves.epoch_ranges(report.out_epochs), report.first_out[0],
                         report.first_out[1]))
    return '\n'.join(lines), report.exit_code, False


def plan(args, extra):
    """The reference runs, and the command line the check trains with."""
    refs = curves.load_references([args.reference or default_reference()])
    # A set too small to judge, or of mixed configurations, is refused before the training.
    try:
        curves.check_bands(dict.fromkeys(curves.SET_METRICS), refs, args.level)
    except curves.CurvesError as e:
        raise curves.CurvesError('%s is not a reference set to judge by: %s'
                                 % (args.reference or default_reference(), e)) from None
    refused = [a for a in extra if a.split('=', 1)[0] in REFUSED]
    if refused:
        raise curves.CurvesError('%s: the self-check trains a fresh run of its own'
                                 % refused[0].split('=', 1)[0])
    seed = args.seed if args.seed is not None else int(time.time())
    logdir = args.logdir or os.path.join('logs', 'selfcheck-' + datetime.datetime.utcnow()
                                         .strftime('%Y%m%dT%H%M%SZ'))
    return refs, configuration(refs) + extra, seed, logdir


def check(refs, base, seed, logdir, level):
    """(exit code, whether the run blew up) of one training of `base` and its verdict."""
    command = base + ['--seed', str(seed), '--logdir', logdir]
    print('self-check: training the configuration of %s (%d runs, the fastest in %.0f min) '
          'once more:\n  allconvnet.py %s' % (
              curves.set_folder(refs), len(refs), min(minutes(r) for r in refs),
              ' '.join(command)))
    sys.stdout.flush()
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
        # Diverged before its first epoch ended: nothing to draw.
        text, verdict, blew_up = ('self-check: BLEW UP: the run diverged before its first '
                                  'epoch ended', curves.UNDECIDED, True)
    print(text)
    return verdict, blew_up


def main(argv=None):
    """The exit code; an unusable set raises CurvesError, which exit_code() makes one line.
    A run that blows up is trained once more with the next seed, and that run decides: a
    healthy machine blows up now and then (docs/curves.md counts how often)."""
    args, extra = build_parser().parse_known_args(argv)
    refs, base, seed, logdir = plan(args, extra)
    verdict, blew_up = check(refs, base, seed, logdir, args.level)
    if not blew_up:
        return verdict
    print('self-check: the rule for a blow-up: one more run, with seed %d, decides' % (seed + 1))
    verdict, blew_up = check(refs, base, seed + 1, logdir + '-rerun', args.level)
    if blew_up:
        print('self-check: FAIL: two runs in a row blew up, which a healthy machine does with '
              'the small chance docs/curves.md gives')
        return curves.OUTSIDE
    return verdict

if __name__ == '__main__':
    prepare(PROG)
    sys.exit(exit_code(main, PROG))
