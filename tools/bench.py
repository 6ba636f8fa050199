"""Measure what training All-CNN-C costs on this machine: images/s, FLOPs, fraction of peak.

Run from the repository root; each case runs in a fresh process, and bench.json and bench.md in
--out (default: logs/bench/<UTC time>) are rewritten after every case. docs/performance.md explains.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

from runkit.argtypes import Parser, assignment, positive_int
from runkit.errors import exit_code, prepare, say
from runkit.files import write_json, write_whole

PROG = 'python -m tools.bench'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_TAG = 'BENCH_RESULT '
THREADS = {'keras': "Keras' own session (TF defaults)", 'peer': "the peer's own",
           None: "allconvnet.py's session"}
TABLE_HEAD = ['| case | build | threads (intra/inter) | XLA | batch | images/s (median) | min-max '
              '| spread | GFLOP/s | % of peak | vs first row |',
              '|---|---|---|---|---:|---:|---|---:|---:|---:|---:|']

# FP32 FLOPs one core starts per cycle, for the cores the figures here were measured on: 2
# 256-bit FMA pipes x 8 lanes x 2 FLOPs per FMA (AMD's Software Optimization Guides for
# families 17h and 19h; Zen 4 runs a 512-bit instruction as two 256-bit halves). Any other core
# gets no peak: /proc/cpuinfo does not say how many FMA units it has, nor how wide.
PER_CYCLE = {'Zen 2': 32, 'Zen 3': 32, 'Zen 4': 32}
# Those cores by cpu family and model, as Linux tells them apart (arch/x86/kernel/cpu/amd.c).
AMD_CORES = ((0x17, ((0x30, 0x4f), (0x60, 0x7f), (0x90, 0x91), (0xa0, 0xaf)), 'Zen 2'),
             (0x19, ((0x00, 0x0f), (0x20, 0x5f)), 'Zen 3'),
             (0x19, ((0x10, 0x1f), (0x60, 0xaf)), 'Zen 4'))


def core_of(fields):
    """The core's name from /proc/cpuinfo's vendor_id, cpu family and model, or None."""
    if fields.get('vendor_id') != 'AuthenticAMD':
        return None
    family, model = int(fields['cpu family']), int(fields['model'])
    return next((name for f, models, name in AMD_CORES
                 if f == family and any(lo <= model <= hi for lo, hi in models)), None)


def peak_gflops(machine):
    """(GFLOP/s, FLOPs per cycle), None if unknown; FMA needs avx2 and fma, which a VM may hide."""
    per_cycle = PER_CYCLE.get(machine['core']) if {'avx2', 'fma'} <= set(machine['flags']) else None
    peak = (machine['cores'] * machine['mhz'] / 1000. * per_cycle
            if machine['mhz'] and per_cycle else None)
    return peak, per_cycle


def flops_per_image(model):
    """(forward, training) FLOPs per image, counted from the layers as docs/performance.md says."""
    forward = training = 0
    weighted = False  # until a layer with weights, nothing asks for the gradient of the input
    for layer in model.layers:
        elements = int(np.prod(layer.output_shape[1:]))
        macs = (elements * layer.nb_row * layer.nb_col * layer.input_shape[-1]
                if hasattr(layer, 'nb_row') else 0)  # Convolution2D
        forward += 2 * macs + elements
        training += 2 * macs * (3 if weighted else 2) + 2 * elements
        weighted = weighted or macs > 0
    return forward, training


def tf_distribution():
    """The installed TensorFlow distribution, from pip's metadata: importing TF takes seconds."""
    import pkg_resources
    installed = {d.project_name.lower() for d in pkg_resources.working_set}
    return next((name for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu')
                 if name in installed), 'unknown')


def own_build():
    return 'mkl' if tf_distribution() == 'intel-tensorflow' else 'stock'


def worker(spec):
    """Time one case in this process, which prepare() set up: its seconds per repeat and more."""
    import tensorflow as tf
    from keras import backend as K
    import allconvnet
    from runkit import provenance, recipes, session
    build, batch, steps = session.tf_build(), spec['batch'], spec['steps']
    # As allconvnet.py decides --jit for the blog's run: 1000 epochs of CIFAR-10's 50,000 images.
    jit = session.use_jit(spec['jit'], images=1000 * 50000, build=build)
    threads = None  # 'keras': no session of ours, so Keras 1.2.2 makes its own, as in the blog
    if spec['threads'] != 'keras':
        proto = session.config(jit=jit, build=build)
        K.set_session(tf.Session(config=proto))
        threads = '%d/%d' % (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads)
    np.random.seed(0)  # the images, labels and weights: Keras 1.2.2 draws its seeds from numpy
    x = np.random.randint(0, 256, size=(steps, batch, 32, 32, 3)).astype('float32') / 255.
    y = np.eye(10, dtype='float32')[np.random.randint(0, 10, size=(steps, batch))]
    model = allconvnet.build_model(recipes.RECIPES['blog'])
    forward, training = flops_per_image(model)
    # The blog recipe's compile, as allconvnet.py makes it: the string 'sgd', Keras' default SGD.
    model.compile(loss='categorical_crossentropy', optimizer='sgd', metrics=['accuracy'])
    timed = []  # [0] is the warm-up's, left out: the first steps also set up the graph
    for n in [spec['warmup']] + [steps] * spec['repeats']:
        start = time.perf_counter()
        for i in range(n):
            model.train_on_batch(x[i % steps], y[i % steps])
        timed.append(time.perf_counter() - start)
    gpus = [d.name for d in tf.config.experimental.list_physical_devices('GPU')]
    return {'xla': jit, 'threads': threads, 'images_per_repeat': batch * steps,
            'seconds': timed[1:], 'flops_forward': forward, 'flops_training': training,
            'build': {'distribution': tf_distribution(), 'mkl': build == 'mkl', 'gpus': gpus,
                      'versions': provenance.versions()}}


def plan(own, builds=(), peers=()):
    """The cases in the order they run, the first three on this interpreter's build `own`."""
    def case(name, build=own, kind='train', threads=None, jit='auto'):
        return {'name': name, 'build': build, 'kind': kind, 'results': [], 'error': None,
                'spec': {'batch': 32, 'threads': threads, 'jit': jit}}
    return ([case('blog as published: Keras 1.2.2 makes the session', threads='keras', jit='off'),
             case('allconvnet.py --jit off', jit='off'),
             case("allconvnet.py's default for the blog's run (--jit auto)")] +
            [case("%s build, allconvnet.py's defaults" % name, build=name) for name in builds] +
            [case('%s peer: the same network and batch' % n, n, 'peer', 'peer') for n in peers])


def run_case(c, command, settings):
    """`command` is a build's interpreter, or a peer's command line (shell words)."""
    argv = (shlex.split(command) if c['kind'] == 'peer' else
            [command, '-m', 'tools.bench', '--worker'])
    proc = subprocess.run(argv + [json.dumps(dict(c['spec'], **settings))], cwd=ROOT,
                          capture_output=True, universal_newlines=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = ' / '.join(l.strip() for l in (proc.stderr.strip().splitlines() or ['no output'])[-2:])
    raise RuntimeError('case %r failed (exit %d): %s' % (c['name'], proc.returncode, tail))


def summarize(results):
    """Median and spread of images/s over every repeat of every round."""
    rates = [r['images_per_repeat'] / s for r in results for s in r['seconds']]
    median = float(np.median(rates))
    return {'median': median, 'min': min(rates), 'max': max(rates), 'n': len(rates),
            'spread_pct': 100. * (max(rates) - min(rates)) / median}


def report_of(cases, settings, started, command):
    from runkit.provenance import cpuinfo, machine  # here, not above: pandas takes seconds
    info = dict(machine(details=True), core=core_of(cpuinfo()))
    peak, per_cycle = peak_gflops(info)
    builds = {c['build']: c['results'][-1]['build'] for c in cases if c['results']}
    counted = next((r for c in cases for r in c['results'] if 'flops_training' in r), {})
    flops = counted.get('flops_training')
    report = dict(started=started, command=command, settings=settings, builds=builds, cases=[],
                  machine={k: info[k] for k in ('cpu', 'cores', 'mhz', 'core')},
                  peak_gflops=peak, flops_per_cycle=per_cycle, flops_training=flops,
                  flops_forward=counted.get('flops_forward'))
    for c in cases:
        r = dict(name=c['name'], build=c['build'], batch=c['spec']['batch'], error=c['error'],
                 threads=THREADS[c['spec']['threads']])
        if c['results']:
            one = c['results'][0]
            r['threads'] += ': %s' % one['threads'] if one.get('threads') else ''
            r.update(xla=one['xla'], images_per_s=summarize(c['results']),
                     seconds=[s for x in c['results'] for s in x['seconds']])
            r['gflops'] = r['images_per_s']['median'] * flops / 1e9 if flops else None
            r['peak_pct'] = 100. * r['gflops'] / peak if flops and peak else None
        report['cases'].append(r)
    return report


def peak_line(report):
    m, peak, per_cycle = report['machine'], report['peak_gflops'], report['flops_per_cycle']
    if peak:
        return ('- Peak: %.1f GFLOP/s = %d cores x %.3f GHz x %d FP32 FLOP/cycle (%s: 2 256-bit '
                'FMA pipes)' % (peak, m['cores'], m['mhz'] / 1000., per_cycle, m['core']))
    if per_cycle:
        return '- Peak: unknown, /proc/cpuinfo gives no frequency (%d FLOP/cycle)' % per_cycle
    return ('- Peak: unknown, so no %% of peak: the FLOPs per cycle of this core (%s) are not in '
            "tools/bench.py's table, which knows %s with AVX2 and FMA"
            % (m.get('core') or 'not known', ', '.join(PER_CYCLE)))


def markdown(report):
    m, flops = report['machine'], (report['flops_forward'], report['flops_training'])
    machine = '- Machine: %s (%s), %d logical CPUs, %s MHz (from /proc/cpuinfo)' % (
        m['cpu'], m.get('core') or 'core not known', m['cores'], m['mhz'])
    lines = ['# tools/bench.py, %s' % report['started'], '', machine, peak_line(report),
             '- FLOPs per image (counted from the layers): %s GFLOP forward, %s GFLOP training'
             % tuple('%.3f' % (f / 1e9) if f else '?' for f in flops),
             '- Settings: %(repeats)d repeats of %(steps)d steps after %(warmup)d warm-up steps, '
             '%(rounds)d round(s); spread = (max - min) / median' % report['settings'],
             '- Command: `%s`' % report['command'], '']
    lines += ['- Build `%s`: %s, MKL %s, GPUs: %s; %s' % (
        name, b['distribution'], 'on' if b['mkl'] else 'off', ', '.join(b.get('gpus') or ['none']),
        ', '.join('%s %s' % kv for kv in sorted(b['versions'].items())))
        for name, b in sorted(report['builds'].items())] + [''] + TABLE_HEAD
    base = next((r['images_per_s']['median'] for r in report['cases'] if 'images_per_s' in r), 0)
    for r in report['cases']:
        s = r.get('images_per_s')
        cells = [r['name'], r['build'], r['threads'], '', r['batch'],
                 'failed: %s' % (r['error'] or 'not run yet')] + [''] * 5
        if s:
            cells[3:] = ['on' if r['xla'] else 'off', r['batch'], '%.1f' % s['median'],
                         '%.1f-%.1f' % (s['min'], s['max']), '%.0f%%' % s['spread_pct'],
                         '%.1f' % r['gflops'] if r['gflops'] else '',
                         '%.0f%%' % r['peak_pct'] if r['peak_pct'] else '',
                         '%+.0f%%' % (100. * (s['median'] / base - 1))]
        lines.append('| %s |' % ' | '.join(map(str, cells)))
    return '\n'.join(lines)


def parse_args(argv):
    p = Parser(prog=PROG, allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
               description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--build', type=assignment(str), action='append', default=[],
                   metavar='NAME=PYTHON', help='an interpreter with another TensorFlow build')
    p.add_argument('--peer', type=assignment(str), action='append', default=[],
                   metavar='NAME=COMMAND', help='COMMAND SPEC_JSON prints a BENCH_RESULT line')
    p.add_argument('--only', action='append', default=[], metavar='TEXT',
                   help='only the cases whose name contains TEXT (repeatable: any of them)')
    p.add_argument('--rounds', type=positive_int, default=1, help='times through the whole list')
    p.add_argument('--repeats', type=positive_int, default=5, help='timed repeats per round')
    p.add_argument('--steps', type=positive_int, default=10, help='steps per repeat')
    p.add_argument('--warmup', type=positive_int, default=3, help='untimed steps first')
    p.add_argument('--out', help='directory for bench.json and bench.md', default=os.path.join(
        ROOT, time.strftime('logs/bench/%Y%m%dT%H%M%SZ', time.gmtime())))
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
    every = plan(args.own, dict(args.build), dict(args.peer))
    args.cases = [c for c in every if not args.only or any(t in c['name'] for t in args.only)]
    if not args.cases:
        p.error('--only %s: no case has that in its name; the cases: %s'
                % (', '.join(map(repr, args.only)), '; '.join(c['name'] for c in every)))
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
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    command = ' '.join([PROG] + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
    try:
        # Round after round through the whole list, so a slow minute hits every case alike.
        for i, c in enumerate(args.cases * args.rounds, 1):
            print('[%d/%d] %s (build %s) ...' % (i, len(args.cases) * args.rounds, c['name'],
                                                 c['build']), end=' ', flush=True)
            try:
                c['results'].append(run_case(c, commands[c['build']], settings))
                print('%.1f images/s' % summarize(c['results'][-1:])['median'])
            except RuntimeError as e:
                # One broken case (a build that will not import, say) costs only itself.
                print('failed', flush=True)
                say(PROG, 'error', e)
                c['error'] = str(e)
            # Written after every case: an interrupted run keeps what it measured.
            report = report_of(args.cases, dict(settings, rounds=args.rounds), started, command)
            write_json(os.path.join(args.out, 'bench.json'), report)
            write_whole(os.path.join(args.out, 'bench.md'), markdown(report) + '\n')
    except KeyboardInterrupt:
        print(flush=True)  # ends the case's line before stderr's
        say(PROG, 'stopped', 'interrupted; the cases measured so far are in %s' % args.out)
        return 130
    print('\n%s\nWrote bench.json and bench.md in %s' % (markdown(report), args.out))
    return 1 if any(c['error'] for c in args.cases) else 0


if __name__ == '__main__':
    prepare(PROG)
    sys.exit(exit_code(main, PROG))
