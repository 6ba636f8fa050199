"""Measure what training All-CNN-C costs on this machine: images/s, FLOPs, fraction of peak.

    python -m tools.bench [--only SECTIONS] [--build NAME=PYTHON ...] [--batch-size N]
                          [--jit auto|off] [--threads PAIRS] [--repeats R] [--steps S]
                          [--warmup W] [--rounds K] [--out DIR]

Run from the repository root. Every case runs in a fresh subprocess (a new TensorFlow session
with its own thread pools, or another interpreter for another TensorFlow build), warms up,
then times R repeats of S steps and reports the median and the spread. With --rounds K the
whole list of cases runs K times in turn, so that a slow minute on the machine hits every
case alike. Sections:

  headline  the blog as published (Keras' own session, stock build) against allconvnet.py
            with --jit off and with its default for the blog's run (XLA on where no GPU is
            visible), and any --build, side by side at batch 32
  threads   allconvnet.py's training step across intra-/inter-op thread counts
  batch     the training step at batch 32 and at --batch-size
  eval      evaluation images/s (fit_generator validates with evaluate at the batch size)
  datagen   the blog's ImageDataGenerator alone, and its share of a training step
  workers   fit_generator end to end: Keras' default thread against nb_worker=2 processes
  towers    make_parallel with 1, 2 and 4 towers on CPU devices against the plain model
  overhead  the fixed cost of one Keras 1.2.2 training step (a tiny model), for GPU estimates

FLOPs per image are counted from the model's layers (flops_per_image), and the achieved
GFLOP/s are set beside the machine's peak (peak_gflops). Results go to DIR/bench.json and
DIR/bench.md (default DIR: logs/bench/<UTC time>), with the CPU and the package versions.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from runkit.argtypes import Parser, assignment, comma_list, positive_int

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ('headline', 'threads', 'batch', 'eval', 'datagen', 'workers', 'towers', 'overhead')
# Thread pairs (intra_op, inter_op) for the sweep; 0 is TensorFlow's "one per logical CPU",
# -1 (inter) runs every op in the calling thread.
THREAD_SWEEP = ((0, 0), (1, 1), (2, 1), (1, 2), (2, -1), (4, 1), (4, 4))
# Intel's advice for its MKL build (Intel's TF 1.x CPU performance guide): a short spin time,
# threads pinned to cores. Set for every --build (builds without OpenMP ignore them).
MKL_ENV = {'KMP_BLOCKTIME': '1', 'KMP_AFFINITY': 'granularity=fine,compact,1,0'}
RESULT_TAG = 'BENCH_RESULT '
# The blog's run, nb_epoch = 1000 of CIFAR-10's 50,000 images: what --jit auto decides for.
BLOG_RUN_IMAGES = 1000 * 50000
# Cases this cheap time ten times as many batches, for a steadier figure.
CHEAP = ('datagen', 'overhead')
TABLE_HEAD = ['| case | build | threads (intra/inter) | XLA | batch | images/s (median) | min-max '
              '| spread | GFLOP/s | % of peak | vs first row |',
              '|---|---|---|---|---:|---:|---|---:|---:|---:|---:|']


# ---------------------------------------------------------------------------------------------
# What the machine could do, and what a training image asks of it.

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
    if not machine['mhz']:
        return None, per_cycle, isa
    return machine['cores'] * machine['mhz'] / 1000. * per_cycle, per_cycle, isa


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


# ---------------------------------------------------------------------------------------------
# One case, in a subprocess: python -m tools.bench --worker '{"kind": "train", ...}'

def worker(spec):
    """Time one case in this process: its images per repeat, seconds per repeat, FLOPs, build."""
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    from keras import backend as K
    from keras.layers import Dense, GlobalAveragePooling2D
    from keras.models import Sequential
    from keras.optimizers import SGD
    from keras.preprocessing.image import ImageDataGenerator
    import allconvnet
    from make_parallel import make_parallel
    from runkit import recipes, records, session
    K.set_image_dim_ordering('tf')
    result = {'xla': False}
    # 'keras': no session of ours, so Keras 1.2.2 makes its own, as in the blog.
    if spec['threads'] != 'keras':
        jit = spec.get('jit')
        if jit is None:  # allconvnet.py's --jit auto for the blog's full run
            jit = session.use_jit('auto', images=BLOG_RUN_IMAGES)
        threads = tuple(spec['threads']) if spec['threads'] else None
        proto = session.config(cpu_devices=spec['cpu_devices'], threads=threads, jit=jit)
        K.set_session(tf.Session(config=proto))
        result['xla'] = proto.graph_options.optimizer_options.global_jit_level == \
            tf.OptimizerOptions.ON_1
    np.random.seed(0)
    tf.set_random_seed(0)
    kind, batch, steps = spec['kind'], spec['batch'], spec['steps']
    rng = np.random.RandomState(0)
    # Random images scaled to [0, 1] as allconvnet.py feeds them, and one-hot labels.
    x = rng.randint(0, 256, size=(batch * steps, 32, 32, 3)).astype('float32') / 255.
    y = np.eye(10, dtype='float32')[rng.randint(0, 10, size=batch * steps)]
    blog = recipes.RECIPES['blog']
    datagen = ImageDataGenerator(**blog['augmentation'])
    flow = datagen.flow(x, y, batch_size=batch, seed=0)
    if kind == 'overhead':
        # The smallest model Keras 1.2.2 trains with the same loss, optimizer and feeds: its
        # step time is the fixed cost of a step (Python, feed_dict, session.run), which no
        # faster device removes.
        model = Sequential([GlobalAveragePooling2D(input_shape=(32, 32, 3)),
                            Dense(10, activation='softmax')])
    elif kind != 'datagen':
        model = template = allconvnet.build_model(blog)
        if spec['towers']:
            model = make_parallel(template, spec['towers'], device='/cpu:%d')
        result['flops_forward'], result['flops_training'] = flops_per_image(template)
    if kind != 'datagen':
        # As allconvnet.py compiles: the recipe's choice, with the listing's SGD object at hand.
        listing_sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
        model.compile(loss='categorical_crossentropy', metrics=['accuracy'],
                      optimizer=recipes.compile_argument(blog['optimizer'], listing_sgd))

    def work(n):
        if kind == 'datagen':
            for _ in range(n):
                next(flow)
        elif kind in ('train', 'overhead'):
            for i in range(n):
                start = i % steps * batch
                model.train_on_batch(x[start:start + batch], y[start:start + batch])
        elif kind == 'eval':
            model.evaluate(x[:batch * n], y[:batch * n], batch_size=batch, verbose=0)
        else:
            model.fit_generator(datagen.flow(x, y, batch_size=batch), samples_per_epoch=batch * n,
                                nb_epoch=1, verbose=0, nb_worker=spec['nb_worker'],
                                pickle_safe=spec['pickle_safe'])
    work(spec['warmup'])
    result.update(images_per_repeat=batch * steps, seconds=[])
    for _ in range(spec['repeats']):
        start = time.perf_counter()
        work(steps)
        result['seconds'].append(time.perf_counter() - start)
    # The build: which TensorFlow distribution this interpreter has, and whether it uses MKL.
    import pkg_resources
    from tensorflow.python import pywrap_tensorflow
    installed = {d.project_name.lower() for d in pkg_resources.working_set}
    result['build'] = {
        'distribution': next((name for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu')
                              if name in installed), 'unknown'),
        'mkl': bool(getattr(pywrap_tensorflow, 'IsMklEnabled', lambda: False)()),
        'versions': records.versions(),
        'gpus': [d.name for d in tf.config.experimental.list_physical_devices('GPU')]}
    return result


# ---------------------------------------------------------------------------------------------
# The cases, and running them.

def threads_label(threads):
    if threads == 'keras':
        return "Keras' own session (TF defaults)"
    return 'TF default (allconvnet.py)' if threads is None else '%d/%d' % tuple(threads)


def plan(sections, batch_size, builds, jit=None, sweep=THREAD_SWEEP):
    """The cases for the chosen sections, in the order they run. `jit` None is allconvnet.py's
    --jit auto for the blog's full run (XLA on where no GPU is visible), False is --jit off;
    the headline has both."""
    cases = []

    def case(name, section, kind, batch=32, threads=None, build='stock', towers=0,
             cpu_devices=None, **extra):
        spec = dict(kind=kind, batch=batch, threads=threads, towers=towers,
                    cpu_devices=cpu_devices, threads_label=threads_label(threads), **extra)
        cases.append({'name': name, 'section': section, 'build': build, 'spec': spec})

    if 'headline' in sections:
        case('blog as published: Keras 1.2.2 makes the session', 'headline', 'train',
             threads='keras')
        case('allconvnet.py --jit off', 'headline', 'train', jit=False)
        case("allconvnet.py's default for the blog's run (--jit auto: XLA on)", 'headline', 'train')
        for name in builds:
            for on in (False, True):
                case('%s build, allconvnet.py --jit %s' % (name, 'on' if on else 'off'),
                     'headline', 'train', build=name, jit=on)
    if 'threads' in sections:
        for name in ['stock'] + list(builds):
            for threads in sweep:
                case('%s, threads %s' % (name, threads_label(threads)), 'threads', 'train',
                     threads=list(threads), build=name, jit=jit)
    for section, kind, label in (('batch', 'train', 'train'), ('eval', 'eval', 'evaluate')):
        if section in sections:
            for batch in sorted({32, batch_size}):
                case('%s, batch %d' % (label, batch), section, kind, batch=batch, jit=jit)
    if 'datagen' in sections:
        case("blog's ImageDataGenerator alone, batch 32", 'datagen', 'datagen')
        if not any(c['section'] == 'batch' and c['spec']['batch'] == 32 for c in cases):
            case('train, batch 32', 'batch', 'train', jit=jit)
    if 'workers' in sections:
        case('fit_generator, 1 thread (Keras default)', 'workers', 'workers', nb_worker=1,
             pickle_safe=False, jit=jit)
        case('fit_generator, nb_worker=2, pickle_safe', 'workers', 'workers', nb_worker=2,
             pickle_safe=True, jit=jit)
    if 'towers' in sections:
        case('plain model (no make_parallel)', 'towers', 'train', jit=jit)
        for towers in (1, 2, 4):
            case('make_parallel, %d tower%s on CPU devices' % (towers, 's' * (towers > 1)),
                 'towers', 'train', towers=towers, cpu_devices=4, jit=jit)
        # One tower per core, each op on one thread: the fastest tower layout found here.
        case('make_parallel, 2 towers on CPU devices, threads 1/2', 'towers', 'train', towers=2,
             cpu_devices=2, threads=[1, 2], jit=jit)
    if 'overhead' in sections:
        case('fixed cost of a step: GAP + Dense model', 'overhead', 'overhead', jit=jit)
    return cases


def run_case(c, python, settings):
    spec = dict(c['spec'], warmup=settings['warmup'], repeats=settings['repeats'],
                steps=settings['steps'] * (10 if c['spec']['kind'] in CHEAP else 1))
    env = dict(os.environ)
    if c['build'] != 'stock':
        env = dict(MKL_ENV, **env)
    proc = subprocess.run([python, '-m', 'tools.bench', '--worker', json.dumps(spec)], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
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


# ---------------------------------------------------------------------------------------------
# The report.

def report_of(cases, results, failures, builds, settings, started, command):
    from runkit.records import machine  # here, not above: it imports Keras
    info = machine(details=True)
    peak, per_cycle, isa = peak_gflops(info)
    first = next((r[0] for r in results if r and 'flops_training' in r[0]), {})
    training, forward = first.get('flops_training'), first.get('flops_forward')
    report = {'started': started, 'command': command, 'settings': settings,
              'machine': {k: info[k] for k in ('cpu', 'cores', 'mhz')},
              'gpus': builds.get('stock', {}).get('gpus', []), 'peak_gflops': peak,
              'flops_per_cycle': per_cycle, 'isa': isa, 'flops_training': training,
              'flops_forward': forward, 'builds': builds, 'cases': [], 'notes': {}}
    for c, done, error in zip(cases, results, failures):
        r = {'name': c['name'], 'section': c['section'], 'build': c['build'],
             'batch': c['spec']['batch'], 'threads': c['spec']['threads_label'],
             'kind': c['spec']['kind']}
        if error:
            r['error'] = error
        if done:
            r.update(xla=done[0]['xla'], images_per_s=summarize(done),
                     seconds=[s for x in done for s in x['seconds']],
                     images_per_repeat=done[0]['images_per_repeat'])
            per_image = {'train': training, 'workers': training, 'eval': forward}.get(r['kind'])
            if per_image:
                r['gflops'] = r['images_per_s']['median'] * per_image / 1e9
                if peak:
                    r['peak_pct'] = 100. * r['gflops'] / peak
        report['cases'].append(r)
    by = {r['name']: r['images_per_s']['median'] for r in report['cases'] if 'images_per_s' in r}
    gen, train = by.get("blog's ImageDataGenerator alone, batch 32"), by.get('train, batch 32')
    if gen and train:
        report['notes']['datagen'] = [
            'Augmenting a batch takes %.1f%% of the time of a training step on the same batch '
            '(%.0f vs %.1f images/s): augmentation is %s the bottleneck.'
            % (100. * train / gen, gen, train, 'not' if train / gen < 0.5 else 'close to being')]
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
    for name, info in sorted(report['builds'].items()):
        v = info['versions']
        lines.append('- Build `%s`: %s %s, MKL %s; python %s, keras %s, numpy %s'
                     % (name, info['distribution'], v['tensorflow'], 'on' if info['mkl'] else 'off',
                        v['python'], v['keras'], v['numpy']))
    lines.append('')
    for section in SECTIONS:
        rows = [r for r in report['cases'] if r['section'] == section]
        if not rows:
            continue
        lines += ['## %s' % section, ''] + TABLE_HEAD
        base = next((r['images_per_s']['median'] for r in rows if 'images_per_s' in r), None)
        for r in rows:
            s, datagen = r.get('images_per_s'), r['kind'] == 'datagen'
            cells = [r['name'], r['build'], '-' if datagen else r['threads'],
                     '-' if datagen else 'on' if r.get('xla') else 'off', r['batch']]
            if s:
                cells += ['%.1f' % s['median'], '%.1f-%.1f' % (s['min'], s['max']),
                          '%.0f%%' % s['spread_pct'], '%.1f' % r['gflops'] if 'gflops' in r else '',
                          '%.0f%%' % r['peak_pct'] if 'peak_pct' in r else '',
                          '%+.0f%%' % (100. * (s['median'] / base - 1))]
            else:
                error = 'failed: %s' % r.get('error', 'not run yet')
                cells[3:] = ['', r['batch'], error, '', '', '', '', '']
            lines.append('| %s |' % ' | '.join(map(str, cells)))
        lines.append('')
        if section in report['notes']:
            lines += report['notes'][section] + ['']
    return '\n'.join(lines)


def write_report(out, report):
    from runkit.records import replace_atomically, write_json  # here, not above: Keras
    write_json(os.path.join(out, 'bench.json'), report)

    def write_markdown(tmp):
        with open(tmp, 'w') as f:
            f.write(markdown(report) + '\n')
    replace_atomically(write_markdown, os.path.join(out, 'bench.md'))


# ---------------------------------------------------------------------------------------------
# The command line.

def thread_pairs(text):
    try:
        pairs = tuple(tuple(int(n) for n in item.split('/')) for item in text.split(','))
    except ValueError:
        pairs = ()
    if not pairs or any(len(p) != 2 or p[0] < 0 for p in pairs):
        raise argparse.ArgumentTypeError('expected INTRA/INTER pairs like 0/0,2/1, got %r' % text)
    return pairs


def parse_args(argv):
    p = Parser(prog='python -m tools.bench', allow_abbrev=False,
               formatter_class=argparse.RawDescriptionHelpFormatter,
               description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--batch-size', type=positive_int, default=128,
                   help='the second batch size of the batch and eval sections (default 128)')
    p.add_argument('--only', type=comma_list(SECTIONS), default=list(SECTIONS), metavar='SECTIONS',
                   help='comma-separated sections to run (default: all)')
    p.add_argument('--build', type=assignment(str), action='append', default=[],
                   metavar='NAME=PYTHON', help='another interpreter with another TensorFlow '
                   'build, for the headline, e.g. mkl=.venv-mkl/bin/python')
    p.add_argument('--repeats', type=positive_int, default=5)
    p.add_argument('--steps', type=positive_int, default=10, help='steps per repeat')
    p.add_argument('--warmup', type=positive_int, default=3, help='untimed steps first')
    p.add_argument('--rounds', type=positive_int, default=1,
                   help='run the whole case list this many times in turn (default 1)')
    p.add_argument('--jit', choices=('auto', 'off'), default='auto',
                   help="XLA outside the headline: allconvnet.py's --jit for the blog's run "
                        '(auto: on where no GPU is visible; default auto)')
    p.add_argument('--threads', type=thread_pairs, default=THREAD_SWEEP, metavar='PAIRS',
                   help="the thread section's intra/inter pairs (default: %s)"
                        % ','.join('%d/%d' % t for t in THREAD_SWEEP))
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
    pythons = dict([('stock', sys.executable)] + args.build)
    settings = {'repeats': args.repeats, 'steps': args.steps, 'warmup': args.warmup,
                'rounds': args.rounds, 'jit': args.jit}
    cases = plan(args.only, args.batch_size, [b for b in pythons if b != 'stock'],
                 jit=None if args.jit == 'auto' else False, sweep=args.threads)
    results, failures, builds = [[] for _ in cases], [None] * len(cases), {}
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    command = ' '.join(['python -m tools.bench'] + list(sys.argv[1:] if argv is None else argv))
    try:
        # Round after round through the whole list, so a slow minute hits every case alike.
        for done, (i, c) in enumerate([(i, c) for _ in range(args.rounds)
                                       for i, c in enumerate(cases)], 1):
            print('[%d/%d] %s (%s, build %s) ...' % (done, len(cases) * args.rounds, c['name'],
                                                   c['section'], c['build']), end=' ', flush=True)
            start = time.time()
            try:
                r = run_case(c, pythons[c['build']], settings)
            except RuntimeError as e:
                # One broken case (a build that will not import, say) costs only itself.
                print('failed', flush=True)
                sys.stderr.write('python -m tools.bench: error: %s\n' % e)
                failures[i] = str(e)
                continue
            results[i].append(r)
            builds[c['build']] = r['build']
            print('%.1f images/s (%d repeats, %.0f s)' % (summarize([r])['median'],
                                                          len(r['seconds']), time.time() - start))
            # Written after every case: an interrupted run keeps what it measured.
            write_report(args.out, report_of(cases, results, failures, builds, settings, started,
                                             command))
    except KeyboardInterrupt:
        print('\nInterrupted; the cases measured so far are in %s' % args.out, file=sys.stderr)
        return 130
    report = report_of(cases, results, failures, builds, settings, started, command)
    write_report(args.out, report)
    print('\n%s\nWrote %s and %s' % (markdown(report), os.path.join(args.out, 'bench.json'),
                                      os.path.join(args.out, 'bench.md')))
    return 1 if any(failures) else 0


if __name__ == '__main__':
    sys.exit(main())
