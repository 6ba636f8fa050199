"""runkit/session.py: the session allconvnet.py trains in, XLA really clustering (or not), and
the refusal of GPUs the official CUDA 10.0 build has no kernels for, through a stand-in driver."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from helpers import ONE_BATCH, ROOT
from runkit import Refused, session
from runkit.cli import JIT_CHOICES

JIT = tf.OptimizerOptions.ON_1

# Counts the XLA clusters that really ran in one training step of a small conv net, in a
# session with XLA off, then in one with it on (one process: one TensorFlow import).
CLUSTERS = r'''
import numpy as np
import tensorflow as tf
from runkit import session
x = tf.placeholder(tf.float32, (8, 16, 16, 3))
w = tf.Variable(tf.ones((3, 3, 3, 4)))
loss = tf.reduce_sum(tf.nn.relu(tf.nn.conv2d(x, w, (1, 1, 1, 1), 'SAME') * 2. + 1.))
step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
def clusters(jit):
    sess = tf.Session(config=session.config(jit=jit))
    sess.run(tf.global_variables_initializer())
    meta = tf.RunMetadata()
    sess.run(step, {x: np.ones((8, 16, 16, 3), 'float32')},
             options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=meta)
    return sum('cluster' in n.node_name for d in meta.step_stats.dev_stats for n in d.node_stats)
print(clusters(False), clusters(True))
'''


def test_jit_on_runs_xla_clusters_and_off_runs_none():
    env = dict(os.environ)
    env.pop('TF_XLA_FLAGS', None)  # session.config must set it itself, before the session
    out = subprocess.run([sys.executable, '-c', CLUSTERS], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    off, on = map(int, out.stdout.split()[-2:])
    assert on > 0 and off == 0, (off, on)


def test_defaults_are_tensorflows_threads_and_no_xla():
    proto = session.config()
    assert (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads) == \
        session.THREADS == (0, 0)
    assert proto.graph_options.optimizer_options.global_jit_level == 0
    assert proto.allow_soft_placement and proto.gpu_options.allow_growth
    assert session.config(jit=True).graph_options.optimizer_options.global_jit_level == JIT


def test_jit_auto_is_on_only_for_long_runs_without_gpus():
    no_gpu = session.gpus_visible() == 0
    assert session.use_jit('auto', images=1000 * 50000) is no_gpu  # the blog's run
    assert session.use_jit('auto', images=session.JIT_MIN_IMAGES) is no_gpu
    assert session.use_jit('auto', images=session.JIT_MIN_IMAGES - 1) is False
    assert session.use_jit('auto', images=None) is False
    assert session.use_jit('on', images=1) is True
    assert session.use_jit('off', images=1000 * 50000) is False
    for choice in JIT_CHOICES:
        assert session.use_jit(choice, deterministic=True, images=1000 * 50000) is False


def test_deterministic_is_one_thread_in_the_caller_and_no_xla():
    proto = session.config(deterministic=True, jit=True)
    assert (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads) == (1, -1)
    assert proto.graph_options.optimizer_options.global_jit_level == 0


def test_setup_makes_the_session_run_json_records(capsys):
    from types import SimpleNamespace
    from keras import backend as K
    # --jit on where the build allows it; the oneDNN build refuses it (another test).
    xla = session.tf_build() == 'stock'
    args = SimpleNamespace(jit='on' if xla else 'auto', deterministic=False, train_limit=32,
                           gpus=0, towers_on_cpu=False, seed=None)
    K.clear_session()
    try:
        placed = session.setup(args, {'epochs': 1}, session.check_gpus(args))
        config = K.get_session()._config
    finally:
        K.clear_session()
    assert placed.xla is xla and placed.towers == 1 and placed.build == session.tf_build()
    assert (config.graph_options.optimizer_options.global_jit_level == JIT) is xla
    assert placed.threads == [config.intra_op_parallelism_threads,
                              config.inter_op_parallelism_threads]
    assert ('XLA on (--jit on)' in capsys.readouterr().out) is xla


def test_the_onednn_build_never_compiles_with_xla():
    from runkit import Refused
    assert session.use_jit('auto', images=1000 * 50000, build='mkl') is False
    with pytest.raises(Refused, match='--jit on'):
        session.use_jit('on', images=1, build='mkl')
    proto = session.config(build='mkl')
    assert (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads) == \
        session.mkl_threads()


A100 = ('NVIDIA A100-SXM4-40GB', (8, 0))
RTX4090 = ('NVIDIA GeForce RTX 4090', (8, 9))
H100 = ('NVIDIA H100 80GB HBM3', (9, 0))
V100 = ('Tesla V100-SXM2-16GB', (7, 0))
NGC_BUILD = 'docker build -f docker/ngc.Dockerfile -t allconvnet .'


@pytest.mark.parametrize('gpus,wanted,version,with_cuda,refused', [
    ([A100], 'all', '1.15.5', True, ['GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0)']),
    ([V100, H100], 'all', '1.15.5', True,
     ['GPU 1 (NVIDIA H100 80GB HBM3, compute capability 9.0)']),
    ([V100, H100], 1, '1.15.5', True, []),  # --gpus 1: the V100 alone
    ([RTX4090, V100], 0, '1.15.5', True, []),  # --gpus 0: no GPU at all
    ([V100], 'all', '1.15.5', True, []),
    ([A100], 'all', '1.15.5+nv23.03', True, []),  # NVIDIA's TF1 build
    ([A100], 'all', '1.15.5', False, []),  # the CPU wheel uses no GPU
    ([], 'all', '1.15.5', True, []),
])
def test_newer_gpus_are_the_used_ones_the_official_build_has_no_kernels_for(
        gpus, wanted, version, with_cuda, refused):
    assert session.newer_gpus(session.gpus_used(gpus, wanted), version, with_cuda) == refused


def test_the_refusal_is_one_line_with_the_build_command_and_the_override():
    used = session.gpus_used([V100, A100, H100], 'all')
    with pytest.raises(Refused) as e:
        session.check_newer_gpus(used, environ={}, version='1.15.5', with_cuda=True)
    line = str(e.value)
    assert '\n' not in line
    assert 'GPU 1 (NVIDIA A100-SXM4-40GB, compute capability 8.0), GPU 2 (NVIDIA H100 80GB ' \
           'HBM3, compute capability 9.0) are too new' in line
    assert 'Tesla V100' not in line and 'leave them out (CUDA_VISIBLE_DEVICES' in line
    assert NGC_BUILD in line and 'ALLCONVNET_ALLOW_NEWER_GPU=1 tries anyway' in line
    # '0' is no override; the GPUs that would not train are never reason to refuse.
    with pytest.raises(Refused):
        session.check_newer_gpus(used, environ={session.ALLOW_NEWER_GPU: '0'},
                                 version='1.15.5', with_cuda=True)
    assert session.check_newer_gpus(used[:1], environ={}, version='1.15.5',
                                    with_cuda=True) is None


def test_the_override_goes_ahead_and_says_so(capsys):
    record = session.check_newer_gpus(session.gpus_used([A100], 'all'),
                                      environ={session.ALLOW_NEWER_GPU: '1'},
                                      version='1.15.5', with_cuda=True)
    assert record == {'variable': 'ALLCONVNET_ALLOW_NEWER_GPU', 'value': '1',
                      'gpus': ['GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0)']}
    warning = capsys.readouterr().err.strip()
    assert '\n' not in warning and warning.startswith('allconvnet.py: warning: '
                                                      'ALLCONVNET_ALLOW_NEWER_GPU=1: ')


def test_the_session_sees_only_the_gpus_asked_for():
    assert session.config(gpus=2).gpu_options.visible_device_list == '0,1'
    hidden = session.config(gpus=0)
    assert hidden.device_count['GPU'] == 0 and hidden.gpu_options.visible_device_list == ''
    every = session.config()
    assert 'GPU' not in every.device_count and every.gpu_options.visible_device_list == ''


# -- the refusal through the real code path: a stand-in libcuda.so.1 (tests/standin_cuda.py) --

# The suite's TensorFlow is the CPU wheel; the image's is the official CUDA 10.0 build
# (tensorflow-gpu 1.15.5), or NVIDIA's. Python imports sitecustomize from PYTHONPATH at start,
# so allconvnet.py then sees the build STANDIN_TF_BUILD names: a test hook that stays out of
# the project's code.
FAKE_BUILD = '''
import os
import tensorflow as tf
tf.test.is_built_with_cuda = lambda: True
tf.__version__ = {'cuda10': '1.15.5', 'nv': '1.15.5+nv23.03'}[os.environ['STANDIN_TF_BUILD']]
'''


@pytest.fixture(scope='module')
def standin(tmp_path_factory):
    """(folder holding the stand-in libcuda.so.1, folder holding the fake build's
    sitecustomize.py)."""
    import standin_cuda
    root = tmp_path_factory.mktemp('standin')
    fake = root / 'fake-build'
    fake.mkdir()
    (fake / 'sitecustomize.py').write_text(FAKE_BUILD)
    return standin_cuda.build(str(root / 'lib')), str(fake)


@pytest.fixture
def host(monkeypatch):
    """No GPU choice or override of this shell's leaks into the runs below."""
    for name in ('CUDA_VISIBLE_DEVICES', 'ALLCONVNET_ALLOW_NEWER_GPU', 'PYTHONPATH'):
        monkeypatch.delenv(name, raising=False)


def listed(gpus):
    """STANDIN_CUDA_GPUS for [(name, (major, minor))]."""
    return ';'.join('%s=%d.%d' % (name, cc[0], cc[1]) for name, cc in gpus)


def driver(standin, tmp_path, gpus, build='cuda10', **extra):
    """The environment of an allconvnet.py run on a host with `gpus` [(name, (major, minor))]
    and the TensorFlow `build` ('cuda10', 'nv', or None for the suite's own CPU wheel)."""
    lib, fake = standin
    env = {'LD_LIBRARY_PATH': lib, 'STANDIN_CUDA_LOG': str(tmp_path / 'cuda.log'),
           'STANDIN_CUDA_GPUS': listed(gpus)}
    if build:
        env.update(PYTHONPATH=fake, STANDIN_TF_BUILD=build)
    env.update(extra)
    return env


def run_on(jobs, timeout=600):
    """[(CompletedProcess, seconds until the last ended)] of allconvnet.py runs side by side,
    each (args, home, env)."""
    import time
    from helpers import run_side_by_side
    start = time.monotonic()
    done = run_side_by_side(jobs, timeout)
    return [(proc, time.monotonic() - start) for proc in done]


TINY = ['--epochs', '1'] + ONE_BATCH


def error_line(proc):
    """The one `allconvnet.py: error:` line, which must end stderr; exit code 2."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith('allconvnet.py: error:')]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0], \
        proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def test_a_gpu_of_compute_capability_8_is_refused_in_seconds(standin, host, cifar_home,
                                                             tmp_path):
    logdir = tmp_path / 'run'
    (proc, seconds), = run_on([(['--logdir', str(logdir)] + TINY, cifar_home,
                                driver(standin, tmp_path, [A100]))])
    line = error_line(proc)
    assert seconds < 10, '%.1f s' % seconds
    assert 'GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0) is too new' in line, line
    assert NGC_BUILD in line and 'ALLCONVNET_ALLOW_NEWER_GPU=1' in line, line
    # Asked through libcuda itself, once, before any session (none is made: no run.json).
    calls = (tmp_path / 'cuda.log').read_text().split('\n')
    assert calls[:3] == ['cuInit 0', 'cuDeviceGetCount 1', 'cuDeviceGet 0'], calls
    assert 'cuDeviceGetAttribute 75' in calls and 'cuDeviceGetAttribute 76' in calls
    assert calls.count('cuInit 0') == 1
    assert not (logdir / 'run.json').exists()


# The host matrix in one process, one TensorFlow import: the stand-in's cuInit reads
# STANDIN_CUDA_GPUS and CUDA_VISIBLE_DEVICES again at every call, so session.check_gpus, the
# check allconvnet.py makes before the data and the session (the test above runs it end to
# end), asks the real ctypes path about each host in turn, TensorFlow faked by FAKE_BUILD.
HOSTS = r'''
import json, os, sys
import tensorflow as tf
from runkit import Refused, session
from runkit.cli import parse_args
wheel = (tf.__version__, tf.test.is_built_with_cuda)
answers = {}
for name, (gpus, argv, visible, build) in sorted(json.loads(sys.argv[1]).items()):
    os.environ['STANDIN_CUDA_GPUS'] = gpus
    os.environ.pop('CUDA_VISIBLE_DEVICES', None)
    if visible is not None:
        os.environ['CUDA_VISIBLE_DEVICES'] = visible
    tf.__version__, tf.test.is_built_with_cuda = wheel
    if build is not None:
        os.environ['STANDIN_TF_BUILD'] = build
        exec(sys.argv[2])  # FAKE_BUILD
    try:
        session.check_gpus(parse_args(argv + ['--logdir', 'unused']))
        answers[name] = None
    except Refused as e:
        answers[name] = str(e)
print(json.dumps(answers))
'''


def test_refusals_name_the_gpus_that_would_train_and_older_ones_go_ahead(standin, host):
    hosts = {
        'three new': ([A100, RTX4090, H100], ['--gpus', 'all'], None, 'cuda10'),
        'mixed, all': ([V100, A100], ['--gpus', 'all'], None, 'cuda10'),
        'mixed, --gpus 1': ([V100, A100], ['--gpus', '1'], None, 'cuda10'),
        'visible 1': ([A100, V100], ['--gpus', '1'], '1', 'cuda10'),
        'visible 1,0, all': ([A100, V100], ['--gpus', 'all'], '1,0', 'cuda10'),
        'NVIDIA build': ([A100], ['--gpus', '1'], None, 'nv'),
        'CPU wheel': ([H100], ['--gpus', '1'], None, None),
    }  # a V100 alone trains in the test below
    matrix = {name: (listed(gpus), argv, visible, build)
              for name, (gpus, argv, visible, build) in hosts.items()}
    env = dict(os.environ, LD_LIBRARY_PATH=standin[0])
    proc = subprocess.run([sys.executable, '-c', HOSTS, json.dumps(matrix), FAKE_BUILD],
                          cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.splitlines()[-1])
    line = done['three new']
    assert ('GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0), GPU 1 (NVIDIA GeForce RTX '
            '4090, compute capability 8.9), GPU 2 (NVIDIA H100 80GB HBM3, compute capability '
            '9.0) are too new') in line, line
    line = done['mixed, all']
    assert 'GPU 1 (NVIDIA A100-SXM4-40GB, compute capability 8.0) is too new' in line, line
    assert 'V100' not in line and 'CUDA_VISIBLE_DEVICES' in line, line
    # CUDA_VISIBLE_DEVICES=1,0 makes the A100 CUDA's GPU 1, as the real driver would.
    line = done['visible 1,0, all']
    assert 'GPU 1 (NVIDIA A100-SXM4-40GB, compute capability 8.0)' in line and 'V100' not in line
    for name in ('mixed, --gpus 1', 'visible 1', 'NVIDIA build', 'CPU wheel'):
        assert done[name] is None, (name, done[name])


def test_the_override_trains_and_run_json_records_it_and_7_0_trains(standin, host, cifar_home,
                                                                    tmp_path):
    override, plain = tmp_path / 'override', tmp_path / 'plain'
    override.mkdir()
    plain.mkdir()
    done = run_on([
        (['--logdir', str(override / 'run')] + TINY, cifar_home,
         driver(standin, override, [A100], ALLCONVNET_ALLOW_NEWER_GPU='1')),
        (['--logdir', str(plain / 'run')] + TINY, cifar_home, driver(standin, plain, [V100]))])
    for proc, _ in done:
        assert proc.returncode == 0, proc.stderr[-3000:]
    warned = [l for l in done[0][0].stderr.splitlines() if 'ALLCONVNET_ALLOW_NEWER_GPU=1' in l]
    assert len(warned) == 1 and warned[0].startswith('allconvnet.py: warning:'), warned
    assert 'ALLCONVNET_ALLOW_NEWER_GPU' not in done[1][0].stderr
    with open(str(override / 'run' / 'run.json')) as f:
        assert json.load(f)['newer_gpu_override'] == {
            'variable': 'ALLCONVNET_ALLOW_NEWER_GPU', 'value': '1',
            'gpus': ['GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0)']}
    with open(str(plain / 'run' / 'run.json')) as f:
        run = json.load(f)
    assert run['status'] == 'finished' and run['newer_gpu_override'] is None
