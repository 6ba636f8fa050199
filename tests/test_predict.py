"""predict.py: images written here classify exactly as model.predict does, and every bad input gets one line."""
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import predict
from runkit.errors import exit_code
from helpers import ROOT
from runkit.preprocess import SCALE_255, preprocess

@pytest.fixture(scope='module')
def single_run(tiny_runs):
    return tiny_runs['single'][0]


@pytest.fixture(scope='module')
def tower_run(tiny_runs):
    """A make_parallel run on two virtual CPU devices: its checkpoint is the template's."""
    return tiny_runs['two-towers'][0]


@pytest.fixture(scope='module')
def cache_images(cifar_home):
    """The first test images of the synthetic cache, uint8 NHWC, as load_data() gives them."""
    path = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py', 'test_batch')
    with open(path, 'rb') as f:
        batch = pickle.load(f, encoding='bytes')
    return batch[b'data'][:4].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW rows -> HWC


@pytest.fixture(scope='module')
def image_files(cache_images, tmp_path_factory):
    """Four files in four forms: PNG 32x32, JPEG 64x48, RGBA PNG, greyscale PNG."""
    folder = tmp_path_factory.mktemp('images')
    files = {'png': str(folder / 'plain.png'), 'jpeg': str(folder / 'wide.jpg'),
             'rgba': str(folder / 'alpha.png'), 'grey': str(folder / 'grey.png')}
    Image.fromarray(cache_images[0]).save(files['png'])
    Image.fromarray(cache_images[1]).resize((64, 48), Image.NEAREST).save(files['jpeg'],
                                                                        quality=90)
    alpha = np.random.RandomState(0).randint(0, 256, size=(32, 32, 1)).astype(np.uint8)
    Image.fromarray(np.concatenate([cache_images[2], alpha], axis=2), 'RGBA').save(files['rgba'])
    Image.fromarray(cache_images[3]).convert('L').save(files['grey'])
    return files


def run_predict(args):
    """predict.py as a program, in a subprocess."""
    return subprocess.run([sys.executable, os.path.join(ROOT, 'predict.py')] + list(args),
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def predict_here(args, capsys):
    """predict.main in this process, with what `run_predict` returns."""
    code, out, err = run_main(args, capsys)
    return SimpleNamespace(returncode=code, stdout=out, stderr=''.join(l + '\n' for l in err))


def run_main(argv, capsys):
    """predict.main in this process: (exit code, stdout, stderr lines)."""
    from keras import backend as K
    K.clear_session()
    capsys.readouterr()  # Keras' "Using TensorFlow backend." when this process first imports it
    try:
        code = exit_code(lambda: predict.main(argv), 'predict.py')
    except SystemExit as e:  # argparse refusals
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def assert_one_error(code, err_lines, expected_code, *fragments):
    assert code == expected_code, err_lines
    assert len(err_lines) == 1 and err_lines[0].startswith('predict.py: error: '), err_lines
    for fragment in fragments:
        assert fragment in err_lines[0], err_lines


def expected_probabilities(weights, logdir, files):
    """model.predict on the files read independently of predict.py, preprocessed as run.json says."""
    from keras import backend as K
    from keras.models import load_model
    images = np.stack([np.asarray(Image.open(f).convert('RGB').resize((32, 32), Image.BILINEAR))
                       for f in files])
    with open(os.path.join(logdir, 'run.json')) as f:
        spec = json.load(f)['preprocessing']
    K.clear_session()
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'No training configuration found')  # towers: uncompiled
        model = load_model(weights)
    return images, model.predict(preprocess(images, spec, logdir))


@pytest.mark.parametrize('source', ['--run single', '--weights single', '--weights towers'])
def test_json_probabilities_equal_model_predict(source, request, image_files, cache_images,
                                                capsys):
    flag, which = source.split()
    logdir = request.getfixturevalue('single_run' if which == 'single' else 'tower_run')
    weights = os.path.join(logdir, 'weights.best.hdf5')
    files = [image_files[k] for k in ['png', 'jpeg', 'rgba', 'grey']]
    proc = predict_here(files + [flag, logdir if flag == '--run' else weights, '--json',
                                 '--top', '10', '--batch-size', '3'], capsys)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    result = json.loads(proc.stdout)
    assert [e['image'] for e in result['images']] == files
    assert result['classes'] == list(predict.CLASSES)
    assert result['preprocessing'] == {'name': 'scale', 'scale': 1. / 255}

    images, expected = expected_probabilities(weights, logdir, files)
    # The lossless forms are the cache's pixels: alpha dropped, grey replicated to RGB.
    np.testing.assert_array_equal(images[0], cache_images[0])
    np.testing.assert_array_equal(images[2], cache_images[2])
    assert (images[3] == images[3][..., :1]).all()
    got = np.array([e['probabilities'] for e in result['images']])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    for entry, probs in zip(result['images'], expected):
        top = [t['probability'] for t in entry['top']]
        assert top == sorted(top, reverse=True) and len(top) == 10
        assert entry['top'][0]['class'] == predict.CLASSES[int(probs.argmax())]


def test_text_output_is_top_three_per_image(single_run, image_files):
    files = [image_files['png'], image_files['jpeg']]
    proc = run_predict(files + ['--run', single_run])
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    lines = proc.stdout.splitlines()
    assert [l.split(': ')[0] for l in lines] == files
    for line in lines:
        classes = line.split(': ', 1)[1].split(', ')
        assert len(classes) == 3
        names, probs = zip(*(c.split() for c in classes))
        assert set(names) <= set(predict.CLASSES)
        assert list(map(float, probs)) == sorted(map(float, probs), reverse=True)


def test_unreadable_images_are_reported_and_the_others_classified(single_run, image_files,
                                                                  tmp_path, capsys):
    text = tmp_path / 'notes.png'
    text.write_text('not an image\n')
    truncated = tmp_path / 'truncated.jpg'
    data = open(image_files['jpeg'], 'rb').read()
    truncated.write_bytes(data[:len(data) // 2])
    missing = str(tmp_path / 'missing.png')
    files = [image_files['png'], missing, str(text), str(truncated), image_files['grey']]
    proc = predict_here(files + ['--run', single_run, '--json'], capsys)
    assert proc.returncode == 1, proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == 3 and all(l.startswith('predict.py: error: ') for l in errors), errors
    assert 'missing.png: no such file' in errors[0]
    assert 'notes.png: not an image Pillow can read' in errors[1]
    assert 'truncated.jpg: cannot read the image' in errors[2]
    entries = json.loads(proc.stdout)['images']
    assert [e['image'] for e in entries] == files
    assert [('error' in e) for e in entries] == [False, True, True, True, False]
    assert len(entries[0]['top']) == 3 and len(entries[4]['probabilities']) == 10


def test_16_bit_images_are_scaled_and_float_images_refused(single_run, tmp_path, capsys):
    from PIL import Image
    grey = np.full((32, 32), 32896, np.uint16)  # 32896 / 257 = 128 exactly
    Image.fromarray(grey).save(str(tmp_path / 'grey16.png'))
    Image.fromarray(grey, 'I;16').save(str(tmp_path / 'grey16.tif'))
    Image.fromarray(grey.astype(np.float32) / 65535).save(str(tmp_path / 'float.tif'))
    for name in ('grey16.png', 'grey16.tif'):
        pixels = predict.read_image(str(tmp_path / name))
        assert pixels.dtype == np.uint8 and (pixels == 128).all(), name
    files = [str(tmp_path / n) for n in ('grey16.png', 'float.tif')]
    proc = predict_here(files + ['--run', single_run], capsys)
    assert proc.returncode == 1, proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == 1 and 'float.tif: holds floating-point pixels' in errors[0], errors
    assert proc.stdout.startswith(files[0] + ': ')


def test_another_models_hdf5_is_refused_in_one_line(single_run, image_files, tmp_path, capsys):
    from keras import backend as K
    from keras.layers import Dense
    from keras.models import Sequential
    K.clear_session()
    other = Sequential([Dense(2, input_dim=3)])
    other.compile(optimizer='sgd', loss='mse')
    weights = str(tmp_path / 'weights.best.hdf5')
    other.save(weights)
    shutil.copy(os.path.join(single_run, 'run.json'), str(tmp_path))
    proc = predict_here([image_files['png'], '--weights', weights], capsys)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.splitlines() == [
        'predict.py: error: %s is not a checkpoint of this model: it maps (None, 3) to '
        '(None, 2), not (None, 32, 32, 3) CIFAR-10 images to 10 classes' % weights]


@pytest.mark.parametrize('kind', ['text', 'truncated', 'weights-only'])
def test_a_file_keras_cannot_load_is_refused(kind, single_run, image_files, tmp_path, capsys):
    from keras import backend as K
    from keras.models import load_model
    checkpoint = os.path.join(single_run, 'weights.best.hdf5')
    weights = str(tmp_path / 'weights.best.hdf5')
    if kind == 'text':
        open(weights, 'w').write('not HDF5\n')
    elif kind == 'truncated':
        data = open(checkpoint, 'rb').read()
        open(weights, 'wb').write(data[:len(data) // 3])
    else:
        K.clear_session()
        load_model(checkpoint).save_weights(weights)
    shutil.copy(os.path.join(single_run, 'run.json'), str(tmp_path))
    code, out, err = run_main([image_files['png'], '--weights', weights], capsys)
    assert_one_error(code, err, 2, weights, 'is not a checkpoint of this model: Keras cannot load')
    assert out == ''


def test_run_without_checkpoint_or_run_json(single_run, image_files, tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    shutil.copy(os.path.join(single_run, 'run.json'), str(empty))
    code, _, err = run_main([image_files['png'], '--run', str(empty)], capsys)
    assert_one_error(code, err, 2, 'holds no checkpoint (weights.best.hdf5)')

    code, _, err = run_main([image_files['png'], '--run', str(tmp_path / 'nowhere')], capsys)
    assert_one_error(code, err, 2, 'no such directory')

    alone = tmp_path / 'alone'
    alone.mkdir()
    shutil.copy(os.path.join(single_run, 'weights.best.hdf5'), str(alone))
    code, _, err = run_main([image_files['png'], '--weights', str(alone / 'weights.best.hdf5')],
                            capsys)
    assert_one_error(code, err, 2, 'no run.json in %s' % alone)


def test_preprocessing_comes_from_run_json(single_run, image_files, tmp_path, capsys):
    with open(os.path.join(single_run, 'run.json')) as f:
        run = json.load(f)
    shutil.copy(os.path.join(single_run, 'weights.best.hdf5'), str(tmp_path))
    argv = [image_files['png'], '--run', str(tmp_path), '--json', '--top', '10']

    def with_record(record):
        with open(str(tmp_path / 'run.json'), 'w') as f:
            json.dump(record, f)
        return run_main(argv, capsys)

    code, out, err = with_record(run)
    assert code == 0 and err == []
    reference = json.loads(out)['images'][0]['probabilities']

    # An unknown record is refused, not guessed: a model fed the wrong scale still answers.
    code, out, err = with_record(dict(run, preprocessing={'name': 'zca-of-the-future'}))
    assert_one_error(code, err, 2, "cannot apply the preprocessing {'name': 'zca-of-the-future'}")

    # run.json files older than the record: the blog's 1/255, with a note saying so.
    code, out, err = with_record(dict((k, v) for k, v in run.items() if k != 'preprocessing'))
    assert code == 0 and len(err) == 1 and err[0].startswith('predict.py: note: ')
    assert 'predates the preprocessing record' in err[0]
    assert json.loads(out)['preprocessing'] == SCALE_255
    assert json.loads(out)['images'][0]['probabilities'] == reference


@pytest.mark.parametrize('argv, fragment', [
    (['x.png'], 'one of the arguments --run --weights is required'),
    (['x.png', '--run', 'a', '--weights', 'b'], 'not allowed with argument'),
    (['x.png', '--run', 'a', '--top', '11'], '--top 11: CIFAR-10 has 10 classes'),
    (['x.png', '--run', 'a', '--top', '0'], 'must be 1 or more'),
])
def test_usage_errors(argv, fragment, capsys):
    code, _, err = run_main(argv, capsys)
    assert_one_error(code, err, 2, fragment)


def test_fitted_preprocessing_is_read_from_the_run_directory(single_run, image_files,
                                                             cache_images, tmp_path, capsys):
    """A record with statistics fitted at training time (the paper's GCN + ZCA) finds them
    beside the checkpoint, and predict.py applies them exactly as runkit.preprocess does."""
    import runkit.preprocess as rp
    from keras import backend as K
    from keras.models import load_model
    with open(os.path.join(single_run, 'run.json')) as f:
        run = json.load(f)
    weights = shutil.copy(os.path.join(single_run, 'weights.best.hdf5'), str(tmp_path))
    with open(str(tmp_path / 'run.json'), 'w') as f:
        json.dump(dict(run, preprocessing=rp.GCN_ZCA), f)
    argv = [image_files['png'], image_files['rgba'], '--weights', weights, '--json',
            '--top', '10']

    code, _, err = run_main(argv, capsys)
    assert_one_error(code, err, 2, 'cannot apply the preprocessing', rp.GCN_ZCA['fitted'])

    from runkit.logdir import Logdir, claim
    logdir = claim(str(tmp_path), overwrite=False, resuming=True)
    rp.fit(cache_images, rp.GCN_ZCA, logdir)
    logdir.release()
    code, out, err = run_main(argv, capsys)
    assert code == 0 and err == []
    got = [e['probabilities'] for e in json.loads(out)['images']]
    K.clear_session()
    images = cache_images[[0, 2]]
    expected = load_model(weights).predict(rp.preprocess(images, rp.GCN_ZCA, Logdir(str(tmp_path))))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
