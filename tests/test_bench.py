"""tools/bench.py: the FLOP count against TensorFlow's own, the peak arithmetic, the CLI, a real run.

No test here asserts a speed: speeds belong in the benchmark's report, not in pass/fail.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, 'tools', 'bench.py')

from tools import bench  # noqa: E402


def run_bench(*args, **env):
    return subprocess.run([sys.executable, BENCH] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=600,
                          env=dict(os.environ, **env))


def profiler_flops(graph):
    import tensorflow as tf
    opts = tf.profiler.ProfileOptionBuilder.float_operation()
    opts['output'] = 'none'
    return tf.profiler.profile(graph, cmd='op', options=opts)


def test_forward_flops_from_the_layers_equal_tensorflows_count():
    # TF registers FLOPs for Conv2D (2 per multiply-add); counted on a graph of the same
    # convolutions built with a fixed batch of 1, so that every shape is known.
    import tensorflow as tf
    from keras import backend as K
    import allconvnet
    graph = tf.Graph()
    with graph.as_default():
        K.set_session(tf.Session(graph=graph))
        model = allconvnet.build_model()
        forward, training = bench.flops_per_image(model)
        fixed = tf.Graph()
        with fixed.as_default():
            x = tf.placeholder(tf.float32, (1, 32, 32, 3))
            h = x
            for layer in model.layers:
                if hasattr(layer, 'nb_row'):
                    w = tf.zeros((layer.nb_row, layer.nb_col, int(h.shape[-1]), layer.nb_filter))
                    h = tf.nn.conv2d(h, w, (1,) + layer.subsample + (1,),
                                     'SAME' if layer.border_mode == 'same' else 'VALID')
            tf_count = profiler_flops(fixed)
    K.clear_session()
    by_type = dict((c.name, c.total_float_ops) for c in tf_count.children)
    ours_conv = sum(2 * l.output_shape[1] * l.output_shape[2] * l.nb_filter * l.nb_row * l.nb_col
                    * l.input_shape[-1] for l in model.layers if hasattr(l, 'nb_row'))
    assert by_type['Conv2D'] == ours_conv
    # Biases and the elementwise layers add under 1%; training is about three forward passes.
    assert ours_conv < forward < 1.01 * ours_conv
    assert 2.9 * forward < training < 3 * forward
    assert abs(training / 1e9 - 1.68) < 0.01


def test_peak_is_cores_times_ghz_times_flops_per_cycle():
    info = {'cores': 2, 'mhz': 2500., 'flags': ['sse', 'avx', 'avx2', 'fma']}
    assert bench.peak_gflops(info)[:2] == (160., 32)
    assert bench.flops_per_cycle(['sse', 'avx'])[0] == 16
    assert bench.flops_per_cycle(['avx512f', 'avx2', 'fma'])[0] == 64
    assert bench.peak_gflops(dict(info, mhz=None))[0] is None


def test_summary_is_median_and_spread_of_every_repeat():
    s = bench.summarize([{'images_per_repeat': 100, 'seconds': [1., 2.]},
                         {'images_per_repeat': 100, 'seconds': [4.]}])
    assert (s['median'], s['min'], s['max'], s['n']) == (50., 25., 100., 3)
    assert s['spread_pct'] == 150.


@pytest.mark.parametrize('args, message', [
    (['--only', 'train,nosuch'], "--only: unknown section(s) nosuch, train"),
    (['--build', 'mkl'], "--build: expected NAME=PYTHON"),
    (['--build', 'mkl=/nonexistent/python'], 'is not an executable interpreter'),
    (['--repeats', '0'], 'must be 1 or more'),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    r = run_bench(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_short_run_writes_json_and_markdown_with_the_machine(tmp_path):
    out = str(tmp_path / 'bench')
    # --jit off: XLA's compiling would double this test's time and prove nothing more here.
    r = run_bench('--only', 'datagen', '--repeats', '2', '--steps', '1', '--warmup', '1',
                  '--jit', 'off', '--out', out)
    assert r.returncode == 0, r.stderr
    report = json.load(open(os.path.join(out, 'bench.json')))
    names = [c['name'] for c in report['cases']]
    assert names == ["blog's ImageDataGenerator alone, batch 32", 'train, batch 32']
    for c in report['cases']:
        assert c['images_per_s']['n'] == 2 and c['images_per_s']['median'] > 0
        assert len(c['seconds']) == 2
    train = report['cases'][1]
    assert train['xla'] is False and report['settings']['jit'] == 'off'
    assert train['gflops'] == pytest.approx(
        train['images_per_s']['median'] * report['flops_training'] / 1e9)
    assert report['builds']['stock']['versions']['keras'] == '1.2.2'
    assert report['machine']['cores'] >= 1
    md = open(os.path.join(out, 'bench.md')).read()
    assert report['machine']['cpu'] in md and 'Augmenting a batch takes' in md
    assert 'train, batch 32' in r.stdout


def test_failing_cases_are_named_reported_and_exit_1(tmp_path):
    # A Keras backend that does not exist: every worker fails on import, for real.
    out = str(tmp_path / 'bench')
    r = run_bench('--only', 'datagen', '--repeats', '1', '--steps', '1', '--warmup', '1',
                  '--out', out, KERAS_BACKEND='nosuch')
    assert r.returncode == 1
    assert "case \"blog's ImageDataGenerator alone, batch 32\" failed (exit 1)" in r.stderr
    assert "assert _backend in {'theano', 'tensorflow'} / AssertionError" in r.stderr
    report = json.load(open(os.path.join(out, 'bench.json')))
    assert [('error' in c, 'images_per_s' in c) for c in report['cases']] == [(True, False)] * 2
    assert '| failed: case' in open(os.path.join(out, 'bench.md')).read()
