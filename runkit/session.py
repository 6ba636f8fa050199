"""The TensorFlow session allconvnet.py trains in: its devices, its thread pools and XLA.

The blog never makes a session; Keras 1.2.2 then makes its own with TensorFlow's defaults.
The one setting here that tools/bench.py measured to pay on a CPU-only machine is XLA's
auto-clustering, and only in long runs (docs/performance.md has the tables and the commands);
the thread pools keep TensorFlow's defaults because no other pair measured faster. A GPU run
gets none of this: nothing was measured on a GPU.
"""
import os

import tensorflow as tf

# Lets the session's global_jit_level (below) reach CPU ops; without a jit level it does
# nothing. TensorFlow reads it once, at its first session, so it is set on import.
CPU_JIT_FLAG = '--tf_xla_cpu_global_jit'
if CPU_JIT_FLAG not in os.environ.get('TF_XLA_FLAGS', ''):
    os.environ['TF_XLA_FLAGS'] = (os.environ.get('TF_XLA_FLAGS', '') + ' ' + CPU_JIT_FLAG).strip()

# (intra_op, inter_op). 0 is TensorFlow's "one thread per logical CPU" for each pool.
THREADS = (0, 0)


def gpus_visible():
    """Physical GPUs TensorFlow can use (does not create a session)."""
    return len(tf.config.experimental.list_physical_devices('GPU'))


# XLA compiles the step once per batch shape (15-20 s each here, and a run has up to four:
# the full and the last batch, for training and validation), then trains 6-14% faster.
# --jit auto turns it on for runs of at least this many training images (10 CIFAR-10 epochs,
# about 3 hours here), where the compiling costs about 1% of the run.
JIT_MIN_IMAGES = 500000
JIT_CHOICES = ('auto', 'on', 'off')


def use_jit(choice='auto', deterministic=False, images=None):
    """Whether the session compiles with XLA: `choice` is --jit, `images` the run's training
    images in all (epochs x images per epoch). Never under --deterministic: its reruns and the
    reference curves were made without XLA. `auto` is off on a GPU, where nothing was measured."""
    if deterministic or choice == 'off':
        return False
    if choice == 'on':
        return True
    return not gpus_visible() and images is not None and images >= JIT_MIN_IMAGES


def config(cpu_devices=None, deterministic=False, threads=None, jit=False):
    """The ConfigProto for allconvnet.py's session. `threads` overrides THREADS (benchmarks);
    `jit` is use_jit's answer."""
    # Soft placement stays on (int32 ops have no GPU kernels); a missing GPU is caught by
    # counting the session's devices, not by placement errors.
    proto = tf.ConfigProto(allow_soft_placement=True)
    proto.gpu_options.allow_growth = True
    if cpu_devices:
        proto.device_count['CPU'] = cpu_devices
    intra, inter = THREADS if threads is None else threads
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
    """[(name, (major, minor))] of the GPUs the CUDA driver shows this process, read through
    libcuda itself: cuInit creates no context, so no kernel is compiled yet. [] without a driver."""
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
        cuda.cuDeviceGet(ctypes.byref(device), i)
        cuda.cuDeviceGetName(name, 256, device)
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76 (cuda.h).
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
        gpus.append((name.value.decode(errors='replace'), (major.value, minor.value)))
    return gpus


def newer_gpu_warning(gpus, version=tf.__version__, with_cuda=None):
    """One warning line when a GPU is newer than the official TF 1.15 build's kernels, else None.

    The official wheels are built for CUDA 10.0 with kernels up to compute capability 7.0
    (Volta); NVIDIA's TF1 build says so in its version (1.15.5+nv23.03) and supports Ampere
    and Hopper (docs/docker.md)."""
    if with_cuda is None:
        with_cuda = tf.test.is_built_with_cuda()
    newer = ['GPU %d (%s, compute capability %d.%d)' % (i, name, cc[0], cc[1])
             for i, (name, cc) in enumerate(gpus) if cc >= (8, 0)]
    if not newer or not with_cuda or '+nv' in version:
        return None
    return ('allconvnet.py: warning: %s is newer than the compute capability 7.0 that '
            'TensorFlow %s (the official CUDA 10.0 build) has kernels for: expect the first '
            'start to spend 30 minutes or more compiling them, and possibly '
            'CUBLAS_STATUS_EXECUTION_FAILED; the image built from docker/ngc.Dockerfile '
            '(NVIDIA\'s TF1 build) supports it, docs/docker.md' % (', '.join(newer), version))
