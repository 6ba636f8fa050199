"""Measure what training All-CNN-C costs on this machine: images/s, FLOPs, fraction of peak.

    python tools/bench.py [--only SECTIONS] [--build NAME=PYTHON ...] [--batch-size N]
                          [--jit auto|off] [--threads PAIRS] [--repeats R] [--steps S]
                          [--warmup W] [--rounds K] [--out DIR]

Every case runs in a fresh subprocess (a new TensorFlow session with its own thread pools,
or another interpreter for another TensorFlow build), warms up, then times R repeats of
S steps and reports the median and the spread. With --rounds K the whole list of cases runs
K times in turn, so that a slow minute on the machine hits every case alike. Sections:

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
from __future__ import print_function

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from runkit.argtypes import Parser, positive_int  # noqa: E402 (no Keras: --help stays quick)

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


# ---------------------------------------------------------------------------------------------
# What the machine could do, and what a training image asks of it.

def cpu_info():
    """Model name, logical CPUs, MHz and instruction-set flags from /proc/cpuinfo."""
    info = {'cpu': platform.processor() or 'unknown', 'mhz': None, 'flags': []}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                key, value = key.strip(), value.strip()
                if key == 'model name':
                    info['cpu'] = value
                elif key == 'cpu MHz' and info['mhz'] is None:
                    info['mhz'] = float(value)
                elif key == 'flags' and not info['flags']:
                    info['flags'] = value.split()
    except OSError:
        pass
    info['cores'] = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') \
        else os.cpu_count()
    return info


def flops_per_cycle(flags):
    """Single-precision FLOPs one core can start per cycle, and the instruction set behind it.

    Two vector FMA pipes per core (Intel since Haswell, AMD since Zen 2), each FMA two FLOPs:
    AVX-512 16 lanes, AVX2+FMA 8 lanes. AVX without FMA: one 8-lane multiply and one 8-lane
    add per cycle. SSE: 4 lanes, one multiply and one add.
    """
    flags = set(flags)
    if 'avx512f' in flags:
        return 64, 'AVX-512 (2 FMA pipes x 16 lanes x 2)'
    if 'avx2' in flags and 'fma' in flags:
        return 32, 'AVX2+FMA (2 FMA pipes x 8 lanes x 2)'
    if 'avx' in flags:
        return 16, 'AVX (8-lane multiply + 8-lane add)'
    return 8, 'SSE (4-lane multiply + 4-lane add)'


def peak_gflops(info):
    """cores x GHz x FLOPs per cycle, or None where /proc/cpuinfo gives no frequency."""
    per_cycle, isa = flops_per_cycle(info['flags'])
    if not info['mhz']:
        return None, per_cycle, isa
    return info['cores'] * info['mhz'] / 1000. * per_cycle, per_cycle, isa


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
        out = layer.output_shape
        elements = 1
        for d in out[1:]:
            elements *= d
        if hasattr(layer, 'nb_row'):  # Convolution2D
            in_channels = layer.input_shape[-1]
            macs = elements * layer.nb_row * layer.nb_col * in_channels
            conv = 2 * macs
            forward += conv + elements  # + bias
            training += conv * (2 if first else 3) + 2 * elements
            first = False
        elif hasattr(layer, 'output_dim'):  # Dense
            macs = layer.input_shape[-1] * layer.output_dim
            forward += 2 * macs + elements
            training += 2 * macs * (2 if first else 3) + 2 * elements
            first = False
        elif layer.__class__.__name__ != 'InputLayer':
            forward += elements
            training += 2 * elements
    return forward, training


# ---------------------------------------------------------------------------------------------
# One case, in a subprocess: python tools/bench.py --worker '{"kind": "train", ...}'

def build_compiled(towers=0):
    """allconvnet.py's model and compile, blog recipe (optimizer='sgd', as published)."""
    from keras.optimizers import SGD
    import allconvnet
    from make_parallel import make_parallel
    from runkit import recipes
    template = allconvnet.build_model()
    model = make_parallel(template, towers, device='/cpu:%d') if towers else template
    sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
    optimizer = recipes.compile_argument(recipes.RECIPES['blog']['optimizer'], sgd)
    model.compile(loss='categorical_crossentropy', optimizer=optimizer, metrics=['accuracy'])
    return template, model


def fake_cifar(n, seed=0):
    """n images scaled to [0, 1] as allconvnet.py feeds them, and one-hot labels."""
    import numpy as np
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 256, size=(n, 32, 32, 3)).astype('float32') / 255.
    y = np.zeros((n, 10), dtype='float32')
    y[np.arange(n), rng.randint(0, 10, size=n)] = 1.
    return x, y


def timed(repeats, work):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return seconds


def worker(spec):
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np
    import tensorflow as tf
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    from keras import backend as K
    K.set_image_dim_ordering('tf')
    from runkit import session
    if spec.get('threads') != 'keras':
        # 'keras': no session of ours, so Keras 1.2.2 makes its own, as in the blog.
        threads = tuple(spec['threads']) if spec.get('threads') else None
        jit = spec.get('jit')
        if jit is None:  # allconvnet.py's --jit auto for the blog's full run
            jit = session.use_jit('auto', images=BLOG_RUN_IMAGES)
        proto = session.config(cpu_devices=spec.get('cpu_devices'), threads=threads, jit=jit)
        K.set_session(tf.Session(config=proto))
    result_xla = False
    if spec.get('threads') != 'keras':
        result_xla = proto.graph_options.optimizer_options.global_jit_level == \
            tf.OptimizerOptions.ON_1
    np.random.seed(0)
    tf.set_random_seed(0)
    kind, batch, steps = spec['kind'], spec['batch'], spec['steps']
    images = batch * steps
    result = {'images_per_repeat': images, 'xla': result_xla}

    if kind == 'datagen':
        from keras.preprocessing.image import ImageDataGenerator
        from runkit import recipes
        x, y = fake_cifar(images)
        flow = ImageDataGenerator(**recipes.RECIPES['blog']['augmentation']).flow(
            x, y, batch_size=batch, seed=0)
        for _ in range(spec['warmup']):
            next(flow)
        result['seconds'] = timed(spec['repeats'], lambda: [next(flow) for _ in range(steps)])
        return result

    if kind == 'overhead':
        # The smallest model Keras 1.2.2 trains with the same loss, optimizer and feeds: its
        # step time is the fixed cost of a step (Python, feed_dict, session.run), which no
        # faster device removes.
        from keras.layers import Dense, GlobalAveragePooling2D
        from keras.models import Sequential
        model = Sequential([GlobalAveragePooling2D(input_shape=(32, 32, 3)),
                            Dense(10, activation='softmax')])
        model.compile(loss='categorical_crossentropy', optimizer='sgd', metrics=['accuracy'])
        x, y = fake_cifar(images)
        for i in range(spec['warmup']):
            model.train_on_batch(x[:batch], y[:batch])
        result['seconds'] = timed(spec['repeats'], lambda: [
            model.train_on_batch(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
            for i in range(steps)])
        return result

    template, model = build_compiled(spec.get('towers', 0))
    result['flops_forward'], result['flops_training'] = flops_per_image(template)
    x, y = fake_cifar(images)
    if kind == 'train':
        def epoch():
            for i in range(steps):
                model.train_on_batch(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        for i in range(spec['warmup']):
            model.train_on_batch(x[:batch], y[:batch])
        result['seconds'] = timed(spec['repeats'], epoch)
    elif kind == 'eval':
        model.evaluate(x[:batch * spec['warmup']], y[:batch * spec['warmup']],
                       batch_size=batch, verbose=0)
        result['seconds'] = timed(spec['repeats'],
                                  lambda: model.evaluate(x, y, batch_size=batch, verbose=0))
    elif kind == 'workers':
        from keras.preprocessing.image import ImageDataGenerator
        from runkit import recipes
        datagen = ImageDataGenerator(**recipes.RECIPES['blog']['augmentation'])

        def fit(n):
            model.fit_generator(datagen.flow(x, y, batch_size=batch), samples_per_epoch=n,
                                nb_epoch=1, verbose=0, nb_worker=spec['nb_worker'],
                                pickle_safe=spec['pickle_safe'])
        fit(batch * spec['warmup'])
        result['seconds'] = timed(spec['repeats'], lambda: fit(images))
    else:
        raise ValueError('unknown case kind %r' % kind)
    return result


def build_info():
    """Which TensorFlow distribution this interpreter has, and whether it uses MKL-DNN."""
    import pkg_resources
    import tensorflow as tf
    from runkit.records import versions
    dist = 'unknown'
    for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu'):
        try:
            pkg_resources.get_distribution(name)
            dist = name
            break
        except pkg_resources.DistributionNotFound:
            pass
    try:
        from tensorflow.python import pywrap_tensorflow
        mkl = bool(pywrap_tensorflow.IsMklEnabled())
    except AttributeError:
        mkl = False
    return {'distribution': dist, 'mkl': mkl, 'versions': versions(),
            'gpus': [d.name for d in tf.config.experimental.list_physical_devices('GPU')]}


def run_worker(text):
    spec = json.loads(text)
    result = worker(spec)
    result.update(build_info())
    print(RESULT_TAG + json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# The cases, and running them.

def case(name, section, kind, batch=32, threads=None, build='stock', towers=0, cpu_devices=None,
         **extra):
    spec = dict(kind=kind, batch=batch, threads=threads, towers=towers,
                cpu_devices=cpu_devices, **extra)
    return {'name': name, 'section': section, 'build': build, 'spec': spec}


def threads_label(threads):
    if threads == 'keras':
        return "Keras' own session (TF defaults)"
    if threads is None:
        return 'TF default (allconvnet.py)'
    return '%d/%d' % tuple(threads)


def plan(sections, batch_size, builds, jit=None, sweep=THREAD_SWEEP):
    """The cases for the chosen sections, in the order they run. `jit` None is allconvnet.py's
    --jit auto for the blog's full run (XLA on where no GPU is visible), False is --jit off;
    the headline has both."""
    cases = []
    if 'headline' in sections:
        cases.append(case('blog as published: Keras 1.2.2 makes the session', 'headline',
                          'train', threads='keras'))
        cases.append(case('allconvnet.py --jit off', 'headline', 'train', jit=False))
        cases.append(case("allconvnet.py's default for the blog's run (--jit auto: XLA on)",
                          'headline', 'train'))
        for name in builds:
            cases.append(case('%s build, allconvnet.py --jit off' % name, 'headline', 'train',
                              build=name, jit=False))
            cases.append(case('%s build, allconvnet.py --jit on' % name, 'headline', 'train',
                              build=name, jit=True))
    if 'threads' in sections:
        for name in ['stock'] + list(builds):
            for threads in sweep:
                cases.append(case('%s, threads %s' % (name, threads_label(threads)), 'threads',
                                  'train', threads=list(threads), build=name, jit=jit))
    if 'batch' in sections:
        for batch in sorted({32, batch_size}):
            cases.append(case('train, batch %d' % batch, 'batch', 'train', batch=batch, jit=jit))
    if 'eval' in sections:
        for batch in sorted({32, batch_size}):
            cases.append(case('evaluate, batch %d' % batch, 'eval', 'eval', batch=batch, jit=jit))
    if 'datagen' in sections:
        cases.append(case("blog's ImageDataGenerator alone, batch 32", 'datagen', 'datagen'))
        if not any(c['section'] == 'batch' and c['spec']['batch'] == 32 for c in cases):
            cases.append(case('train, batch 32', 'batch', 'train', jit=jit))
    if 'workers' in sections:
        cases.append(case('fit_generator, 1 thread (Keras default)', 'workers', 'workers',
                          nb_worker=1, pickle_safe=False, jit=jit))
        cases.append(case('fit_generator, nb_worker=2, pickle_safe', 'workers', 'workers',
                          nb_worker=2, pickle_safe=True, jit=jit))
    if 'towers' in sections:
        cases.append(case('plain model (no make_parallel)', 'towers', 'train', jit=jit))
        for towers in (1, 2, 4):
            cases.append(case('make_parallel, %d tower%s on CPU devices'
                              % (towers, '' if towers == 1 else 's'), 'towers', 'train',
                              towers=towers, cpu_devices=4, jit=jit))
        # One tower per core, each op on one thread: the fastest tower layout found here.
        cases.append(case('make_parallel, 2 towers on CPU devices, threads 1/2', 'towers',
                          'train', towers=2, cpu_devices=2, threads=[1, 2], jit=jit))
    if 'overhead' in sections:
        cases.append(case('fixed cost of a step: GAP + Dense model', 'overhead', 'overhead',
                          jit=jit))
    for c in cases:
        c['spec']['threads_label'] = threads_label(c['spec']['threads'])
    return cases


def run_case(c, python, settings):
    spec = dict(c['spec'], steps=settings['steps'], warmup=settings['warmup'],
                repeats=settings['repeats'])
    if spec['kind'] in ('datagen', 'overhead'):
        spec['steps'] *= 10  # cheap: more batches for a steadier figure
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT
    if c['build'] != 'stock':
        for key, value in MKL_ENV.items():
            env.setdefault(key, value)
    cmd = [python, os.path.abspath(__file__), '--worker', json.dumps(spec)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    # The last two lines: the exception, and the source line that raised it.
    tail = ' / '.join(l.strip() for l in (proc.stderr.strip().splitlines() or ['no output'])[-2:])
    raise RuntimeError('case %r failed (exit %d): %s' % (c['name'], proc.returncode, tail))


def summarize(results):
    """Median and spread of images/s over every repeat of every round."""
    rates = sorted(r['images_per_repeat'] / s for r in results for s in r['seconds'])
    n = len(rates)
    median = rates[n // 2] if n % 2 else (rates[n // 2 - 1] + rates[n // 2]) / 2.
    return {'median': median, 'min': rates[0], 'max': rates[-1], 'n': n,
            'spread_pct': 100. * (rates[-1] - rates[0]) / median}


# ---------------------------------------------------------------------------------------------
# The report.

def markdown(report):
    m = report['machine']
    lines = ['# tools/bench.py, %s' % report['started'], '',
             '- Machine: %s, %d logical CPUs, %s MHz (from /proc/cpuinfo), GPUs: %s'
             % (m['cpu'], m['cores'], m['mhz'], ', '.join(report['gpus']) or 'none'),
             '- Peak: %s GFLOP/s = %d cores x %.3f GHz x %d FLOP/cycle, %s'
             % ('%.1f' % report['peak_gflops'] if report['peak_gflops'] else 'unknown',
                m['cores'], (m['mhz'] or 0) / 1000., report['flops_per_cycle'], report['isa']),
             '- FLOPs per image (counted from the layers): %s GFLOP forward, %s GFLOP training'
             % tuple('%.3f' % (f / 1e9) if f else '?' for f in (report['flops_forward'],
                                                              report['flops_training'])),
             '- Settings: %(repeats)d repeats of %(steps)d steps after %(warmup)d warm-up steps, '
             '%(rounds)d round(s); spread = (max - min) / median over all repeats'
             % report['settings'],
             '- Command: `%s`' % report['command'], '']
    for name, info in sorted(report['builds'].items()):
        lines.append('- Build `%s`: %s %s, MKL %s; python %s, keras %s, numpy %s'
                     % (name, info['distribution'], info['versions']['tensorflow'],
                        'on' if info['mkl'] else 'off', info['versions']['python'],
                        info['versions']['keras'], info['versions']['numpy']))
    lines.append('')
    for section in SECTIONS:
        rows = [r for r in report['cases'] if r['section'] == section]
        if not rows:
            continue
        lines += ['## %s' % section, '',
                  '| case | build | threads (intra/inter) | XLA | batch | images/s (median) '
                  '| min-max | spread | GFLOP/s | % of peak | vs first row |',
                  '|---|---|---|---|---:|---:|---|---:|---:|---:|---:|']
        base = next((r['images_per_s']['median'] for r in rows if 'images_per_s' in r), None)
        for r in rows:
            if 'images_per_s' not in r:
                lines.append('| %s | %s | %s | | %d | failed: %s | | | | | |'
                             % (r['name'], r['build'], r['threads'], r['batch'],
                                r.get('error', 'not run yet')))
                continue
            s = r['images_per_s']
            gflops = r.get('gflops')
            lines.append('| %s | %s | %s | %s | %d | %.1f | %.1f-%.1f | %.0f%% | %s | %s | %+.0f%% |'
                         % (r['name'], r['build'], r['threads'] if r['kind'] != 'datagen' else '-',
                            '-' if r['kind'] == 'datagen' else 'on' if r['xla'] else 'off',
                            r['batch'], s['median'],
                            s['min'], s['max'], s['spread_pct'],
                            '%.1f' % gflops if gflops else '',
                            '%.0f%%' % r['peak_pct'] if r.get('peak_pct') else '',
                            100. * (s['median'] / base - 1)))
        extra = report.get('notes', {}).get(section)
        if extra:
            lines += [''] + extra
        lines.append('')
    return '\n'.join(lines)


def thread_pairs(text):
    try:
        pairs = tuple(tuple(int(n) for n in item.split('/')) for item in text.split(','))
    except ValueError:
        pairs = ()
    if not pairs or any(len(p) != 2 or p[0] < 0 for p in pairs):
        raise argparse.ArgumentTypeError('expected INTRA/INTER pairs like 0/0,2/1, got %r' % text)
    return pairs


def main(argv=None):
    p = Parser(prog='tools/bench.py', allow_abbrev=False,
               description=__doc__.split('\n\n')[0],
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--batch-size', type=positive_int, default=128,
                   help='the second batch size for the batch and eval sections (default 128)')
    p.add_argument('--only', default=','.join(SECTIONS), metavar='SECTIONS',
                   help='comma-separated sections to run (default: all): %s' % ', '.join(SECTIONS))
    p.add_argument('--build', action='append', default=[], metavar='NAME=PYTHON',
                   help='another interpreter with another TensorFlow build, timed in the '
                        'headline section, e.g. mkl=.venv-mkl/bin/python')
    p.add_argument('--repeats', type=positive_int, default=5)
    p.add_argument('--steps', type=positive_int, default=10, help='steps per repeat')
    p.add_argument('--warmup', type=positive_int, default=3, help='untimed steps first')
    p.add_argument('--rounds', type=positive_int, default=1,
                   help='run the whole case list this many times in turn (default 1)')
    p.add_argument('--jit', choices=('auto', 'off'), default='auto',
                   help="XLA outside the headline: auto is allconvnet.py's --jit auto for the "
                        "blog's full run (on where no GPU is visible), off is --jit off "
                        "(default auto)")
    p.add_argument('--threads', type=thread_pairs, default=THREAD_SWEEP, metavar='PAIRS',
                   help='the thread section\'s intra/inter pairs, e.g. 0/0,2/1 (default: %s)'
                        % ','.join('%d/%d' % t for t in THREAD_SWEEP))
    p.add_argument('--out', default=None, help='directory for bench.json and bench.md')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return run_worker(args.worker)

    sections = [s.strip() for s in args.only.split(',') if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        p.error('--only: unknown section(s) %s; choose from %s'
                % (', '.join(unknown) or '(none given)', ', '.join(SECTIONS)))
    builds = {'stock': sys.executable}
    for item in args.build:
        name, sep, python = item.partition('=')
        if not sep or not name or not python or name == 'stock':
            p.error("--build: expected NAME=PYTHON with NAME not 'stock', got %r" % item)
        if not os.access(python, os.X_OK):
            p.error('--build %s: %s is not an executable interpreter' % (name, python))
        builds[name] = python
    out = args.out or os.path.join(ROOT, 'logs', 'bench',
                                   time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        p.error('--out: cannot create %s: %s' % (out, e.strerror))

    settings = {'repeats': args.repeats, 'steps': args.steps, 'warmup': args.warmup,
                'rounds': args.rounds, 'jit': args.jit}
    cases = plan(sections, args.batch_size, [b for b in builds if b != 'stock'],
                 jit=None if args.jit == 'auto' else False, sweep=args.threads)
    results = dict((i, []) for i in range(len(cases)))
    failures = {}
    build_infos = {}
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    command = ' '.join(['python tools/bench.py'] + list(sys.argv[1:] if argv is None else argv))
    total = len(cases) * args.rounds
    done = 0
    try:
        for rnd in range(args.rounds):
            for i, c in enumerate(cases):
                done += 1
                print('[%d/%d] %s (%s, build %s) ...' % (done, total, c['name'], c['section'],
                                                       c['build']), end=' ', flush=True)
                start = time.time()
                try:
                    r = run_case(c, builds[c['build']], settings)
                except RuntimeError as e:
                    # One broken case (a build that will not import, say) costs only itself.
                    print('failed', flush=True)
                    sys.stderr.write('tools/bench.py: error: %s\n' % e)
                    failures[i] = str(e)
                    continue
                results[i].append(r)
                build_infos[c['build']] = dict((k, r[k]) for k in
                                               ('distribution', 'mkl', 'versions', 'gpus'))
                ips = sorted(r['images_per_repeat'] / s for s in r['seconds'])
                print('%.1f images/s (%d repeats, %.0f s)' % (ips[len(ips) // 2], len(ips),
                                                              time.time() - start), flush=True)
                # Written after every case: an interrupted run keeps what it measured.
                write_report(out, report_of(cases, results, failures, build_infos, settings,
                                            started, command), quiet=True)
    except KeyboardInterrupt:
        print('\nInterrupted; the cases measured so far are in %s' % out, file=sys.stderr)
        return 130
    report = report_of(cases, results, failures, build_infos, settings, started, command)
    write_report(out, report)
    return 1 if failures else 0


def report_of(cases, results, failures, build_infos, settings, started, command):
    info = cpu_info()
    peak, per_cycle, isa = peak_gflops(info)
    flops = next(((r[0]['flops_training'], r[0]['flops_forward']) for r in results.values()
                  if r and 'flops_training' in r[0]), (None, None))
    report = {'started': started, 'command': command, 'settings': settings,
              'machine': dict((k, info[k]) for k in ('cpu', 'cores', 'mhz')),
              'gpus': build_infos['stock']['gpus'] if 'stock' in build_infos else [],
              'peak_gflops': peak, 'flops_per_cycle': per_cycle, 'isa': isa,
              'flops_training': flops[0], 'flops_forward': flops[1],
              'builds': build_infos, 'cases': []}
    for i, c in enumerate(cases):
        r = {'name': c['name'], 'section': c['section'], 'build': c['build'],
             'batch': c['spec']['batch'], 'threads': c['spec']['threads_label'],
             'kind': c['spec']['kind']}
        if i in failures:
            r['error'] = failures[i]
        if not results[i]:
            report['cases'].append(r)
            continue
        r.update({'xla': results[i][0]['xla'], 'images_per_s': summarize(results[i]),
                  'seconds': [s for x in results[i] for s in x['seconds']],
                  'images_per_repeat': results[i][0]['images_per_repeat']})
        per_image = {'train': flops[0], 'workers': flops[0], 'eval': flops[1]}.get(r['kind'])
        if per_image:
            r['gflops'] = r['images_per_s']['median'] * per_image / 1e9
            if peak:
                r['peak_pct'] = 100. * r['gflops'] / peak
        report['cases'].append(r)
    report['notes'] = notes(report)
    return report


def write_report(out, report, quiet=False):
    def atomic(name, text):
        path = os.path.join(out, name)
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.replace(path + '.tmp', path)
    atomic('bench.json', json.dumps(report, indent=2, sort_keys=True) + '\n')
    text = markdown(report)
    atomic('bench.md', text + '\n')
    if not quiet:
        print('\n' + text)
        print('Wrote %s and %s' % (os.path.join(out, 'bench.json'),
                                   os.path.join(out, 'bench.md')))


def notes(report):
    """Derived lines under a section's table: the augmentation's share of a step."""
    by = dict(((r['section'], r['name']), r) for r in report['cases'] if 'images_per_s' in r)
    out = {}
    gen = by.get(('datagen', "blog's ImageDataGenerator alone, batch 32"))
    train = by.get(('batch', 'train, batch 32'))
    if gen and train:
        share = train['images_per_s']['median'] / gen['images_per_s']['median']
        out['datagen'] = ['Augmenting a batch takes %.1f%% of the time of a training step on '
                          'the same batch (%.0f vs %.1f images/s): augmentation is %s the '
                          'bottleneck.' % (100. * share, gen['images_per_s']['median'],
                                           train['images_per_s']['median'],
                                           'not' if share < 0.5 else 'close to being')]
    return out


if __name__ == '__main__':
    sys.exit(main())
