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
    (['--build', 'mkl'], "argument --build: 'mkl': write KEY=VALUE"),
    (['--build', 'mkl=/nonexistent/python'], 'is not an executable interpreter'),
    (['--build', 'stock=/bin/sh'], "'stock' is this interpreter"),
    (['--peer', 'torch'], "argument --peer: 'torch': write KEY=VALUE"),
    (['--repeats', '0'], 'must be 1 or more'),
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


def test_a_run_reports_each_case_and_survives_a_broken_build(tmp_path, capsys, monkeypatch):
    # An interpreter that fails as a broken TensorFlow build would: two lines of traceback.
    broken = tmp_path / 'python'
    broken.write_text('#!/bin/sh\necho "  import tensorflow" >&2\necho "ImportError: no" >&2\n'
                      'exit 1\n')
    broken.chmod(0o755)
    out = str(tmp_path / 'bench')
    # One real case, --jit off: the blog's session and XLA's compiling would triple this test's
    # time and prove nothing more here.
    headline = bench.plan
    monkeypatch.setattr(bench, 'plan', lambda builds, peers: [
        c for c in headline(builds, peers)
        if c['name'] == 'allconvnet.py --jit off' or c['build'] == 'broken'])
    assert bench.main(['--build', 'broken=%s' % broken, '--repeats', '2', '--steps', '1',
                       '--warmup', '1', '--out', out]) == 1
    printed = capsys.readouterr()
    assert ('case "broken build, allconvnet.py\'s defaults" failed (exit 1): '
            'import tensorflow / ImportError: no') in printed.err
    report, md = read_report(out)
    stock, failed = report['cases']
    assert stock['name'] == 'allconvnet.py --jit off' and stock['error'] is None
    assert stock['threads'].startswith('TF default (allconvnet.py): ')
    assert stock['images_per_s']['n'] == 2 and len(stock['seconds']) == 2
    assert stock['xla'] is False
    assert stock['gflops'] == pytest.approx(
        stock['images_per_s']['median'] * report['flops_training'] / 1e9)
    assert stock['peak_pct'] == pytest.approx(100 * stock['gflops'] / report['peak_gflops'])
    assert failed['error'].startswith('case') and 'images_per_s' not in failed
    assert report['builds']['stock']['versions']['keras'] == '1.2.2'
    assert report['machine']['cpu'] in md and report['machine']['cores'] >= 1
    assert '| allconvnet.py --jit off | stock | TF default (allconvnet.py): ' in md
    assert '| broken | TF default (allconvnet.py) |  | 32 | failed: case' in md
    assert 'allconvnet.py --jit off' in printed.out and 'Wrote' in printed.out


def test_rounds_run_the_list_in_turn_and_the_report_is_written_after_every_case(tmp_path,
                                                                                  monkeypatch):
    ran, out = [], str(tmp_path / 'bench')

    def run_case(c, python, settings):
        # What the case before this one left on disk: repeats measured so far, per case.
        on_disk = read_report(out)[0]['cases'] if ran else []
        ran.append((c['name'], [r.get('images_per_s', {}).get('n', 0) for r in on_disk]))
        if len(ran) == 1:
            raise RuntimeError('case failed once')
        versions = {'tensorflow': '1.15.5', 'python': '3.7', 'keras': '1.2.2', 'numpy': '1.18'}
        return {'images_per_repeat': 32, 'seconds': [1., 2.], 'xla': False,
                'build': {'distribution': 'tensorflow', 'mkl': False, 'versions': versions,
                          'gpus': []}}
    monkeypatch.setattr(bench, 'run_case', run_case)
    assert bench.main(['--rounds', '2', '--out', out]) == 1
    assert [name for name, _ in ran] == [c['name'] for c in bench.plan()] * 2
    assert [seen for _, seen in ran[1:4]] == [[0, 0, 0], [0, 2, 0], [0, 2, 2]]
    report, md = read_report(out)
    assert [c['images_per_s']['n'] for c in report['cases']] == [2, 4, 4]
    assert report['cases'][0]['error'] == 'case failed once'
    assert '| 32 | 24.0 | 16.0-32.0 | 67% |' in md and '| +0% |' in md


def test_a_peer_runs_in_the_headline_and_is_timed_as_a_worker_is():
    import sys
    cases = bench.plan(['mkl'], ['fake'])
    names = [(c['name'], c['build']) for c in cases]
    assert ("mkl build, allconvnet.py's defaults", 'mkl') in names
    peer = cases[-1]
    assert peer['build'] == 'fake' and peer['kind'] == 'peer'
    # A real command in a real subprocess, given the spec as its last argument.
    fake = ('%s -c "import json, sys; s = json.loads(sys.argv[1]); print(\'BENCH_RESULT \' + '
            'json.dumps({\'images_per_repeat\': 32 * s[\'steps\'], \'seconds\': [0.5] * '
            's[\'repeats\'], \'xla\': False, \'build\': {}}))"' % sys.executable)
    result = bench.run_case(peer, fake, {'warmup': 1, 'repeats': 3, 'steps': 4})
    assert result['seconds'] == [0.5] * 3 and result['images_per_repeat'] == 128
    assert bench.summarize([result])['median'] == 256
