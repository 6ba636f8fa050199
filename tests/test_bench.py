"""tools/bench.py: the FLOP count against TensorFlow's own, the peak arithmetic, the CLI, real runs.

No test here asserts a speed: speeds belong in the benchmark's report, not in pass/fail.
"""
import json
import os

import pytest

from tools import bench


def test_forward_flops_from_the_layers_equal_tensorflows_count():
    # TF registers FLOPs for Conv2D (2 per multiply-add); counted on a graph of the same
    # convolutions built with a fixed batch of 1, so that every shape is known.
    import tensorflow as tf
    from keras import backend as K
    import allconvnet
    from runkit import recipes
    graph = tf.Graph()
    with graph.as_default():
        K.set_session(tf.Session(graph=graph))
        model = allconvnet.build_model(recipes.RECIPES['blog'])
        forward, training = bench.flops_per_image(model)
        fixed = tf.Graph()
        with fixed.as_default():
            h = tf.placeholder(tf.float32, (1, 32, 32, 3))
            for layer in model.layers:
                if hasattr(layer, 'nb_row'):
                    w = tf.zeros((layer.nb_row, layer.nb_col, int(h.shape[-1]), layer.nb_filter))
                    h = tf.nn.conv2d(h, w, (1,) + layer.subsample + (1,),
                                     'SAME' if layer.border_mode == 'same' else 'VALID')
            opts = tf.profiler.ProfileOptionBuilder.float_operation()
            opts['output'] = 'none'
            tf_count = tf.profiler.profile(fixed, cmd='op', options=opts)
    K.clear_session()
    by_type = {c.name: c.total_float_ops for c in tf_count.children}
    ours_conv = sum(2 * l.output_shape[1] * l.output_shape[2] * l.nb_filter * l.nb_row * l.nb_col
                    * l.input_shape[-1] for l in model.layers if hasattr(l, 'nb_row'))
    assert by_type['Conv2D'] == ours_conv
    # Biases and the elementwise layers add under 1%; training is about three forward passes.
    assert ours_conv < forward < 1.01 * ours_conv
    assert 2.9 * forward < training < 3 * forward
    assert abs(training / 1e9 - 1.68) < 0.01


def test_peak_is_cores_times_ghz_times_flops_per_cycle():
    machine = {'cores': 2, 'mhz': 2500., 'flags': ['sse', 'avx', 'avx2', 'fma']}
    assert bench.peak_gflops(machine)[:2] == (160., 32)
    assert bench.flops_per_cycle(['sse', 'avx'])[0] == 16
    assert bench.flops_per_cycle(['avx512f', 'avx2', 'fma'])[0] == 64
    assert bench.peak_gflops(dict(machine, mhz=None))[0] is None


def test_summary_is_median_and_spread_of_every_repeat_of_every_round():
    s = bench.summarize([{'images_per_repeat': 100, 'seconds': [1., 2.]},
                         {'images_per_repeat': 100, 'seconds': [4.]}])
    assert (s['median'], s['min'], s['max'], s['n']) == (50., 25., 100., 3)
    assert s['spread_pct'] == 150.


@pytest.mark.parametrize('args, message', [
    (['--only', 'train,nosuch'], "argument --only: 'train,nosuch': give a comma-separated list"),
    (['--build', 'mkl'], "argument --build: 'mkl': write KEY=VALUE"),
    (['--build', 'mkl=/nonexistent/python'], 'is not an executable interpreter'),
    (['--build', 'stock=/bin/sh'], "'stock' is this interpreter"),
    (['--repeats', '0'], 'must be 1 or more'),
    (['--threads', '2'], 'expected INTRA/INTER pairs'),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert message in err and err.count('\n') == 1


def read_report(out):
    with open(os.path.join(out, 'bench.json')) as f, open(os.path.join(out, 'bench.md')) as md:
        return json.load(f), md.read()


def test_a_run_reports_each_case_and_survives_a_broken_build(tmp_path, capsys):
    # An interpreter that fails as a broken TensorFlow build would: two lines of traceback.
    broken = tmp_path / 'python'
    broken.write_text('#!/bin/sh\necho "  import tensorflow" >&2\necho "ImportError: no" >&2\n'
                      'exit 1\n')
    broken.chmod(0o755)
    out = str(tmp_path / 'bench')
    # --jit off: XLA's compiling would double this test's time and prove nothing more here.
    assert bench.main(['--only', 'threads', '--threads', '0/0', '--build', 'broken=%s' % broken,
                       '--repeats', '2', '--steps', '1', '--warmup', '1', '--jit', 'off',
                       '--out', out]) == 1
    printed = capsys.readouterr()
    assert "case 'broken, threads 0/0' failed (exit 1): import tensorflow / ImportError: no" \
        in printed.err
    report, md = read_report(out)
    stock, failed = report['cases']
    assert stock['name'] == 'stock, threads 0/0' and stock['threads'] == '0/0'
    assert stock['images_per_s']['n'] == 2 and len(stock['seconds']) == 2
    assert stock['xla'] is False and report['settings']['jit'] == 'off'
    assert stock['gflops'] == pytest.approx(
        stock['images_per_s']['median'] * report['flops_training'] / 1e9)
    assert stock['peak_pct'] == pytest.approx(100 * stock['gflops'] / report['peak_gflops'])
    assert 'error' in failed and 'images_per_s' not in failed
    assert report['builds']['stock']['versions']['keras'] == '1.2.2'
    assert report['machine']['cpu'] in md and report['machine']['cores'] >= 1
    assert '| stock, threads 0/0 | stock | 0/0 | off | 32 |' in md
    assert "| broken, threads 0/0 | broken | 0/0 |  | 32 | failed: case" in md
    assert 'stock, threads 0/0' in printed.out and 'Wrote' in printed.out


def test_the_datagen_case_times_the_blogs_augmentation():
    # In this process: Keras makes no session for it ('keras'), so none is left behind.
    r = bench.worker({'kind': 'datagen', 'batch': 32, 'steps': 2, 'warmup': 1, 'repeats': 3,
                      'threads': 'keras', 'towers': 0, 'cpu_devices': None})
    assert r['images_per_repeat'] == 64 and len(r['seconds']) == 3
    assert min(r['seconds']) > 0 and 'flops_training' not in r
    assert r['build']['versions']['keras'] == '1.2.2'


def test_the_datagen_section_sets_augmentation_beside_a_training_step():
    cases = bench.plan(['datagen'], 128, [])
    assert [c['name'] for c in cases] == ["blog's ImageDataGenerator alone, batch 32",
                                          'train, batch 32']
    results = [[{'images_per_repeat': 320, 'seconds': [0.1], 'xla': False}],
               [{'images_per_repeat': 320, 'seconds': [10.], 'xla': False,
                 'flops_training': 1.68e9, 'flops_forward': 0.56e9}]]
    report = bench.report_of(cases, results, [None, None], {}, {}, 'now', 'cmd')
    assert report['cases'][1]['gflops'] == pytest.approx(32 * 1.68)
    assert 'Augmenting a batch takes 1.0% of the time of a training step' in \
        report['notes']['datagen'][0]


def test_rounds_run_the_whole_list_in_turn_and_pool_their_repeats(tmp_path, monkeypatch):
    ran = []

    def run_case(c, python, settings):
        ran.append(c['name'])
        versions = {'tensorflow': '1.15.5', 'python': '3.7', 'keras': '1.2.2', 'numpy': '1.18'}
        return {'images_per_repeat': 32, 'seconds': [1., 2.], 'xla': False,
                'build': {'distribution': 'tensorflow', 'mkl': False, 'versions': versions,
                          'gpus': []}}
    monkeypatch.setattr(bench, 'run_case', run_case)
    out = str(tmp_path / 'bench')
    assert bench.main(['--only', 'batch', '--rounds', '2', '--out', out]) == 0
    assert ran == ['train, batch 32', 'train, batch 128'] * 2
    report, _ = read_report(out)
    assert [c['images_per_s']['n'] for c in report['cases']] == [4, 4]
