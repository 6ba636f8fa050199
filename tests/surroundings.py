"""Every entry point a user starts, under surroundings that are not its own: closed or broken
streams, resource limits, another Keras's ~/.keras, a neighbour, an odd working folder, links
planted in LOGDIR.

    make surroundings        (every case, about 5 minutes on 2 cores; not part of `make test`)
    cd tests && ../.venv-test-stock/bin/python surroundings.py allconvnet.py 'pipe closes'

tests/test_surroundings.py runs the FAST cases in the suite. Each case runs the real program in
a shell (for its redirections and ulimit) inside a sandbox of its own: HOME with the synthetic
CIFAR-10 cache, TMPDIR, the working folder and LOGDIR. It checks the exit code docs/failures.md
gives for that surrounding, at most one line of the program's on stderr (and exactly one
`PROG: error:` line when it fails), no traceback and no "unexpected"; that nothing changed
outside LOGDIR and the cache, and that nothing is left behind: no temporary file in TMPDIR or
LOGDIR, no LOGDIR/.lock. Exit 0 when every case holds.
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from types import SimpleNamespace

from helpers import ROOT

sys.path.insert(0, ROOT)  # run as a script from tests/, as kill_matrix.py is

PY = sys.executable
QUICK = ['--epochs', '1', '--train-limit', '32', '--test-limit', '32', '--quiet', '--seed', '1']
PROGS = {'allconvnet.py': 'allconvnet.py', 'predict.py': 'predict.py',
         'tools.curves': 'python -m tools.curves', 'tools.selfcheck': 'python -m tools.selfcheck',
         'runkit.dataset': 'python -m runkit.dataset'}


def command(entry, box):
    """The argv of `entry` in the sandbox `box`: each writes into box.logdir where it writes."""
    return {
        'allconvnet.py': [PY, os.path.join(ROOT, 'allconvnet.py')] + QUICK + ['--logdir',
                                                                               box.logdir],
        'predict.py': [PY, os.path.join(ROOT, 'predict.py'), box.image, '--run', box.finished],
        'tools.curves': [PY, '-m', 'tools.curves', 'plot', box.finished, '-o',
                         os.path.join(box.logdir, 'curves.png')],
        'tools.selfcheck': [PY, '-m', 'tools.selfcheck', '--reference', box.tiny_set, '--seed',
                            '1', '--logdir', box.logdir],
        'runkit.dataset': [PY, '-m', 'runkit.dataset'],
    }[entry]


# -- the surroundings: (shell prefix, shell suffix, setup(box), {entry: exit codes}) ---------------

def foreign_keras_json(box):
    with open(os.path.join(box.home, '.keras', 'keras.json'), 'w') as f:
        f.write('{"backend": "jax", "floatx": "bfloat16", "image_data_format": "channels_last"}')


def empty_keras_json(box):
    open(os.path.join(box.home, '.keras', 'keras.json'), 'w').close()
    box.env['KERAS_BACKEND'] = 'torch'


def keras_is_a_file(box):
    shutil.rmtree(os.path.join(box.home, '.keras'))
    with open(os.path.join(box.home, '.keras'), 'w') as f:
        f.write('not a folder')


def deleted_folder(box):
    box.cwd = os.path.join(box.root, 'gone')
    os.mkdir(box.cwd)
    box.prefix = 'rmdir %s && ' % shlex.quote(box.cwd)
    box.ignore.append(box.cwd)


def odd_names(box):
    box.logdir = os.path.join(box.root, 'r\u00fcn with space\nand newline')
    box.cwd = os.path.join(box.root, 'w\u00f6rk dir')
    os.mkdir(box.cwd)
    os.mkdir(box.logdir)


def planted_links(box):
    """LOGDIR's lock and run.json, the curves' output and the cache's lock: links to a file
    outside, which must stay as it is."""
    for name in ('.lock', 'run.json', 'curves.png'):
        os.symlink(box.victim, os.path.join(box.logdir, name))
    os.symlink(box.victim, os.path.join(box.home, '.keras', 'datasets', '.cifar-10.lock'))


EVERY = dict.fromkeys(PROGS, {0})
SURROUNDINGS = {
    'stdin closed': ('', ' <&-', None, EVERY),
    'stdout closed': ('', ' >&-', None, EVERY),
    'stderr closed': ('', ' 2>&-', None, EVERY),
    'pipe closes': ('', ' | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}', None, EVERY),
    'stdout on /dev/full': ('', ' >/dev/full', None, EVERY),
    # Programs that load TensorFlow refuse to start below 2 GiB (runkit/errors.py).
    'ulimit -v 1 GB': ('ulimit -v 1000000; ', '', None, dict(dict.fromkeys(PROGS, {5}),
                                                              **{'tools.curves': {0}})),
    # 16 KiB: the PNG of a plot and every checkpoint are larger, run.json is not.
    'ulimit -f 16 KiB': ('ulimit -f 16; ', '', None, dict(EVERY, **{
        'allconvnet.py': {4}, 'tools.curves': {4}, 'tools.selfcheck': {1, 2, 4}})),
    'ulimit -n 12': ('ulimit -n 12; ', '', None, dict.fromkeys(PROGS, {0, 5})),
    'foreign keras.json': ('', '', foreign_keras_json, EVERY),
    'empty keras.json, KERAS_BACKEND=torch': ('', '', empty_keras_json, EVERY),
    '~/.keras a file': ('', '', keras_is_a_file, dict(EVERY, **{
        'allconvnet.py': {2}, 'runkit.dataset': {2}, 'tools.selfcheck': {2}})),
    'deleted working folder': ('', '', deleted_folder, dict.fromkeys(PROGS, {2})),
    'unicode, space and newline paths': ('', '', odd_names, EVERY),
    'links planted in LOGDIR and the cache': ('', '', planted_links, dict(EVERY, **{
        'allconvnet.py': {2}, 'tools.selfcheck': {2}})),
}
# Two of the same at once: one folder for two runs, one cache for two fetches.
TWICE = {'allconvnet.py': [0, 2], 'predict.py': [0, 0], 'tools.curves': [0, 0],
         'tools.selfcheck': [0, 2], 'runkit.dataset': [0, 0]}
# The suite's share: each class of surroundings on the entry point where it once failed or
# where it costs least, the rest in `make surroundings`.
FAST = {('allconvnet.py', s) for s in (
    'stdout closed', 'pipe closes', 'ulimit -v 1 GB', 'foreign keras.json', '~/.keras a file',
    'deleted working folder', 'links planted in LOGDIR and the cache')} | {
    ('predict.py', 'stdout on /dev/full'), ('predict.py', 'empty keras.json, KERAS_BACKEND=torch'),
    ('tools.curves', 'pipe closes'), ('tools.curves', 'ulimit -f 16 KiB'),
    ('tools.curves', 'unicode, space and newline paths'), ('runkit.dataset', 'stderr closed'),
    ('runkit.dataset', 'ulimit -n 12'), ('runkit.dataset', 'links planted in LOGDIR and the cache')}


def sandbox(shared):
    """A fresh sandbox whose cache links to the shared synthetic one's files."""
    root = tempfile.mkdtemp(prefix='surround-')
    box = SimpleNamespace(root=root, home=os.path.join(root, 'home'),
                          tmp=os.path.join(root, 'tmp'), cwd=os.path.join(root, 'cwd'),
                          logdir=os.path.join(root, 'logdir'), victim=os.path.join(root, 'victim'),
                          prefix='', env={}, ignore=[], **shared)
    datasets = os.path.join(box.home, '.keras', 'datasets')
    os.makedirs(datasets)
    for name in os.listdir(os.path.join(shared['cache_home'], '.keras', 'datasets')):
        if not name.startswith('.'):
            os.symlink(os.path.join(shared['cache_home'], '.keras', 'datasets', name),
                       os.path.join(datasets, name))
    os.makedirs(box.tmp)
    os.makedirs(box.cwd)
    os.makedirs(box.logdir)
    with open(box.victim, 'w') as f:
        f.write('precious')
    return box


def state(box):
    """{path: (mode, size, mtime)} of the sandbox's files and (mode) of its folders, less LOGDIR,
    the CIFAR-10 cache and matplotlib's own folders, which it makes for any program."""
    found = {}
    mine = (box.logdir, os.path.join(box.home, '.keras', 'datasets'),
            os.path.join(box.home, '.cache'), os.path.join(box.home, '.config'))
    for root, dirs, names in os.walk(box.root):
        if root.startswith(mine):
            continue
        for name in names + dirs:
            path = os.path.join(root, name)
            if path not in mine:
                st = os.lstat(path)
                found[path] = (st.st_mode,) if name in dirs and not os.path.islink(path) else (
                    st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def shell(entry, box, prefix, suffix):
    err = os.path.join(box.root, 'stderr')
    line = ' '.join(shlex.quote(a) for a in command(entry, box))
    if '2>&-' not in suffix:
        line += ' 2>%s' % shlex.quote(err)
    if not any(s in suffix for s in ('>&-', '|', '>/dev/full')):
        line += ' >%s' % shlex.quote(os.path.join(box.root, 'stdout'))
    return box.prefix + prefix + line + suffix, err


def start(entry, box, prefix='', suffix=''):
    script, err = shell(entry, box, prefix, suffix)
    env = dict(os.environ, HOME=box.home, TMPDIR=box.tmp, PYTHONPATH=ROOT, **box.env)
    proc = subprocess.Popen(['bash', '-c', script], cwd=box.cwd, env=env)
    return proc, err


def problems(entry, box, code, codes, err, before):
    """What is wrong with one finished case (an empty list when it holds)."""
    found, prog = [], PROGS[entry]
    # The self-check's one line may be the allconvnet.py run's that it started.
    progs = (prog + ':', 'allconvnet.py:') if entry == 'tools.selfcheck' else (prog + ':',)
    text = open(err).read() if os.path.exists(err) else None
    if code not in codes:
        found.append('exit %s, expected %s' % (code, sorted(codes)))
    if text is not None:
        ours = [l for l in text.splitlines() if l.startswith(progs)]
        most = max(len([l for l in ours if l.startswith(p)]) for p in progs)
        if most > 1 or (code and len([l for l in ours if ': error:' in l]) != 1):
            found.append('stderr has %d lines of %s' % (len(ours), ' or '.join(progs)))
        if 'Traceback' in text or 'unexpected' in text:
            found.append('a traceback or an unexpected error')
    after = state(box)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p)
                     and p not in box.ignore and not p.startswith(box.root + os.sep + 'std'))
    if changed:
        found.append('changed outside LOGDIR and the cache: %s' % changed[:3])
    if open(box.victim).read() != 'precious':
        found.append('a planted link was followed')
    left = os.listdir(box.tmp) + [n for n in (os.listdir(box.logdir) if os.path.isdir(
        box.logdir) else []) if n.endswith('.tmp') or (n == '.lock' and not os.path.islink(
            os.path.join(box.logdir, n)))]
    if left:
        found.append('left behind: %s' % left)
    return found + (['stderr: ' + text.strip()[-400:]] if found and text else [])


def run_case(entry, surrounding, shared):
    prefix, suffix, setup, codes = SURROUNDINGS[surrounding]
    box = sandbox(shared)
    try:
        if setup:
            setup(box)
        before = state(box)
        proc, err = start(entry, box, prefix, suffix)
        code = proc.wait(timeout=900)
        return problems(entry, box, code, codes[entry], err, before)
    finally:
        shutil.rmtree(box.root, ignore_errors=True)


def run_twice(entry, shared):
    box = sandbox(shared)
    try:
        before = state(box)
        (first, err), (second, err2) = start(entry, box), start(entry, box, suffix=' 2>%s' % (
            shlex.quote(os.path.join(box.root, 'stderr2'))))
        codes = sorted([first.wait(timeout=900), second.wait(timeout=900)])
        found = [] if codes == TWICE[entry] else ['exit codes %s, expected %s' % (
            codes, TWICE[entry])]
        for text in (err, os.path.join(box.root, 'stderr2')):
            found += problems(entry, box, 0, {0}, text, before)
        return found
    finally:
        shutil.rmtree(box.root, ignore_errors=True)


def shared_files(folder, home=None, finished=None):
    """What every sandbox shares, made once: the synthetic cache (or `home`'s), a finished tiny
    run (or `finished`), an image and a tiny reference set for the self-check."""
    import synthetic_cifar
    from test_selfcheck import tiny_set
    if home is None:
        home = os.path.join(folder, 'cache-home')
        synthetic_cifar.write_cache(home)
    if finished is None:
        finished = os.path.join(folder, 'finished')
        subprocess.run([PY, os.path.join(ROOT, 'allconvnet.py')] + QUICK + ['--logdir', finished],
                       env=dict(os.environ, HOME=home), stdout=subprocess.DEVNULL, check=True)
    image = os.path.join(folder, 'image.png')
    from PIL import Image
    Image.new('RGB', (32, 32), (200, 30, 30)).save(image)
    return {'cache_home': home, 'finished': finished, 'image': image,
            'tiny_set': tiny_set(os.path.join(folder, 'tiny-set'))}


def main(argv):
    wanted = argv or []
    folder = tempfile.mkdtemp(prefix='surroundings-')
    shared = shared_files(folder)
    failures, count = 0, 0
    for entry in PROGS:
        if wanted and entry not in wanted and not set(wanted) & set(SURROUNDINGS):
            continue
        for surrounding in list(SURROUNDINGS) + ['two at once']:
            if wanted and surrounding not in wanted and entry not in wanted:
                continue
            count += 1
            found = (run_twice(entry, shared) if surrounding == 'two at once'
                     else run_case(entry, surrounding, shared))
            failures += bool(found)
            print('%-4s %-16s %-40s %s' % ('ok' if not found else 'FAIL', entry, surrounding,
                                           '; '.join(found)))
            sys.stdout.flush()
    shutil.rmtree(folder, ignore_errors=True)
    print('%d passed, %d failed' % (count - failures, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
