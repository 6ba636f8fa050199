"""What several test files share besides fixtures: the repo root, running the real program
and reading how it ended. conftest.py holds the fixtures, the only shared state."""
import os
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import pandas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A short run's flags: the first 64 training and 32 test images, no progress bar.
TINY = ['--train-limit', '64', '--test-limit', '32', '--quiet']
# Where only the records are checked: one batch of the blog's 32.
ONE_BATCH = ['--train-limit', '32', '--test-limit', '32', '--quiet']


def run_allconvnet(args, home, timeout=600, env=None):
    """Run the real program in a subprocess with HOME=home; return CompletedProcess."""
    return run_side_by_side([(args, home, env)], timeout)[0]


def run_side_by_side(jobs, timeout=600):
    """[CompletedProcess] of allconvnet.py runs started together, one per (args, home, env):
    short runs spend most of their time in one thread building graphs, so two share the
    machine's cores well."""
    started = []
    for args, home, env in jobs:
        full_env = dict(os.environ, HOME=home, PYTHONUNBUFFERED='1', **(env or {}))
        out, err = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'allconvnet.py')] +
                                list(args), cwd=ROOT, env=full_env, stdout=out, stderr=err,
                                universal_newlines=True)
        started.append((proc, out, err))
    done = []
    for proc, out, err in started:
        proc.wait(timeout=timeout)
        out.seek(0)
        err.seek(0)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(),
                                                err.read()))
        out.close()
        err.close()
    return done


def start_allconvnet(args, home, env=None):
    """allconvnet.py started in a subprocess with HOME=home (stdout and stderr piped)."""
    full_env = dict(os.environ, HOME=home, PYTHONUNBUFFERED='1', **(env or {}))
    return subprocess.Popen([sys.executable, os.path.join(ROOT, 'allconvnet.py')] + list(args),
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)


def wait_for_rows(path, rows, proc, timeout=300):
    """Return once history.csv at `path` has `rows` finished epochs, while `proc` runs."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(pandas.read_csv(path)) >= rows:
                return
        except (OSError, pandas.errors.EmptyDataError):
            pass
        time.sleep(0.05)
    raise AssertionError('no %d finished epochs in %s' % (rows, path))


def refused(argv, capsys):
    """allconvnet.py's main in this process, as `python allconvnet.py ARGV` ends: its exit
    code and stderr, for the refusals that come before any TensorFlow session."""
    import allconvnet
    from runkit import errors
    try:
        code = errors.exit_code(lambda: allconvnet.main(argv), 'allconvnet.py')
    except SystemExit as e:  # argparse's own exit
        code = e.code
    return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)


def one_clear_line(proc, *fragments, code=2, prog='allconvnet.py'):
    """Exit `code`, a single `PROG: error:` line on stderr naming every fragment; the line."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    errors = [l for l in proc.stderr.splitlines() if l.startswith(prog + ': error:')]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
