"""The model against the blog's listing (nine convolutions, layer by layer, the parameter count) and the paper's additions."""
import pytest

import allconvnet
from runkit.recipes import RECIPES

# (filters, kernel, border_mode, stride) of each Convolution2D, as the blog lists them.
BLOG_CONVS = [(96, 3, 'same', 1), (96, 3, 'same', 1), (96, 3, 'same', 2),
              (192, 3, 'same', 1), (192, 3, 'same', 1), (192, 3, 'same', 2),
              (192, 3, 'same', 1), (192, 1, 'valid', 1), (10, 1, 'valid', 1)]


@pytest.fixture
def model(cpu_session):
    return allconvnet.build_model(RECIPES['blog'])


def test_convolutions_match_the_blog(model):
    convs = [l for l in model.layers if type(l).__name__ == 'Convolution2D']
    got = [(c.nb_filter, c.nb_row, c.border_mode, c.subsample[0]) for c in convs]
    assert got == BLOG_CONVS
    assert all(c.nb_row == c.nb_col and c.subsample[0] == c.subsample[1] for c in convs)


def test_layer_sequence_adds_relu_dropout_and_softmax_head(model):
    kinds = []
    for layer in model.layers:
        name = type(layer).__name__
        if name == 'Activation':
            name = layer.activation.__name__
        elif name == 'Dropout':
            name = 'Dropout(%s)' % layer.p
        kinds.append(name)
    C = 'Convolution2D'
    assert kinds == [C, 'relu', C, 'relu', C, 'Dropout(0.5)',
                     C, 'relu', C, 'relu', C, 'Dropout(0.5)',
                     C, 'relu', C, 'relu', C, 'GlobalAveragePooling2D', 'softmax']
    # The convolutions carry no activation of their own (Keras' default is linear).
    convs = [l for l in model.layers if type(l).__name__ == 'Convolution2D']
    assert {c.activation.__name__ for c in convs} == {'linear'}


def test_shapes_and_parameter_count(model):
    assert model.input_shape == (None, 32, 32, 3)  # 'tf' ordering, not the blog's (3, 32, 32)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 1369738


def activations(model):
    return [l.activation.__name__ for l in model.layers if type(l).__name__ == 'Activation']


def test_the_paper_adds_input_dropout_nine_relus_and_weight_decay(cpu_session):
    paper = allconvnet.build_model(RECIPES['paper'])
    first = paper.layers[0]
    assert type(first).__name__ == 'Dropout' and first.p == 0.2
    assert paper.input_shape == (None, 32, 32, 3)
    # The paper's All-CNN-C: a ReLU after every convolution, the strided and the last too.
    assert activations(paper) == ['relu'] * 9 + ['softmax']
    kinds = [type(l).__name__ for l in paper.layers]
    for i, kind in enumerate(kinds):
        if kind == 'Convolution2D':
            assert kinds[i + 1] == 'Activation' and paper.layers[i + 1].activation.__name__ == 'relu'
    assert activations(allconvnet.build_model(RECIPES['blog'])) == ['relu'] * 6 + ['softmax']
    assert paper.count_params() == 1369738
    convs = [l for l in paper.layers if type(l).__name__ == 'Convolution2D']
    # The paper's λ = 0.001 as a gradient term λw is Keras' l2(λ/2) on every kernel.
    assert [c.W_regularizer.get_config() for c in convs] == \
        [{'name': 'L1L2Regularizer', 'l1': 0., 'l2': pytest.approx(0.0005)}] * 9
    assert all(c.b_regularizer is None for c in convs)


def test_theano_ordering_builds_the_listings_input_line(cpu_session):
    from keras import backend as K
    K.set_image_dim_ordering('th')
    try:
        model = allconvnet.build_model(RECIPES['blog'])
    finally:
        K.set_image_dim_ordering('tf')
    assert model.input_shape == (None, 3, 32, 32)  # the listing's input_shape=(3, 32, 32)
    assert model.layers[0].output_shape == (None, 96, 32, 32)
    assert model.output_shape == (None, 10) and model.count_params() == 1369738


def test_the_blog_model_has_no_regularizer(model):
    convs = [l for l in model.layers if type(l).__name__ == 'Convolution2D']
    assert all(c.W_regularizer is None and c.b_regularizer is None for c in convs)
    assert 'W_regularizer' in convs[0].get_config() and convs[0].get_config()['W_regularizer'] is None


def test_strided_convolutions_add_parameters_over_pooling(cpu_session):
    # The paper's Model C: All-CNN-C with 3x3 max-pooling, stride 2, in place of the two
    # stride-2 convolutions. The post says the strided convolution "can reduce the number of
    # parameters and computations"; against the pooling it replaces, it adds both.
    from keras.layers import MaxPooling2D
    from keras.models import Sequential
    from tools.bench import flops_per_image
    all_cnn = allconvnet.build_model(RECIPES['blog'])
    model_c = Sequential()
    for layer in all_cnn.layers:
        if type(layer).__name__ == 'Convolution2D' and layer.subsample == (2, 2):
            model_c.add(MaxPooling2D((3, 3), strides=(2, 2), border_mode='same'))
        else:
            model_c.add(type(layer).from_config(layer.get_config()))
    assert model_c.output_shape == all_cnn.output_shape == (None, 10)
    assert (all_cnn.count_params(), model_c.count_params()) == (1369738, 954730)
    extra = flops_per_image(all_cnn)[0] - flops_per_image(model_c)[0]
    assert round(extra / 1e6) == 85
