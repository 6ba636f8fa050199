"""A run's record: run.json through the run's life, how the run ended, and the command that
runs it again. The folder it lives in, and every file there, is runkit/logdir.py's.
"""
import datetime
import os
import shlex
import shutil
import signal
import sys
from contextlib import contextmanager

from runkit.errors import (Diverged, Failure, Interrupted, as_failure, one_line, signals_surfaced,
                           warn)
from runkit.logdir import CURVES, HISTORY, STATE
from runkit.provenance import git_commit, machine, versions

def command(argv):
    """The shell command that runs allconvnet.py with `argv` the way this process was run."""
    if os.environ.get('ALLCONVNET_IMAGE'):
        # Inside the image: the README's run line, whose entry point is allconvnet.py.
        return ' '.join(['docker run --rm --gpus all -v "$PWD/logs:/app/logs" -v '
                         'allconvnet-data:/home/allconv/.keras/datasets',
                         os.environ['ALLCONVNET_IMAGE']] + [shlex.quote(a) for a in argv])
    python = sys.executable
    try:
        here = os.getcwd()
    except OSError:  # the working folder was deleted under the run
        here = None
    if shutil.which('python') and os.path.samefile(shutil.which('python'), python):
        python = 'python'
    elif here and os.path.abspath(python).startswith(here + os.sep):
        python = os.path.relpath(python)
    return ' '.join(shlex.quote(a) for a in [python, 'allconvnet.py'] + list(argv))


def utc_now():
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + 'Z'


def start_run(logdir, argv, args, resumed, recipe, overridden, placed, model, initial_epoch=0):
    """run.json's record of what really trains (written at once), or the resumed run's record
    brought up to date; the logdir keeps it as its record."""
    compiled = model.optimizer
    string = recipe['optimizer']['compile_with'] == 'string'
    run = resumed or {
        'argv': list(sys.argv[1:] if argv is None else argv), 'args': vars(args),
        'started': utc_now(), 'seed': args.seed, 'git_commit': git_commit(),
        'versions': versions(), 'machine': machine(), 'last_epoch': 0}
    if resumed:
        run['resumed_at_epoch'] = list(run.get('resumed_at_epoch') or []) + [initial_epoch]
        run['last_epoch'] = initial_epoch
    run.update(status='running', towers=placed.towers, preprocessing=recipe['preprocessing'],
               xla=placed.xla, tf_build=placed.build, threads=placed.threads,
               devices=placed.devices, newer_gpu_override=placed.newer_gpu_override,
               recipe_name=args.recipe, recipe=recipe, overridden=overridden,
               logdir=args.logdir,
               optimizer={'class_name': type(compiled).__name__, 'config': compiled.get_config(),
                          'compiled_with': "string 'sgd'" if string else 'sgd object',
                          'note': OPTIMIZER_NOTES[string]})
    for key in ('error', 'signal', 'ended'):
        run.pop(key, None)
    logdir.record = run
    logdir.update_record()
    return run


OPTIMIZER_NOTES = {
    True: "the blog builds SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True) but compiles "
          "with optimizer='sgd', so this config is what really trains",
    False: "the recipe's SGD object; lr is the starting rate of any lr_schedule"}


def draw_curves(logdir, run=None):
    # Every run leaves curves.png beside its history; a failed plot is only a warning.
    if logdir.exists(HISTORY):
        from runkit.plot import plot_run  # matplotlib: only once a run has curves
        try:
            plot_run(logdir, run)
        except Exception as e:
            warn('allconvnet.py', 'could not draw %s: %s' % (logdir.file(CURVES), one_line(e)))


def kept(logdir):
    """What a stopped run can say it kept: (finished epochs, the sentence)."""
    done = logdir.record.get('last_epoch') or 0
    if done and logdir.exists(STATE):
        return done, ('epochs 1-%d are kept in %s; continue with: %s'
                      % (done, logdir, command(['--resume', logdir.path])))
    return 0, 'no epoch had finished'


def record_end(logdir, status, **fields):
    """Record how the run ended; a record that cannot be written is said on stderr."""
    try:
        logdir.update_record(status=status, ended=utc_now(), **fields)
    except Failure as e:
        warn('allconvnet.py', 'run.json could not record that the run %s: %s' % (status, e))
        return False
    return True


@contextmanager
def outcome(logdir):
    """Around training: however it ends, run.json says so, and the exception that ends it
    carries the one line that says what was kept."""
    try:
        with signals_surfaced():
            yield
    except Interrupted as e:
        done, said = kept(logdir)
        name = signal.Signals(e.signum).name
        if not done and not logdir.record.get('resumed_at_epoch'):
            # Nothing to resume: the folder goes back to as it was, and the same command works.
            logdir.remove_run_files()
            e.message = ('interrupted by %s before the first epoch finished; nothing was kept. '
                         'Start again with: %s' % (name, command(logdir.record['argv'])))
        else:
            record_end(logdir, 'interrupted', signal=e.signum)
            draw_curves(logdir)
            e.message = 'interrupted by %s; %s' % (name, said)
        raise
    except Diverged as e:
        record_end(logdir, 'diverged', error=str(e))
        draw_curves(logdir)
        done, said = kept(logdir)
        raise Diverged('%s; %s' % (e, 'history.csv has the %d finished epochs' % done if done
                                   else 'no epoch had finished, so nothing can be resumed')
                       ) from None
    except Exception as e:
        failure = as_failure(e)
        if failure is None:
            record_end(logdir, 'failed', error='%s: %s' % (type(e).__name__, one_line(e)))
            raise
        recorded = record_end(logdir, 'failed', error=str(failure))
        raise type(failure)('%s; %s%s' % (failure, kept(logdir)[1], '' if recorded else
                                          ' (run.json could not record it)')) from None


def finish_run(logdir):
    # The plot first: a run killed while drawing says running, and --resume finishes it.
    draw_curves(logdir, dict(logdir.record, status='finished'))
    logdir.update_record(status='finished', ended=utc_now())
    print('Finished: %s' % logdir)
