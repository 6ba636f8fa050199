"""runkit/session.py: the session allconvnet.py trains in, and XLA really clustering (or not)."""
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import ROOT
from runkit import session

JIT = tf.OptimizerOptions.ON_1

# Counts the XLA clusters that really ran in one training step of a small conv net.
CLUSTERS = r'''
import sys
import numpy as np
import tensorflow as tf
from runkit import session
x = tf.placeholder(tf.float32, (8, 16, 16, 3))
w = tf.Variable(tf.ones((3, 3, 3, 4)))
loss = tf.reduce_sum(tf.nn.relu(tf.nn.conv2d(x, w, (1, 1, 1, 1), 'SAME') * 2. + 1.))
step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
sess = tf.Session(config=session.config(jit=sys.argv[1] == 'on'))
sess.run(tf.global_variables_initializer())
meta = tf.RunMetadata()
sess.run(step, {x: np.ones((8, 16, 16, 3), 'float32')},
         options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=meta)
print(sum('cluster' in n.node_name for d in meta.step_stats.dev_stats for n in d.node_stats))
'''


def clusters_that_ran(jit):
    env = dict(os.environ)
    env.pop('TF_XLA_FLAGS', None)  # runkit.session must set it itself, on import
    out = subprocess.run([sys.executable, '-c', CLUSTERS, jit], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_jit_on_runs_xla_clusters_and_off_runs_none():
    assert clusters_that_ran('on') > 0
    assert clusters_that_ran('off') == 0


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
    for choice in session.JIT_CHOICES:
        assert session.use_jit(choice, deterministic=True, images=1000 * 50000) is False


def test_deterministic_is_one_thread_in_the_caller_and_no_xla():
    proto = session.config(deterministic=True, jit=True)
    assert (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads) == (1, -1)
    assert proto.graph_options.optimizer_options.global_jit_level == 0


def test_setup_makes_the_session_run_json_records(capsys):
    from types import SimpleNamespace
    from keras import backend as K
    args = SimpleNamespace(jit='on', deterministic=False, train_limit=32, gpus=0,
                           towers_on_cpu=False, seed=None)
    K.clear_session()
    try:
        placed = session.setup(args, {'epochs': 1})
        config = K.get_session()._config
    finally:
        K.clear_session()
    assert placed.xla is True and placed.towers == 1 and placed.build == session.tf_build()
    assert config.graph_options.optimizer_options.global_jit_level == JIT
    assert placed.threads == [config.intra_op_parallelism_threads,
                              config.inter_op_parallelism_threads]
    assert 'XLA on (--jit on)' in capsys.readouterr().out


def test_the_onednn_build_never_compiles_with_xla():
    from runkit import Refused
    assert session.use_jit('auto', images=1000 * 50000, build='mkl') is False
    with pytest.raises(Refused, match='--jit on'):
        session.use_jit('on', images=1, build='mkl')
    proto = session.config(build='mkl')
    assert (proto.intra_op_parallelism_threads, proto.inter_op_parallelism_threads) == \
        session.mkl_threads()


def test_jit_rejects_other_values(capsys):
    from runkit.cli import parse_args
    with pytest.raises(SystemExit) as e:
        parse_args(['--jit', 'yes'], 32, 1000)
    assert e.value.code == 2
    assert "argument --jit: invalid choice: 'yes'" in capsys.readouterr().err


def test_cuda_probe_reads_the_driver_without_a_session():
    # Whatever this machine has: a list of (name, (major, minor)), and no TensorFlow device made.
    gpus = session.cuda_gpus()
    assert all(isinstance(n, str) and len(cc) == 2 and cc[0] >= 1 for n, cc in gpus)


@pytest.mark.parametrize('gpus,version,with_cuda,warned', [
    ([('NVIDIA A100-SXM4-40GB', (8, 0))], '1.15.5', True, True),
    ([('Tesla V100', (7, 0)), ('NVIDIA H100', (9, 0))], '1.15.5', True, True),
    ([('Tesla V100-SXM2-16GB', (7, 0))], '1.15.5', True, False),
    ([('NVIDIA A100-SXM4-40GB', (8, 0))], '1.15.5+nv23.03', True, False),  # NVIDIA's TF1 build
    ([('NVIDIA A100-SXM4-40GB', (8, 0))], '1.15.5', False, False),  # the CPU wheel uses no GPU
    ([], '1.15.5', True, False),
])
def test_newer_gpu_warning_is_one_line_naming_gpu_and_alternative(gpus, version, with_cuda,
                                                                  warned):
    line = session.newer_gpu_warning(gpus, version, with_cuda)
    assert (line is not None) == warned
    if warned:
        assert '\n' not in line and line.startswith('allconvnet.py: warning:')
        assert 'GPU %d (%s, compute capability' % (len(gpus) - 1, gpus[-1][0]) in line
        assert '30 minutes' in line and 'docker/ngc.Dockerfile' in line
        assert 'Tesla V100' not in line
