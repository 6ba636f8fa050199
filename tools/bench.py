"""Measure what training All-CNN-C costs on this machine: images/s, FLOPs, fraction of peak.

    python -m tools.bench [--build NAME=PYTHON ...] [--peer NAME=COMMAND ...] [--rounds K]
                          [--repeats R] [--steps S] [--warmup W] [--out DIR]

Run from the repository root. Side by side at batch 32: the blog as published (Keras' own
session), allconvnet.py with --jit off and with its default for the blog's run (XLA on where
no GPU is visible), allconvnet.py's defaults on every --build, and every --peer (the same
network in another framework). Each case runs in a fresh process, warms up, then times R
repeats of S steps; with --rounds K the whole list runs K times in turn, so that a slow minute
on the machine hits every case alike. The median images/s and the spread are set beside the
FLOPs counted from the model's layers and the machine's peak, in DIR/bench.json and
DIR/bench.md (default DIR: logs/bench/<UTC time>), rewritten after every case.
"""
import argparse
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

from runkit.argtypes import Parser, assignment, positive_int

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_TAG = 'BENCH_RESULT '
# The blog's run, nb_epoch = 1000 of CIFAR-10's 50,000 images: what --jit auto decides for.
BLOG_RUN_IMAGES = 1000 * 50000
THREADS = {'keras': "Keras' own session (TF defaults)", 'peer': "the peer's own"}
TABLE_HEAD = ['| case | build | threads (intra/inter) | XLA | batch | images/s (median) | min-max '
              '| spread | GFLOP/s | % of peak | vs first row |',
              '|---|---|---|---|---:|---:|---|---:|---:|---:|---:|']

# Single-precision FLOPs one core can start per cycle, by instruction set: two vector FMA pipes
# per core (Intel since Haswell, AMD since Zen 2), each FMA two FLOPs; AVX without FMA starts
# one 8-lane multiply and one 8-lane add per cycle, SSE the same on 4 lanes.
ISAS = [({'avx512f'}, 64, 'AVX-512 (2 FMA pipes x 16 lanes x 2)'),
        ({'avx2', 'fma'}, 32, 'AVX2+FMA (2 FMA pipes x 8 lanes x 2)'),
        ({'avx'}, 16, 'AVX (8-lane multiply + 8-lane add)'),
        (set(), 8, 'SSE (4-lane multiply + 4-lane add)')]


def flops_per_cycle(flags):
    """(FLOPs per cycle, instruction set) for the widest set in ISAS that `flags` has."""
    return next((n, isa) for needs, n, isa in ISAS if needs <= set(flags))


def peak_gflops(machine):
    """(cores x GHz x FLOPs per cycle or None without a frequency, FLOPs per cycle, ISA)."""
    per_cycle, isa = flops_per_cycle(machine['flags'])
    peak = machine['cores'] * machine['mhz'] / 1000. * per_cycle if machine['mhz'] else None
    return peak, per_cycle, isa


def flops_per_image(model):
    """(forward, training) FLOPs for one image, counted from the model's layers.

    A convolution's forward pass is out_h*out_w*filters multiply-adds per kh*kw*in_channels,
    two FLOPs each. Training adds the gradient with respect to the kernel (as many) and with
    respect to the layer's input (as many, except for the first layer: nothing asks for the
    gradient of the image). Biases, ReLU, dropout, pooling and softmax are counted too, one
    FLOP per output element, for completeness; they are under 1% here.
    """
    forward = training = 0
    first = True
    for layer in model.layers:
        elements = int(np.prod(layer.output_shape[1:]))
        macs = 0
        if hasattr(layer, 'nb_row'):  # Convolution2D
            macs = elements * layer.nb_row * layer.nb_col * layer.input_shape[-1]
        elif hasattr(layer, 'output_dim'):  # Dense
            macs = layer.input_shape[-1] * layer.output_dim
        if macs:
            forward += 2 * macs + elements  # + bias
            training += 2 * macs * (2 if first else 3) + 2 * elements
            first = False
        elif layer.__class__.__name__ != 'InputLayer':
            forward += elements
            training += 2 * elements
    return forward, training


def worker(spec):
    """Time one case in this process: its images per repeat, seconds per repeat, FLOPs, build."""
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import pkg_resources
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    from keras import backend as K
    from keras.optimizers import SGD
    import allconvnet
    from runkit import recipes, records, session
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
    # As allconvnet.py compiles: the recipe's choice, with the listing's SGD object at hand.
    listing_sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
    model.compile(loss='categorical_crossentropy', metrics=['accuracy'],
                  optimizer=recipes.compile_argument(blog['optimizer'], listing_sgd))

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
    installed = {d.project_name.lower() for d in pkg_resources.working_set}
    result['build'] = {
        'distribution': next((name for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu')
                              if name in installed), 'unknown'),
        'mkl': build == 'mkl', 'versions': records.versions(),
        'gpus': [d.name for d in tf.config.experimental.list_physical_devices('GPU')]}
    return result


def plan(builds=(), peers=()):
    """The cases in the order they run, at the blog's batch_size; `jit` None is --jit auto."""
    def case(name, build='stock', kind='train', threads=None, jit=None):
        return {'name': name, 'build': build, 'kind': kind, 'results': [], 'error': None,
                'spec': {'batch': 32, 'threads': threads, 'jit': jit}}
    return ([case('blog as published: Keras 1.2.2 makes the session', threads='keras', jit=False),
             case('allconvnet.py --jit off', jit=False),
             case("allconvnet.py's default for the blog's run (--jit auto: XLA on)")] +
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
    from runkit.records import machine  # here, not above: it imports Keras
    info = machine(details=True)
    peak, per_cycle, isa = peak_gflops(info)
    builds = {c['build']: c['results'][-1]['build'] for c in cases if c['results']}
    first = next((r for c in cases for r in c['results'] if 'flops_training' in r), {})
    report = {'started': started, 'command': command, 'settings': settings,
              'machine': {k: info[k] for k in ('cpu', 'cores', 'mhz')},
              'gpus': builds.get('stock', {}).get('gpus', []), 'peak_gflops': peak,
              'flops_per_cycle': per_cycle, 'isa': isa, 'builds': builds, 'cases': [],
              'flops_training': first.get('flops_training'),
              'flops_forward': first.get('flops_forward')}
    for c in cases:
        r = {'name': c['name'], 'build': c['build'], 'batch': c['spec']['batch'],
             'threads': THREADS.get(c['spec']['threads'], 'TF default (allconvnet.py)'),
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


def markdown(report):
    m, peak = report['machine'], report['peak_gflops']
    lines = ['# tools/bench.py, %s' % report['started'], '',
             '- Machine: %s, %d logical CPUs, %s MHz (from /proc/cpuinfo), GPUs: %s'
             % (m['cpu'], m['cores'], m['mhz'], ', '.join(report['gpus']) or 'none'),
             '- Peak: %s GFLOP/s = %d cores x %.3f GHz x %d FLOP/cycle, %s'
             % ('%.1f' % peak if peak else 'unknown', m['cores'], (m['mhz'] or 0) / 1000.,
                report['flops_per_cycle'], report['isa']),
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
    from runkit.records import replace_atomically, write_json  # here, not above: Keras
    write_json(os.path.join(out, 'bench.json'), report)
    replace_atomically(lambda tmp: pathlib.Path(tmp).write_text(markdown(report) + '\n'),
                       os.path.join(out, 'bench.md'))


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
    p.add_argument('--rounds', type=positive_int, default=1, help='times through the whole list')
    p.add_argument('--out', default=None, help='directory for bench.json and bench.md')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    for name, python in args.build:
        if name == 'stock':
            p.error("--build: 'stock' is this interpreter; give the other build another name")
        if not os.access(python, os.X_OK):
            p.error('--build %s: %s is not an executable interpreter' % (name, python))
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
    commands = dict([('stock', sys.executable)] + args.build + args.peer)
    settings = {'repeats': args.repeats, 'steps': args.steps, 'warmup': args.warmup}
    cases = plan([name for name, _ in args.build], [name for name, _ in args.peer])
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    command = ' '.join(['python -m tools.bench'] + list(sys.argv[1:] if argv is None else argv))

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
                sys.stderr.write('python -m tools.bench: error: %s\n' % e)
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
    sys.exit(main())
