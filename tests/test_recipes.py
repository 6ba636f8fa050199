"""The three recipes (blog, upstream, paper): each trains and is recorded, and the pieces Keras
1.2.2 lacks for the paper's (step schedule, weight decay, GCN + ZCA) do what the paper says."""
import ast
import json
import os
import re

import numpy as np
import pandas
import pytest

import allconvnet
from helpers import ONE_BATCH, ROOT, run_allconvnet
from runkit import preprocess as pre
from runkit.errors import Refused
from runkit.logdir import Logdir, claim
from runkit.callbacks import StepSchedule
from runkit.cli import parse_args
from runkit.recipes import (BLOG_SGD_OBJECT, KERAS_SGD, NAMES, RECIPES,
                            compile_argument, count_weight_decay_once, paper_lr, resolve)



def resolve_(args):
    return resolve(args, allconvnet.batch_size, allconvnet.nb_epoch)


def as_json(value):
    return json.loads(json.dumps(value))


def read_run(logdir):
    with open(os.path.join(logdir, 'run.json')) as f:
        return json.load(f)


# -- the records --------------------------------------------------------------------------

def test_records_share_their_fields_and_survive_json():
    fields = set(RECIPES['blog'])
    assert set(NAMES) == set(RECIPES)
    for name, record in RECIPES.items():
        assert set(record) == fields, name
        assert as_json(record) == record, name


def test_blog_recipe_is_the_listing(cpu_session):
    from keras.optimizers import SGD
    blog, _ = resolve_(parsed())
    assert (blog['batch_size'], blog['epochs']) == (allconvnet.batch_size, allconvnet.nb_epoch)
    # optimizer='sgd' gets Keras 1.2.2's SGD() defaults, which the record spells out.
    assert compile_argument(blog['optimizer'], None) == 'sgd'
    defaults = SGD().get_config()
    for k, v in KERAS_SGD.items():
        assert defaults[k] == pytest.approx(v), k
    # The listing's ImageDataGenerator(...) arguments, read from the post's listing itself.
    listing = open(os.path.join(ROOT, 'docs', 'blog_listing.txt')).read()
    call = listing[listing.index('datagen = ImageDataGenerator('):]
    call = call[:call.index('randomly flip images\n', call.index('vertical_flip')) + 1]
    published = dict((k, ast.literal_eval(v)) for k, v in
                     re.findall(r'^[ \t]*(\w+)[ \t]*=[ \t]*([^,#)\n]+?)\s*[,)]', call, re.M)
                     if k != 'datagen')
    assert len(published) == 10 and blog['augmentation'] == published


def test_augmentation_records_are_image_data_generator_arguments():
    from keras.preprocessing.image import ImageDataGenerator
    for name in NAMES:
        ImageDataGenerator(**RECIPES[name]['augmentation'])
    # Translations of up to 5 pixels: Keras shifts by uniform(-f, f) * 32.
    paper = RECIPES['paper']['augmentation']
    assert paper['width_shift_range'] * 32 == paper['height_shift_range'] * 32 == 5


def parsed(*argv):
    return parse_args(list(argv) + ['--logdir', 'unused'])


def test_flags_override_single_fields():
    record, overridden = resolve_(parsed('--recipe', 'upstream', '--lr', '0.05'))
    expected = as_json(RECIPES['upstream'])
    expected['optimizer']['lr'] = 0.05
    assert record == expected and overridden == ['optimizer.lr']

    record, overridden = resolve_(parsed('--recipe', 'paper', '--epochs', '3', '--batch-size',
                                        '8', '--weight-decay', '0'))
    assert (record['epochs'], record['batch_size'], record['weight_decay']) == (3, 8, 0.)
    assert overridden == ['epochs', 'batch_size', 'weight_decay']

    record, overridden = resolve_(parsed())  # no flags: the blog, untouched
    assert record == dict(RECIPES['blog'], epochs=1000, batch_size=32) and overridden == []


def test_pass_sgd_object_and_lr_override_the_optimizer(cpu_session):
    from keras.optimizers import SGD
    listing_sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
    record, overridden = resolve_(parsed('--pass-sgd-object'))
    assert record['optimizer'] == BLOG_SGD_OBJECT and overridden == ['optimizer']
    assert compile_argument(record['optimizer'], listing_sgd) is listing_sgd
    # The string cannot carry another lr: Keras' default SGD, as an object, with that lr.
    record, _ = resolve_(parsed('--lr', '0.03'))
    built = compile_argument(record['optimizer'], listing_sgd)
    config = built.get_config()
    assert config['lr'] == pytest.approx(0.03) and config['momentum'] == 0
    assert config['nesterov'] is False and config['decay'] == 0


# -- each recipe trains and is recorded -------------------------------------------------------

@pytest.mark.parametrize('name', NAMES)
def test_each_recipe_trains_one_epoch_and_records_its_settings(name, cifar_home, tmp_path):
    logdir = str(tmp_path / name)
    # The blog's run also takes the listing's own input line, under Theano's ordering; the
    # upstream run also overrides two more fields with flags.
    extra = {'blog': ['--dim-ordering', 'th'], 'paper': [],
             'upstream': ['--lr', '0.05', '--batch-size', '16']}[name]
    # One batch of the blog's 32 (two of upstream's 16): the records are what is checked.
    proc = run_allconvnet(['--recipe', name, '--epochs', '1', '--logdir', logdir] + extra +
                          ONE_BATCH, cifar_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = read_run(logdir)
    expected = as_json(RECIPES[name])
    expected['epochs'] = 1
    expected['batch_size'] = expected['batch_size'] or allconvnet.batch_size
    overridden = ['epochs']
    if name == 'upstream':
        expected['optimizer']['lr'], expected['batch_size'] = 0.05, 16
        overridden = ['optimizer.lr', 'epochs', 'batch_size']
    assert 'Recipe: %s (overridden: %s)' % (name, ', '.join(overridden)) in proc.stdout
    assert run['recipe_name'] == name and run['args']['recipe'] == name
    assert run['recipe'] == expected and run['overridden'] == overridden
    assert run['preprocessing'] == expected['preprocessing']
    optimizer = expected['optimizer']
    config = run['optimizer']['config']
    for k in ('lr', 'momentum', 'decay'):
        assert config[k] == pytest.approx(optimizer[k], rel=1e-6), k
    assert config['nesterov'] == optimizer['nesterov']
    assert run['optimizer']['compiled_with'] == (
        "string 'sgd'" if optimizer['compile_with'] == 'string' else 'sgd object')
    history = pandas.read_csv(os.path.join(logdir, 'history.csv'))
    assert list(history.epoch) == [1] and np.isfinite(history.loss).all()
    assert history.lr[0] == pytest.approx(optimizer['lr'], rel=1e-4)
    fitted = os.path.join(logdir, 'preprocessing.npz')
    assert os.path.exists(fitted) == (name == 'paper')
    # The paper's model starts with its input dropout and has a ReLU after every one of its
    # nine convolutions; the parameters are the same.
    assert ('dropout_input_1' in proc.stdout) == (name == 'paper')
    assert proc.stdout.count('(Activation)') == (10 if name == 'paper' else 7)
    assert 'Total params: 1,369,738' in proc.stdout
    if name == 'blog':  # load_data() gives channels first, and predict.py feeds them so
        assert 'X_train shape: (32, 3, 32, 32)' in proc.stdout
        assert '(None, 96, 32, 32)' in proc.stdout and run['args']['dim_ordering'] == 'th'
        import predict
        from keras import backend as K
        K.clear_session()
        model = predict.load_checkpoint(os.path.join(logdir, 'weights.best.hdf5'))
        images = np.zeros((2, 32, 32, 3), np.uint8)
        assert predict.classify(model, images, pre.SCALE_255, logdir).shape == (2, 10)


# -- the paper's step schedule ------------------------------------------------------------

def test_paper_lr_at_the_named_epochs():
    # Epochs count from 1, as history.csv does: γ is multiplied by 0.1 *after* epoch 200.
    gamma = 0.1
    expected = {1: gamma, 199: gamma, 200: gamma, 201: gamma / 10, 250: gamma / 10,
                251: gamma / 100, 300: gamma / 100, 301: gamma / 1000, 349: gamma / 1000,
                350: gamma / 1000}
    for epoch, lr in expected.items():
        assert paper_lr(epoch, gamma) == pytest.approx(lr, rel=1e-12), epoch


def test_schedule_callback_sets_the_optimizer_it_is_given(cpu_session):
    from keras import backend as K
    from keras.optimizers import SGD
    sgd = SGD(lr=0.05, momentum=0.9)
    callback = StepSchedule(sgd, 0.05, RECIPES['paper']['lr_schedule'])
    # Keras hands callbacks 0-based epoch indexes: index 199 is epoch 200, the last at γ.
    for index, lr in [(0, 0.05), (198, 0.05), (199, 0.05), (200, 0.005), (249, 0.005),
                      (250, 0.0005), (299, 0.0005), (300, 0.00005), (348, 0.00005),
                      (349, 0.00005)]:
        callback.on_epoch_begin(index)
        assert float(K.get_value(sgd.lr)) == pytest.approx(lr, rel=1e-6), index


# -- weight decay -------------------------------------------------------------------------

def penalty_in_loss(decayed, plain, x, y):
    """loss(decayed) - loss(plain), the same weights and batch, dropout off (evaluate)."""
    plain.set_weights(decayed.get_weights())
    return (decayed.evaluate(x, y, batch_size=len(x), verbose=0)
            - plain.evaluate(x, y, batch_size=len(x), verbose=0))


def kernel_squares(model):
    return sum(float(np.sum(l.get_weights()[0].astype(np.float64) ** 2))
               for l in model.layers if type(l).__name__ == 'Convolution2D')


@pytest.fixture
def batch():
    rs = np.random.RandomState(0)
    return (rs.rand(4, 32, 32, 3).astype('float32'), np.eye(10)[rs.randint(0, 10, 4)])


def recipe(**fields):
    return dict(RECIPES['blog'], **fields)


def test_weight_decay_enters_the_loss_as_half_lambda_squared_norm(cpu_session, batch):
    lam = 0.001
    decayed = allconvnet.build_model(recipe(dropout_input=0.2, weight_decay=lam))
    plain = allconvnet.build_model(recipe(dropout_input=0.2))
    for m in (decayed, plain):
        m.compile(loss='categorical_crossentropy', optimizer='sgd')
    assert len(decayed.losses) == 9 and len(plain.losses) == 0
    penalty = penalty_in_loss(decayed, plain, *batch)
    assert penalty > 0.1
    assert penalty == pytest.approx(lam / 2 * kernel_squares(decayed), rel=1e-4)


def test_weight_decay_counts_once_with_towers(cpu_session, batch):
    from make_parallel import make_parallel
    lam = 0.001
    models = []
    for fix in (True, False):
        template = allconvnet.build_model(recipe(weight_decay=lam))
        parallel = make_parallel(template, 2, device='/cpu:%d')
        if fix:
            count_weight_decay_once(template)
        parallel.compile(loss='categorical_crossentropy', optimizer='sgd')
        models.append((template, parallel))
    plain = allconvnet.build_model(recipe())
    plain.compile(loss='categorical_crossentropy', optimizer='sgd')
    expected = lam / 2 * kernel_squares(models[0][0])
    assert penalty_in_loss(models[0][1], plain, *batch) == pytest.approx(expected, rel=1e-4)
    # Without it Keras 1.2.2 adds each tower's copy of the penalty: twice the weight decay.
    expected = lam / 2 * kernel_squares(models[1][0])
    assert penalty_in_loss(models[1][1], plain, *batch) == pytest.approx(2 * expected, rel=1e-4)


# -- the paper's preprocessing ------------------------------------------------------------

def test_gcn_centres_each_image_and_scales_it_to_norm_55():
    X = np.random.RandomState(0).randint(0, 256, size=(50, 32, 32, 3)).astype(np.uint8)
    X[0] = 7  # a flat image: zero, not a division by zero
    g = pre.gcn(X)
    assert g.dtype == np.float32 and g.shape == X.shape
    flat = g.reshape(50, -1).astype(np.float64)
    np.testing.assert_allclose(flat.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(flat[1:], axis=1), 55, rtol=1e-5)
    assert not flat[0].any()


@pytest.mark.parametrize('n', [2000, 30])  # more images than values (eigh), and fewer (SVD)
def test_zca_whitens_the_data_it_was_fitted_on(n):
    rs = np.random.RandomState(1)
    d = 48
    # Correlated pixels whose covariance is well conditioned, as neighbouring pixels are.
    mixing = np.eye(d) + 0.5 * rs.randn(d, d) / np.sqrt(d)
    X = rs.randn(n, d).dot(mixing).reshape(n, 4, 4, 3)
    mean, W = pre.fit_zca(X, bias=1e-6)
    Z = pre.zca(X, mean, W).reshape(n, d).astype(np.float64)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-3)
    cov = Z.T.dot(Z) / n
    if n > d:
        np.testing.assert_allclose(cov, np.eye(d), atol=2e-3)
    else:  # rank n - 1: whitened within the span of the centred images
        eig = np.linalg.eigvalsh(cov)
        np.testing.assert_allclose(eig[-(n - 1):], 1, atol=2e-3)
    # ZCA is the symmetric whitening: W = Wᵀ, the rotation back to pixel space.
    np.testing.assert_allclose(W, W.T, atol=1e-4)


def test_zca_paths_agree():
    X = np.random.RandomState(2).randint(0, 256, size=(40, 4, 4, 3)).astype(np.uint8)
    g = pre.gcn(X).reshape(40, -1).astype(np.float64)
    mean, W = pre.fit_zca(g, 0.1)
    c = g - g.mean(axis=0)
    eigs, eigv = np.linalg.eigh(c.T.dot(c) / len(g))
    reference = (eigv / np.sqrt(np.maximum(eigs, 0) + 0.1)).dot(eigv.T)
    np.testing.assert_allclose(W, reference, atol=1e-5)


def test_fitted_preprocessing_round_trips_through_the_logdir(tmp_path):
    spec = pre.GCN_ZCA
    rs = np.random.RandomState(3)
    train = rs.randint(0, 256, size=(64, 32, 32, 3)).astype(np.uint8)
    test = rs.randint(0, 256, size=(5, 32, 32, 3)).astype(np.uint8)
    logdir = claim(str(tmp_path), overwrite=False)
    pre.fit(train, spec, logdir)
    logdir.release()
    assert os.listdir(str(tmp_path)) == [spec['fitted']]
    with np.load(str(tmp_path / spec['fitted'])) as fitted:
        expected = pre.zca(pre.gcn(test), fitted['mean'], fitted['W'])
        assert fitted['W'].dtype == np.float32 and int(fitted['fitted_on']) == 64
    got = pre.preprocess(test, spec, Logdir(str(tmp_path)))
    assert got.dtype == np.float32 and got.shape == test.shape
    np.testing.assert_array_equal(got, expected)
    assert pre.preprocess(test[:0], spec, Logdir(str(tmp_path))).shape == (0, 32, 32, 3)
    (tmp_path / 'elsewhere').mkdir()
    with pytest.raises(Refused, match='preprocessing.npz is missing'):
        pre.preprocess(test, spec, Logdir(str(tmp_path / 'elsewhere')))
    (tmp_path / 'elsewhere' / spec['fitted']).write_bytes(b'PK\x03\x04 not a zip')
    with pytest.raises(Refused, match='preprocessing.npz is truncated or damaged'):
        pre.preprocess(test, spec, Logdir(str(tmp_path / 'elsewhere')))
    with pytest.raises(Refused, match='needs the run directory'):
        pre.preprocess(test, spec)
