"""The TensorFlow session allconvnet.py trains in: its devices, its thread pools and XLA.

The blog never makes a session; Keras 1.2.2 then makes its own with TensorFlow's defaults.
What tools/bench.py measured to pay on a CPU-only machine (docs/performance.md has the tables
and the commands): with the stock build, XLA's auto-clustering in long runs, and TensorFlow's
default thread pools; with Intel's oneDNN build (setup.sh's TF_BUILD=mkl), one inter-op
thread, an intra-op thread per core and Intel's OpenMP settings below, never XLA. A GPU run
gets none of this: nothing was measured on a GPU.
"""
import os
import random
from types import SimpleNamespace

import numpy as np
import tensorflow as tf
from keras import backend as K

from runkit.cli import JIT_MIN_IMAGES
from runkit.errors import Refused, warn

# Lets the session's global_jit_level (below) reach CPU ops; without a jit level it does
# nothing. TensorFlow reads it once, at its first session.
CPU_JIT_FLAG = '--tf_xla_cpu_global_jit'

# (intra_op, inter_op). 0 is TensorFlow's "one thread per logical CPU" for each pool.
THREADS = (0, 0)


def tf_build():
    """'mkl' for Intel's oneDNN build of TensorFlow (intel-tensorflow), else 'stock'."""
    from tensorflow.python import pywrap_tensorflow
    return 'mkl' if pywrap_tensorflow.IsMklEnabled() else 'stock'


# The oneDNN build's OpenMP threads spin for 200 ms after each op by default and then compete
# with TensorFlow's own pools; Intel's guidance for TF 1.x, measured best here. Read when the
# OpenMP runtime starts, at the first op; a value the user exported wins.
MKL_ENV = {'KMP_BLOCKTIME': '1', 'KMP_AFFINITY': 'granularity=fine,compact,1,0'}


def runtime_environment(build):
    """The variables TensorFlow and OpenMP read once, at the first session and the first op;
    config() sets them, since every session is made from its answer."""
    if CPU_JIT_FLAG not in os.environ.get('TF_XLA_FLAGS', ''):
        os.environ['TF_XLA_FLAGS'] = (os.environ.get('TF_XLA_FLAGS', '') + ' ' +
                                      CPU_JIT_FLAG).strip()
    if build == 'mkl':
        for name, value in MKL_ENV.items():
            os.environ.setdefault(name, value)


def mkl_threads():
    """(intra_op, inter_op) for the oneDNN build: a thread per usable core, one inter-op."""
    return (len(os.sched_getaffinity(0)), 1)


def gpus_visible():
    """Physical GPUs TensorFlow can use (does not create a session)."""
    return len(tf.config.experimental.list_physical_devices('GPU'))




def use_jit(choice='auto', deterministic=False, images=None, build='stock'):
    """Whether the session compiles with XLA: `choice` is --jit, `images` the run's training
    images in all (epochs x images per epoch). Never under --deterministic: its reruns and the
    reference curves were made without XLA. `auto` is off on a GPU, where nothing was measured,
    and with the oneDNN build, where XLA measured 17.9 images/s against about 100 without."""
    if deterministic or choice == 'off':
        return False
    if build == 'mkl':
        if choice == 'on':
            raise Refused('--jit on: XLA and the oneDNN build (intel-tensorflow) together '
                          'trained 5 times slower than either alone; use --jit off, or '
                          'TF_BUILD=stock ./setup.sh')
        return False
    if choice == 'on':
        return True
    return not gpus_visible() and images is not None and images >= JIT_MIN_IMAGES


def config(cpu_devices=None, deterministic=False, jit=False, build='stock', gpus=None):
    """The ConfigProto for allconvnet.py's session, with runtime_environment() set. `jit` is
    use_jit's answer; `gpus` N gives the session CUDA's GPUs 0..N-1 only (0: none), None all
    it sees."""
    runtime_environment(build)
    # Soft placement stays on (int32 ops have no GPU kernels); a missing GPU is caught by
    # counting the session's devices, not by placement errors.
    proto = tf.ConfigProto(allow_soft_placement=True)
    proto.gpu_options.allow_growth = True
    if cpu_devices:
        proto.device_count['CPU'] = cpu_devices
    # TensorFlow opens every GPU it sees, so the GPUs a run leaves out must be hidden from the
    # session itself: else --gpus 0 would still place the model on /gpu:0, and --gpus 1 on a
    # host with an older and a newer GPU would still open the newer one.
    if gpus == 0:
        proto.device_count['GPU'] = 0
    elif gpus:
        proto.gpu_options.visible_device_list = ','.join(str(i) for i in range(gpus))
    intra, inter = mkl_threads() if build == 'mkl' else THREADS
    if deterministic:
        # Negative: every op runs in the calling thread, one after another. With 1, the caller
        # and one pool thread still overlap, and Keras 1.2.2's weight updates race with the
        # reads of the same weights in that step: reruns drifted by up to 2e-6 in 3 epochs.
        intra, inter = 1, -1
    proto.intra_op_parallelism_threads = intra
    proto.inter_op_parallelism_threads = inter
    if jit and not deterministic:
        proto.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return proto


def cuda_gpus():
    """[(name, (major, minor))] of the GPUs the CUDA driver shows this process, in CUDA's order
    (the ordinals /gpu:N and --gpus count, after CUDA_VISIBLE_DEVICES), read through libcuda
    itself: cuInit makes no context, so nothing is compiled or allocated yet. [] without a
    driver; a GPU the driver cannot describe is left out."""
    import ctypes
    try:
        cuda = ctypes.CDLL('libcuda.so.1')
    except OSError:
        return []
    count = ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    gpus = []
    for i in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76 (cuda.h).
        if (cuda.cuDeviceGet(ctypes.byref(device), i) != 0
                or cuda.cuDeviceGetName(name, 256, device) != 0
                or cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device) != 0
                or cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) != 0):
            continue
        gpus.append((name.value.decode(errors='replace'), (major.value, minor.value)))
    return gpus


# The official tensorflow-gpu 1.15.5 wheel is built for CUDA 10.0 with SASS and PTX up to
# compute capability 7.0; every public report of it on 8.0 or newer ends, after a PTX JIT of
# 30 minutes or more, in CUBLAS_STATUS_EXECUTION_FAILED or a hang (docs/docker.md).
NEWEST_KERNELS = (7, 0)
FIRST_REFUSED = (8, 0)
# What the refusal asks a user to type; NVIDIA's TF1 build has kernels for those GPUs.
NGC_BUILD = 'docker build -f docker/ngc.Dockerfile -t allconvnet .'
# The explicit way past the refusal; run.json records its use (newer_gpu_override).
ALLOW_NEWER_GPU = 'ALLCONVNET_ALLOW_NEWER_GPU'


def gpus_used(gpus, wanted):
    """[(CUDA ordinal, name, (major, minor))] of the GPUs a run with --gpus `wanted` trains on:
    all of them for 'all', ordinals 0..N-1 for N (the session sees only those), none for 0."""
    listed = [(i, name, cc) for i, (name, cc) in enumerate(gpus)]
    return listed if wanted == 'all' else listed[:wanted]


def newer_gpus(used, version=None, with_cuda=None):
    """'GPU N (name, compute capability X.Y)' for each GPU of `used` that the official CUDA 10.0
    build has no kernels for; [] for NVIDIA's TF1 build (its version says so, 1.15.5+nv23.03),
    which has them, and for a build without CUDA, which trains on the CPU."""
    version = tf.__version__ if version is None else version
    if with_cuda is None:
        with_cuda = tf.test.is_built_with_cuda()
    if not with_cuda or '+nv' in version:
        return []
    return ['GPU %d (%s, compute capability %d.%d)' % (i, name, cc[0], cc[1])
            for i, name, cc in used if tuple(cc) >= FIRST_REFUSED]


def newer_gpu_refusal(newer, version=None, mixed=False):
    """The one line that refuses `newer` (newer_gpus' list); `mixed` when older GPUs would
    train too, which CUDA_VISIBLE_DEVICES or --gpus can keep alone."""
    version = tf.__version__ if version is None else version
    alone = ', or leave them out (CUDA_VISIBLE_DEVICES, --gpus N)' if mixed else ''
    return ('%s %s too new for TensorFlow %s\'s official CUDA 10.0 build, whose kernels stop '
            'at compute capability %d.%d: every public report of this build on %d.%d or newer '
            'ends in CUBLAS_STATUS_EXECUTION_FAILED or a hang, after a JIT compile of 30 minutes '
            'or more. Build the image on NVIDIA\'s TF1 build instead: %s (docs/docker.md)%s; '
            '%s=1 tries anyway'
            % (', '.join(newer), 'is' if len(newer) == 1 else 'are', version,
               NEWEST_KERNELS[0], NEWEST_KERNELS[1], FIRST_REFUSED[0], FIRST_REFUSED[1],
               NGC_BUILD, alone, ALLOW_NEWER_GPU))


def check_newer_gpus(used, environ=os.environ, version=None, with_cuda=None):
    """None, or run.json's record of the override that let newer GPUs train; Refused when
    newer GPUs would train without it."""
    newer = newer_gpus(used, version, with_cuda)
    if not newer:
        return None
    value = environ.get(ALLOW_NEWER_GPU, '')
    if value in ('', '0'):
        raise Refused(newer_gpu_refusal(newer, version, mixed=len(newer) < len(used)))
    warn('allconvnet.py', '%s=%s: training on %s anyway, where the official CUDA 10.0 build '
         'has no kernels (expect a long JIT compile, then possibly '
         'CUBLAS_STATUS_EXECUTION_FAILED); run.json records this'
         % (ALLOW_NEWER_GPU, value, ', '.join(newer)))
    return {'variable': ALLOW_NEWER_GPU, 'value': value, 'gpus': newer}


def check_gpus(args):
    """(the GPUs the driver shows, run.json's override record or None), read before anything
    makes a CUDA context or downloads: a GPU the official build has no kernels for is refused
    here, in seconds, not after the download and a long JIT (check_newer_gpus)."""
    gpus = cuda_gpus()
    # --towers-on-cpu puts the towers on CPU devices, but the session still opens every GPU.
    asked = 'all' if args.towers_on_cpu else args.gpus
    return gpus, check_newer_gpus(gpus_used(gpus, asked))


def setup(args, recipe, checked):
    """Make allconvnet.py's session and say where it trains: a namespace with `towers` and
    `device` for make_parallel, and `xla`, `build`, `threads`, `devices` and
    `newer_gpu_override` for run.json. `checked` is check_gpus' answer."""
    # Deprecation notices about Keras 1.2.2's calls would bury the progress bar.
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    gpus, override = checked
    asked = 'all' if args.towers_on_cpu else args.gpus
    session_gpus = None
    if asked == 0:
        session_gpus = 0
    elif asked != 'all' and gpus:
        # Only what the driver showed: a longer list fails the session outright, this one
        # lets the count below refuse --gpus N in the usual one line.
        session_gpus = min(asked, len(gpus))
    build = tf_build()
    jit = use_jit(args.jit, args.deterministic,
                  recipe['epochs'] * min(args.train_limit or 50000, 50000), build)
    proto = config(cpu_devices=max(args.gpus, 1) if args.towers_on_cpu else None,
                   deterministic=args.deterministic, jit=jit, build=build, gpus=session_gpus)
    K.set_session(tf.Session(config=proto))
    if jit:
        print('XLA on (--jit %s): each new batch shape compiles once, 15-20 s on a 2-core CPU'
              % args.jit)
    device = '/cpu:%d' if args.towers_on_cpu else '/gpu:%d'
    kind = 'CPU device' if args.towers_on_cpu else 'GPU'
    # The towers' devices: the virtual CPUs the session was given, or the GPUs it sees
    # (make_parallel checks the count again for callers that make no session of ours).
    visible = max(args.gpus, 1) if args.towers_on_cpu else gpus_visible()
    wanted = visible if args.gpus == 'all' else args.gpus
    if wanted > visible:
        raise Refused('--gpus %d asks for more %ss than the %d visible' % (wanted, kind, visible))
    towers = max(wanted, 1)  # --gpus 0: the plain model on the CPU
    if towers > 1:
        print('Training on %d %ss via make_parallel (%d visible)' % (towers, kind, visible))
    elif wanted == 1:
        print('Training on 1 %s, no make_parallel needed (%d visible)' % (kind, visible))
    else:
        print('Training on the CPU, no make_parallel (%d GPUs visible%s)'
              % (visible, '' if args.gpus == 'all' else ', --gpus 0'))
    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
        tf.set_random_seed(args.seed)
    return SimpleNamespace(
        towers=towers, device=device, xla=jit, build=build, newer_gpu_override=override,
        threads=[proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads],
        devices=[device % i for i in range(towers)] if towers > 1 else ['default'])
