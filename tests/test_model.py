"""The model against the blog's listing: nine convolutions, layer by layer, and the parameter count."""
import pytest

import allconvnet

# (filters, kernel, border_mode, stride) of each Convolution2D, as the blog lists them.
BLOG_CONVS = [(96, 3, 'same', 1), (96, 3, 'same', 1), (96, 3, 'same', 2),
              (192, 3, 'same', 1), (192, 3, 'same', 1), (192, 3, 'same', 2),
              (192, 3, 'same', 1), (192, 1, 'valid', 1), (10, 1, 'valid', 1)]


@pytest.fixture
def model(cpu_session):
    return allconvnet.build_model()


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
