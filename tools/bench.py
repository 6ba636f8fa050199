"""Measure what training All-CNN-C costs on this machine: images/s, FLOPs, fraction of peak.

    python -m tools.bench [--build NAME=PYTHON ...] [--peer NAME=COMMAND ...] [--only TEXT ...]
                          [--rounds K] [--repeats R] [--steps S] [--warmup W] [--out DIR]

Run from the repository root. Side by side at batch 32, on this interpreter's TensorFlow build
(named as setup.sh's TF_BUILD names it: stock, or mkl for Intel's oneDNN build): the blog as
published (Keras' own session), allconvnet.py with --jit off and with its default for the blog's
run (--jit auto: XLA with the stock build where no GPU is visible, never with oneDNN); then
allconvnet.py's defaults on every --build, and every --peer (the same network in another
framework); --only keeps the cases whose name contains TEXT. Each case runs in a fresh process,
warms up, then times R repeats of S steps; with --rounds K the whole list runs K times in turn,
so that a slow minute on the machine hits every case alike. The median images/s and the spread
are set beside the FLOPs counted from the model's layers and the machine's peak, in
DIR/bench.json and DIR/bench.md (default DIR: logs/bench/<UTC time>), rewritten after every
case. The defaults take about 2 minutes on 2 cores.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

from runkit.argtypes import Parser, assignment, positive_int
from runkit.errors import environment, exit_code, prepare, say

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_TAG = 'BENCH_RESULT '
# The blog's run, nb_epoch = 1000 of CIFAR-10's 50,000 images: what --jit auto decides for.
BLOG_RUN_IMAGES = 1000 * 50000
THREADS = {'keras': "Keras' own session (TF defaults)", 'peer': "the peer's own",
           None: "allconvnet.py's session"}
TABLE_HEAD = ['| case | build | threads (intra/inter) | XLA | batch | images/s (median) | min-max '
              '| spread | GFLOP/s | % of peak | vs first row |',
              '|---|---|---|---|---:|---:|---|---:|---:|---:|---:|']

# The widest instruction set /proc/cpuinfo's flags name, first match.
ISAS = (('AVX-512', {'avx512f'}), ('AVX2+FMA', {'avx2', 'fma'}), ('AVX', {'avx'}), ('SSE', set()))
# AMD's cores by cpu family and model, as Linux tells them apart (arch/x86/kernel/cpu/amd.c,
# bsp_init_amd). Family 0x1a is Zen 5 (and Zen 6 to come) in both its widths, see below.
AMD_CORES = ((0x17, ((0x00, 0x2f), (0x50, 0x5f)), 'Zen 1'),
             (0x17, ((0x30, 0x4f), (0x60, 0x7f), (0x90, 0x91), (0xa0, 0xaf)), 'Zen 2'),
             (0x19, ((0x00, 0x0f), (0x20, 0x5f)), 'Zen 3'),
             (0x19, ((0x10, 0x1f), (0x60, 0xaf)), 'Zen 4'),
             (0x1a, ((0x00, 0xff),), 'family 0x1a (Zen 5 or later)'))
# Single-precision FLOPs one core can start per cycle, by instruction set and core (None: any
# core not named): FMA pipes x lanes x 2 FLOPs per FMA. None where the flags and the core do
# not tell; the reason says what it could be.
PER_CYCLE = {
    ('AVX-512', 'Zen 4'): (32, "2 256-bit FMA pipes x 8 lanes x 2: Zen 4 runs a 512-bit "
                               "instruction as two 256-bit halves"),
    ('AVX-512', 'family 0x1a (Zen 5 or later)'): (
        None, '64 on the 512-bit FMA pipes of the desktop and server parts, 32 on the 256-bit '
              'ones of the mobile parts; the cpu model does not tell this table which'),
    ('AVX-512', None): (
        None, '64 with two 512-bit FMA units (Intel Xeon Platinum, Gold 6000 and others), 32 with '
              'one (Xeon Bronze, Silver and most Gold 5000 of Skylake-SP and Cascade Lake, '
              "Intel's client cores) or on 256-bit pipes; /proc/cpuinfo does not say which"),
    ('AVX2+FMA', 'Zen 1'): (16, '2 128-bit FMA pipes x 4 lanes x 2: Zen 1 splits 256-bit '
                                'instructions in two'),
    ('AVX2+FMA', None): (32, '2 256-bit FMA pipes x 8 lanes x 2, as Intel has since Haswell and '
                             'AMD since Zen 2'),
    ('AVX', None): (16, 'an 8-lane multiply and an 8-lane add per cycle'),
    ('SSE', None): (8, 'a 4-lane multiply and a 4-lane add per cycle'),
}


def core_of(fields):
    """The core's name from /proc/cpuinfo's vendor_id, cpu family and model, or None."""
    try:
        family, model = int(fields['cpu family']), int(fields['model'])
    except (KeyError, ValueError):
        return None
    if fields.get('vendor_id') != 'AuthenticAMD':
        return None
    return next((name for f, models, name in AMD_CORES
                 if f == family and any(lo <= model <= hi for lo, hi in models)), None)


def flops_per_cycle(flags, core=None):
    """(FP32 FLOPs per cycle or None where it cannot tell, what that is) for the widest
    instruction set `flags` has, on `core` (core_of's name)."""
    isa = next(name for name, needs in ISAS if needs <= set(flags))
    per_cycle, why = PER_CYCLE.get((isa, core)) or PER_CYCLE[isa, None]
    return per_cycle, '%s on %s: %s' % (isa, core or 'this core', why)


def peak_gflops(machine):
    """(cores x GHz x FLOPs per cycle, or None without a frequency or a per-cycle figure;
    FLOPs per cycle; what they are)."""
    per_cycle, isa = flops_per_cycle(machine['flags'], machine.get('core'))
    peak = (machine['cores'] * machine['mhz'] / 1000. * per_cycle
            if machine['mhz'] and per_cycle else None)
    return peak, per_cycle, isa


def flops_per_image(model):
    """(forward, training) FLOPs for one image, counted from the model's layers.

    A convolution's forward pass is out_h*out_w*filters multiply-adds per kh*kw*in_channels,
    two FLOPs each. Training adds the gradient with respect to the kernel (as many) and with
    respect to the layer's input (as many, except for the first layer: nothing asks for the
    gradient of the image). Biases, ReLU, dropout, pooling and softmax are counted too, one
    FLOP per output element, for completeness; they are under 1% here. All-CNN-C has no other
    layer with weights.
    """
    forward = training = 0
    first = True
    for layer in model.layers:
        elements = int(np.prod(layer.output_shape[1:]))
        if hasattr(layer, 'nb_row'):  # Convolution2D
            macs = elements * layer.nb_row * layer.nb_col * layer.input_shape[-1]
            forward += 2 * macs + elements  # + bias
            training += 2 * macs * (2 if first else 3) + 2 * elements
            first = False
        elif layer.__class__.__name__ != 'InputLayer':
            forward += elements
            training += 2 * elements
    return forward, training


def tf_distribution():
    """The TensorFlow distribution this interpreter has installed, read from its metadata
    (importing TensorFlow would take seconds)."""
    import pkg_resources
    installed = {d.project_name.lower() for d in pkg_resources.working_set}
    return next((name for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu')
                 if name in installed), 'unknown')


def own_build():
    """This interpreter's build, by setup.sh's TF_BUILD names: 'mkl' for intel-tensorflow."""
    return 'mkl' if tf_distribution() == 'intel-tensorflow' else 'stock'


def worker(spec):
    """Time one case in this process: its images per repeat, seconds per repeat, FLOPs, build."""
    environment()
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    from keras import backend as K
    import allconvnet
    from runkit import provenance, recipes, session
    K.set_image_dim_ordering('tf')
    build = session.tf_build()
    jit = spec['jit']
    if jit is None:  # allconvnet.py's --jit auto for the blog's full run
        jit = session.use_jit('auto', images=BLOG_RUN_IMAGES, build=build)
    result = {'xla': jit}
    # 'keras': no session of ours, so Keras 1.2.2 makes its own, as in the blog.
    if spec['threads'] != 'keras':
        proto = session.config(jit=jit, build=build)
        K.set_session(tf.Session(config=proto))
        result['threads'] = '%d/%d' % (proto.intra_op_parallelism_threads,
                                       proto.inter_op_parallelism_threads)
    np.random.seed(0)
    tf.set_random_seed(0)
    batch, steps = spec['batch'], spec['steps']
    rng = np.random.RandomState(0)
    # Random images scaled to [0, 1] as allconvnet.py feeds them, and one-hot labels.
    x = rng.randint(0, 256, size=(batch * steps, 32, 32, 3)).astype('float32') / 255.
    y = np.eye(10, dtype='float32')[rng.randint(0, 10, size=batch * steps)]
    blog = recipes.RECIPES['blog']
    model = allconvnet.build_model(blog)
    result['flops_forward'], result['flops_training'] = flops_per_image(model)
    # As allconvnet.py compiles the blog recipe: the string 'sgd', so no SGD object to pass.
    model.compile(loss='categorical_crossentropy', metrics=['accuracy'],
                  optimizer=recipes.compile_argument(blog['optimizer'], None))

    def work(n):
        for i in range(n):
            start = i % steps * batch
            model.train_on_batch(x[start:start + batch], y[start:start + batch])
    work(spec['warmup'])
    result.update(images_per_repeat=batch * steps, seconds=[])
    for _ in range(spec['repeats']):
        start = time.perf_counter()
        work(steps)
        result['seconds'].append(time.perf_counter() - start)
    result['build'] = {
        'distribution': tf_distribution(), 'mkl': build == 'mkl', 'versions': provenance.versions(),
        'gpus': [d.name for d in tf.config.experimental.list_physical_devices('GPU')]}
    return result


def plan(own, builds=(), peers=()):
    """The cases in the order they run, at the blog's batch_size: the first three on this
    interpreter's build `own`; `jit` None is --jit auto, which the XLA column reports."""
    def case(name, build=own, kind='train', threads=None, jit=None):
        return {'name': name, 'build': build, 'kind': kind, 'results': [], 'error': None,
                'spec': {'batch': 32, 'threads': threads, 'jit': jit}}
    return ([case('blog as published: Keras 1.2.2 makes the session', threads='keras', jit=False),
             case('allconvnet.py --jit off', jit=False),
             case("allconvnet.py's default for the blog's run (--jit auto)")] +
            [case("%s build, allconvnet.py's defaults" % name, build=name) for name in builds] +
            [case('%s peer: the same network and batch' % name, build=name, kind='peer',
                  threads='peer') for name in peers])


def run_case(c, command, settings):
    """`command` is a build's interpreter, or a peer's command line (shell words)."""
    spec = dict(c['spec'], **settings)
    argv = (shlex.split(command) if c['kind'] == 'peer' else
            [command, '-m', 'tools.bench', '--worker'])
    proc = subprocess.run(argv + [json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    # The last two lines: the exception, and the source line that raised it.
    tail = ' / '.join(l.strip() for l in (proc.stderr.strip().splitlines() or ['no output'])[-2:])
    raise RuntimeError('case %r failed (exit %d): %s' % (c['name'], proc.returncode, tail))


def summarize(results):
    """Median and spread of images/s over every repeat of every round."""
    rates = [r['images_per_repeat'] / s for r in results for s in r['seconds']]
    median = statistics.median(rates)
    return {'median': median, 'min': min(rates), 'max': max(rates), 'n': len(rates),
            'spread_pct': 100. * (max(rates) - min(rates)) / median}


def report_of(cases, settings, started, command):
    from runkit.provenance import cpuinfo, machine  # here, not above: numpy and pandas
    info = dict(machine(details=True), core=core_of(cpuinfo()))
    peak, per_cycle, isa = peak_gflops(info)
    builds = {c['build']: c['results'][-1]['build'] for c in cases if c['results']}
    first = next((r for c in cases for r in c['results'] if 'flops_training' in r), {})
    # The GPUs any build saw: a CPU-only build and a peer report none.
    gpus = sorted({g for b in builds.values() for g in b.get('gpus', [])})
    report = {'started': started, 'command': command, 'settings': settings,
              'machine': {k: info[k] for k in ('cpu', 'cores', 'mhz', 'core')},
              'gpus': gpus, 'peak_gflops': peak,
              'flops_per_cycle': per_cycle, 'isa': isa, 'builds': builds, 'cases': [],
              'flops_training': first.get('flops_training'),
              'flops_forward': first.get('flops_forward')}
    for c in cases:
        r = {'name': c['name'], 'build': c['build'], 'batch': c['spec']['batch'],
             'threads': THREADS[c['spec']['threads']],
             'error': c['error']}
        if c['results']:
            one = c['results'][0]
            if one.get('threads'):
                r['threads'] += ': %s' % one['threads']
            r.update(xla=one['xla'], images_per_s=summarize(c['results']),
                     seconds=[s for x in c['results'] for s in x['seconds']],
                     images_per_repeat=one['images_per_repeat'])
            if report['flops_training']:
                r['gflops'] = r['images_per_s']['median'] * report['flops_training'] / 1e9
                if peak:
                    r['peak_pct'] = 100. * r['gflops'] / peak
        report['cases'].append(r)
    return report


def peak_line(report):
    m, peak, per_cycle = report['machine'], report['peak_gflops'], report['flops_per_cycle']
    if peak:
        return ('- Peak: %.1f GFLOP/s = %d cores x %.3f GHz x %d FLOP/cycle, %s'
                % (peak, m['cores'], m['mhz'] / 1000., per_cycle, report['isa']))
    if per_cycle:
        return ('- Peak: unknown, /proc/cpuinfo gives no frequency; %d FLOP/cycle per core, %s'
                % (per_cycle, report['isa']))
    return '- Peak: unknown, the FLOPs per cycle are not known: %s' % report['isa']


def markdown(report):
    m = report['machine']
    lines = ['# tools/bench.py, %s' % report['started'], '',
             '- Machine: %s (%s), %d logical CPUs, %s MHz (from /proc/cpuinfo), GPUs: %s'
             % (m['cpu'], m.get('core') or 'core not known', m['cores'], m['mhz'],
                ', '.join(report['gpus']) or 'none'),
             peak_line(report),
             '- FLOPs per image (counted from the layers): %s GFLOP forward, %s GFLOP training'
             % tuple('%.3f' % (f / 1e9) if f else '?'
                     for f in (report['flops_forward'], report['flops_training'])),
             '- Settings: %(repeats)d repeats of %(steps)d steps after %(warmup)d warm-up steps, '
             '%(rounds)d round(s); spread = (max - min) / median over all repeats'
             % report['settings'],
             '- Command: `%s`' % report['command'], '']
    lines += ['- Build `%s`: %s, MKL %s; %s' % (
        name, info['distribution'], 'on' if info['mkl'] else 'off',
        ', '.join('%s %s' % kv for kv in sorted(info['versions'].items())))
        for name, info in sorted(report['builds'].items())]
    lines += [''] + TABLE_HEAD
    base = next((r['images_per_s']['median'] for r in report['cases'] if 'images_per_s' in r), 0)
    for r in report['cases']:
        s = r.get('images_per_s')
        cells = [r['name'], r['build'], r['threads'], 'on' if r.get('xla') else 'off', r['batch']]
        if s:
            cells += ['%.1f' % s['median'], '%.1f-%.1f' % (s['min'], s['max']),
                      '%.0f%%' % s['spread_pct'], '%.1f' % r['gflops'] if 'gflops' in r else '',
                      '%.0f%%' % r['peak_pct'] if 'peak_pct' in r else '',
                      '%+.0f%%' % (100. * (s['median'] / base - 1))]
        else:
            cells[3:] = ['', r['batch'], 'failed: %s' % (r['error'] or 'not run yet')] + [''] * 5
        lines.append('| %s |' % ' | '.join(map(str, cells)))
    return '\n'.join(lines)


def write_report(out, report):
    from runkit.files import write_json, write_whole  # here, not above
    write_json(os.path.join(out, 'bench.json'), report)
    write_whole(os.path.join(out, 'bench.md'), markdown(report) + '\n')


def parse_args(argv):
    p = Parser(prog='python -m tools.bench', allow_abbrev=False,
               formatter_class=argparse.RawDescriptionHelpFormatter,
               description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--build', type=assignment(str), action='append', default=[],
                   metavar='NAME=PYTHON', help='another interpreter with another TensorFlow '
                   'build, e.g. mkl=.venv-mkl/bin/python')
    p.add_argument('--peer', type=assignment(str), action='append', default=[],
                   metavar='NAME=COMMAND', help='COMMAND SPEC_JSON prints a BENCH_RESULT line '
                   'as a worker does, e.g. torch="python logs/reference/bench/peer/torch_peer.py"')
    p.add_argument('--repeats', type=positive_int, default=5)
    p.add_argument('--steps', type=positive_int, default=10, help='steps per repeat')
    p.add_argument('--warmup', type=positive_int, default=3, help='untimed steps first')
    p.add_argument('--only', action='append', default=[], metavar='TEXT',
                   help="run only the cases whose name contains TEXT, e.g. --only 'jit off' "
                   '(repeatable: any of them)')
    p.add_argument('--rounds', type=positive_int, default=1, help='times through the whole list')
    p.add_argument('--out', default=None, help='directory for bench.json and bench.md')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    args.own = own_build()
    # Each name picks the command its cases run with, so no two may share one.
    taken = {args.own: "this interpreter's build"}
    for option, name, command in ([('--build',) + b for b in args.build] +
                                  [('--peer',) + b for b in args.peer]):
        if name in taken:
            p.error('%s: %r is %s; give this one another name' % (option, name, taken[name]))
        taken[name] = 'the name of %s %s' % (option, name)
        if option == '--build' and not os.access(command, os.X_OK):
            p.error('--build %s: %s is not an executable interpreter' % (name, command))
    every = plan(args.own, [name for name, _ in args.build], [name for name, _ in args.peer])
    args.cases = [c for c in every if not args.only or any(t in c['name'] for t in args.only)]
    if not args.cases:
        p.error('--only %s: no case has that in its name; the cases: %s'
                % (', '.join(map(repr, args.only)), '; '.join(c['name'] for c in every)))
    args.out = args.out or os.path.join(ROOT, 'logs', 'bench',
                                        time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        p.error('--out: cannot create %s: %s' % (args.out, e.strerror))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(json.loads(args.worker))))
        return 0
    commands = dict([(args.own, sys.executable)] + args.build + args.peer)
    settings = {'repeats': args.repeats, 'steps': args.steps, 'warmup': args.warmup}
    cases = args.cases
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    command = ' '.join(['python -m tools.bench'] + [shlex.quote(a) for a in (
        sys.argv[1:] if argv is None else argv)])

    def report():
        return report_of(cases, dict(settings, rounds=args.rounds), started, command)
    try:
        # Round after round through the whole list, so a slow minute hits every case alike.
        for i, c in enumerate(cases * args.rounds, 1):
            print('[%d/%d] %s (build %s) ...' % (i, len(cases) * args.rounds, c['name'],
                                                 c['build']), end=' ', flush=True)
            start = time.time()
            try:
                c['results'].append(run_case(c, commands[c['build']], settings))
                print('%.1f images/s (%.0f s)' % (summarize(c['results'][-1:])['median'],
                                                  time.time() - start))
            except RuntimeError as e:
                # One broken case (a build that will not import, say) costs only itself.
                print('failed', flush=True)
                say('python -m tools.bench', 'error', e)
                c['error'] = str(e)
            # Written after every case: an interrupted run keeps what it measured.
            write_report(args.out, report())
    except KeyboardInterrupt:
        print('\nInterrupted; the cases measured so far are in %s' % args.out, file=sys.stderr)
        return 130
    print('\n%s\nWrote %s and %s' % (markdown(report()), os.path.join(args.out, 'bench.json'),
                                      os.path.join(args.out, 'bench.md')))
    return 1 if any(c['error'] for c in cases) else 0


if __name__ == '__main__':
    prepare('python -m tools.bench')
    sys.exit(exit_code(main, 'python -m tools.bench'))
