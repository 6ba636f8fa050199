"""tools/bench.py: the FLOP count against TensorFlow's own, the peak arithmetic, the CLI, real runs.

No test here asserts a speed: speeds belong in the benchmark's report, not in pass/fail.
"""
import json
import os

import pytest

from runkit import provenance
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


AVX2 = ['sse', 'avx', 'avx2', 'fma']
AVX512 = AVX2 + ['avx512f', 'avx512dq']


def cpu(tmp_path, vendor, family, model, flags):
    """The core bench reads from a /proc/cpuinfo with these fields, two processors long."""
    text = ('processor\t: %%d\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\n'
            'model name\t: a CPU\ncpu MHz\t\t: 2596.124\nflags\t\t: %s\n\n'
            % (vendor, family, model, ' '.join(flags)))
    path = tmp_path / 'cpuinfo'
    path.write_text(text % 0 + text.replace(vendor, 'second') % 1)
    fields = provenance.cpuinfo(str(path))
    assert fields['vendor_id'] == vendor and fields['flags'].split() == flags
    return bench.core_of(fields)


def test_peak_is_cores_times_ghz_times_flops_per_cycle():
    machine = {'cores': 2, 'mhz': 2500., 'flags': AVX2, 'core': 'Zen 3'}
    assert bench.peak_gflops(machine) == (160., 32)
    assert bench.peak_gflops(dict(machine, mhz=None)) == (None, 32)
    # FMA hidden by a hypervisor: the pipes' figure no longer holds.
    assert bench.peak_gflops(dict(machine, flags=['sse', 'avx', 'avx2'])) == (None, None)


@pytest.mark.parametrize('vendor, family, model, flags, core', [
    # This machine's CPU, an AMD EPYC Zen 4: AVX-512 on 256-bit pipes, as wide as Zen 3's AVX2.
    ('AuthenticAMD', 25, 17, AVX512, 'Zen 4'),
    ('AuthenticAMD', 25, 0x61, AVX512, 'Zen 4'),
    ('AuthenticAMD', 25, 1, AVX2, 'Zen 3'),
    ('AuthenticAMD', 23, 0x31, AVX2, 'Zen 2'),
])
def test_the_cores_measured_here_start_32_flops_per_cycle(tmp_path, vendor, family, model,
                                                          flags, core):
    assert cpu(tmp_path, vendor, family, model, flags) == core
    machine = {'cores': 2, 'mhz': 2000., 'flags': flags, 'core': core}
    assert bench.peak_gflops(machine) == (128., 32)
    report = {'machine': machine, 'peak_gflops': 128., 'flops_per_cycle': 32}
    assert bench.peak_line(report).startswith('- Peak: 128.0 GFLOP/s = 2 cores x 2.000 GHz x 32')


@pytest.mark.parametrize('vendor, family, model', [
    ('GenuineIntel', 6, 0x55),  # Skylake-SP: one or two 512-bit FMA units by SKU
    ('AuthenticAMD', 26, 0x44),  # Zen 5: 512-bit pipes on desktop and server, 256 on mobile
    ('AuthenticAMD', 23, 1),  # Zen 1: 128-bit pipes, not measured here
    ('AuthenticAMD', 25, 0xf0),
])
def test_a_core_the_table_does_not_know_gets_no_peak_and_a_line_saying_so(tmp_path, vendor,
                                                                          family, model):
    core = cpu(tmp_path, vendor, family, model, AVX512)
    machine = {'cores': 2, 'mhz': 2600., 'flags': AVX512, 'core': core}
    assert bench.peak_gflops(machine) == (None, None)
    report = {'machine': machine, 'peak_gflops': None, 'flops_per_cycle': None}
    line = bench.peak_line(report)
    assert line.startswith('- Peak: unknown, so no % of peak') and 'Zen 2, Zen 3, Zen 4' in line
    assert (core or 'not known') in line


def test_the_build_is_named_after_what_tensorflow_says_it_is():
    from runkit import session
    assert bench.own_build() == session.tf_build()


def test_summary_is_median_and_spread_of_every_repeat_of_every_round():
    s = bench.summarize([{'images_per_repeat': 100, 'seconds': [1., 2.]},
                         {'images_per_repeat': 100, 'seconds': [4.]}])
    assert (s['median'], s['min'], s['max'], s['n']) == (50., 25., 100., 3)
    assert s['spread_pct'] == 150.


@pytest.mark.parametrize('args, message', [
    (['--build', 'mkl'], "argument --build: 'mkl': write KEY=VALUE"),
    (['--build', 'other=/nonexistent/python'], 'is not an executable interpreter'),
    (['--build', 'OWN=/bin/sh'], "--build: 'OWN' is this interpreter's build"),
    (['--build', 'x=/bin/sh', '--peer', 'x=true'], "--peer: 'x' is the name of --build x"),
    (['--peer', 'torch'], "argument --peer: 'torch': write KEY=VALUE"),
    (['--repeats', '0'], 'must be 1 or more'),
    (['--only', 'jit on'], "--only 'jit on': no case has that in its name; the cases: blog as"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message, capsys, tmp_path):
    own = bench.own_build()
    args = [a.replace('OWN', own) for a in args] + ['--out', str(tmp_path / 'bench')]
    with pytest.raises(SystemExit) as e:
        bench.main(args)
    message = message.replace('OWN', own)
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
    own = bench.own_build()
    # One real case of the headline, --jit off (the blog's session and XLA's compiling would
    # triple this test's time and prove nothing more here), and the broken build's.
    assert bench.main(['--build', 'broken=%s' % broken, '--only', 'jit off', '--only', 'broken',
                       '--repeats', '2', '--steps', '1', '--warmup', '1', '--out', out]) == 1
    printed = capsys.readouterr()
    assert ('case "broken build, allconvnet.py\'s defaults" failed (exit 1): '
            'import tensorflow / ImportError: no') in printed.err
    report, md = read_report(out)
    ran, failed = report['cases']
    assert ran['name'] == 'allconvnet.py --jit off' and ran['error'] is None
    assert ran['build'] == own and report['builds'][own]['mkl'] == (own == 'mkl')
    assert ran['threads'].startswith("allconvnet.py's session: ")
    assert ran['images_per_s']['n'] == 2 and len(ran['seconds']) == 2
    assert ran['xla'] is False
    assert ran['gflops'] == pytest.approx(
        ran['images_per_s']['median'] * report['flops_training'] / 1e9)
    if report['peak_gflops']:
        assert ran['peak_pct'] == pytest.approx(100 * ran['gflops'] / report['peak_gflops'])
    else:
        assert ran['peak_pct'] is None and '- Peak: unknown' in md
    assert failed['error'].startswith('case') and 'images_per_s' not in failed
    assert report['builds'][own]['versions']['keras'] == '1.2.2'
    assert report['machine']['cpu'] in md and report['machine']['cores'] >= 1
    assert report['machine']['core'] == bench.core_of(provenance.cpuinfo())
    assert "| allconvnet.py --jit off | %s | allconvnet.py's session: " % own in md
    assert "| broken | allconvnet.py's session |  | 32 | failed: case" in md
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
    assert [name for name, _ in ran] == [c['name'] for c in bench.plan(bench.own_build())] * 2
    assert [seen for _, seen in ran[1:4]] == [[0, 0, 0], [0, 2, 0], [0, 2, 2]]
    report, md = read_report(out)
    assert [c['images_per_s']['n'] for c in report['cases']] == [2, 4, 4]
    assert report['cases'][0]['error'] == 'case failed once'
    assert '| 32 | 24.0 | 16.0-32.0 | 67% |' in md and '| +0% |' in md


def test_the_headline_runs_on_this_interpreters_build_and_its_names_claim_no_setting():
    # The oneDNN venv's headline is the oneDNN build's, and --jit auto gives XLA only to the
    # stock build: the XLA column says which, not the name.
    cases = bench.plan('mkl', ['stock'])
    assert [c['build'] for c in cases] == ['mkl', 'mkl', 'mkl', 'stock']
    assert [(c['spec']['threads'], c['spec']['jit']) for c in cases] == [
        ('keras', 'off'), (None, 'off'), (None, 'auto'), (None, 'auto')]
    assert not [c['name'] for c in cases[:3] if 'XLA' in c['name'] or 'stock' in c['name']]


def test_a_peer_runs_in_the_headline_and_is_timed_as_a_worker_is():
    import sys
    cases = bench.plan('stock', ['mkl'], ['fake'])
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
