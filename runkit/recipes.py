"""The three training recipes (the blog's, the upstream repository's, the paper's) as records.

A recipe is a plain, JSON-serialisable dict: allconvnet.py builds the model, the optimizer,
the augmentation, the preprocessing and the lr schedule from it and nothing else, and
run.json keeps the record after the flags have overridden it. docs/recipes.md sets the three
side by side with the source of every value. Besides the records, this module holds what
Keras 1.2.2 lacks to run them: the paper's lr steps (paper_lr; runkit/callbacks.py sets them
each epoch), and weight decay counted once per step when make_parallel splits the batch.
Keras is imported only inside the functions that build, so that the flag parser can read
NAMES without it.

Sources: "listing" is the blog post's code listing (docs/blog_listing.txt); upstream commits
are getcrest/All-Conv-Keras's allconv.py history (docs/recipes.md links them); "paper" is
Springenberg et al., arXiv 1412.6806, All-CNN-C on CIFAR-10.
"""
import copy
import json

from runkit.errors import Refused
from runkit.preprocess import SCALE_255, GCN_ZCA

NAMES = ('blog', 'upstream', 'paper')
SGD_ARGS = ('lr', 'momentum', 'decay', 'nesterov')
# Keras 1.2.2's SGD() defaults: what the listing's compile(optimizer='sgd') trains with.
KERAS_SGD = {'lr': 0.01, 'momentum': 0., 'decay': 0., 'nesterov': False}
# The listing's unused `sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)`, which
# --pass-sgd-object compiles with.
BLOG_SGD_OBJECT = {'compile_with': 'object', 'lr': 0.1, 'momentum': 0.9, 'decay': 1e-6,
                   'nesterov': True}

# listing: its ImageDataGenerator arguments, verbatim with their comments (the flip comments
# sit on False); tools/blog_diff.py finds these lines for the listing's.
LISTING_AUGMENTATION = dict(
        featurewise_center=False,  # set input mean to 0 over the dataset
        samplewise_center=False,  # set each sample mean to 0
        featurewise_std_normalization=False,  # divide inputs by std of the dataset
        samplewise_std_normalization=False,  # divide each input by its std
        zca_whitening=False,  # apply ZCA whitening
        rotation_range=0,  # randomly rotate images in the range (degrees, 0 to 180)
        width_shift_range=0.1,  # randomly shift images horizontally (fraction of total width)
        height_shift_range=0.1,  # randomly shift images vertically (fraction of total height)
        horizontal_flip=False,  # randomly flip images
        vertical_flip=False)  # randomly flip images

RECIPES = {
    'blog': {
        # listing: compile(optimizer='sgd'), the string, so Keras' default SGD (upstream PR #1).
        'optimizer': {'compile_with': 'string', 'lr': 0.01, 'momentum': 0., 'decay': 0.,
                      'nesterov': False},
        'lr_schedule': None,  # listing: none
        'dropout_input': 0.,  # listing: no dropout at all; upstream c2af6a7: none on the input
        'dropout': 0.5,  # listing: none; upstream c2af6a7: Dropout(0.5) after each stride 2
        # listing: no activation at all; upstream c2af6a7: a ReLU after the six non-strided
        # convolutions only
        'relu_everywhere': False,
        'weight_decay': 0.,  # listing: none
        # listing: nb_epoch = 1000 and batch_size = 32, allconvnet.py's constants, which fill
        # these two (resolve), so that editing them there changes the run as the post invites.
        'epochs': None,
        'batch_size': None,
        'preprocessing': SCALE_255,  # listing: raw 0-255; upstream c2af6a7: X /= 255
        'augmentation': LISTING_AUGMENTATION,
    },
    'upstream': {
        # dca8f05 (PR #1): compile gets the SGD object, and its lr goes from 0.1 to 0.01.
        'optimizer': {'compile_with': 'object', 'lr': 0.01, 'momentum': 0.9, 'decay': 1e-6,
                      'nesterov': True},
        'lr_schedule': None,  # master: none (README's "Additional Notes" describe the paper's)
        'dropout_input': 0.,  # c2af6a7: none on the input
        'dropout': 0.5,  # c2af6a7: Dropout(0.5) after each stride-2 convolution
        'relu_everywhere': False,  # c2af6a7: ReLUs after the six non-strided convolutions
        'weight_decay': 0.,  # master: none
        'epochs': 350,  # c2af6a7: nb_epoch = 350
        'batch_size': 32,  # c2af6a7: batch_size = 32, as the listing
        'preprocessing': SCALE_255,  # c2af6a7: X /= 255; d642d15 dropped the second rescale
        # d642d15: the listing's arguments, but horizontal_flip=True
        'augmentation': dict(LISTING_AUGMENTATION, horizontal_flip=True),
    },
    'paper': {
        # paper: SGD with momentum 0.9 and a fixed γ (no per-update decay); γ is picked from
        # {0.25, 0.1, 0.05, 0.01}: choice 0.01; nesterov not mentioned: choice plain momentum.
        'optimizer': {'compile_with': 'object', 'lr': 0.01, 'momentum': 0.9, 'decay': 0.,
                      'nesterov': False},
        # paper: γ multiplied by 0.1 after epochs S = [200, 250, 300] (see paper_lr).
        'lr_schedule': {'drop_after_epochs': [200, 250, 300], 'factor': 0.1},
        'dropout_input': 0.2,  # paper: 20% dropout on the input image
        # paper, All-CNN-C's table: a ReLU after every one of the nine convolutions, the two
        # stride-2 ones and the last 1x1 with 10 outputs included
        'relu_everywhere': True,
        'dropout': 0.5,  # paper: 50% after each layer that replaces pooling (stride 2)
        # paper: λ = 0.001. Choice: λ enters the gradient as λw, i.e. Keras' l2(λ/2), and
        # biases are not decayed; the paper says neither (decay_kernels below).
        'weight_decay': 0.001,
        'epochs': 350,  # paper: 350 epochs
        'batch_size': 32,  # paper: not stated; choice: the listing's and upstream's 32
        'preprocessing': GCN_ZCA,  # paper: GCN + ZCA as Goodfellow et al. 2013 (maxout)
        # paper: horizontal flips and translations of up to 5 pixels. Keras 1.2.2 shifts by
        # uniform(-f, f) * 32 px, rounded by order-0 interpolation; choice: zero padding, which
        # after ZCA is the training set's mean image.
        'augmentation': dict(LISTING_AUGMENTATION, width_shift_range=5. / 32,
                             height_shift_range=5. / 32, horizontal_flip=True,
                             fill_mode='constant', cval=0.),
    },
}

# Flags (argparse dests) that override the recipe field of their name; None means not given.
FLAG_FIELDS = ('epochs', 'batch_size', 'weight_decay')


def resolve(args, batch_size, nb_epoch):
    """(record, overridden field names): the recipe args.recipe names, with the flags applied.

    `batch_size` and `nb_epoch` are allconvnet.py's constants: the blog recipe's values.
    --pass-sgd-object replaces the optimizer with the listing's SGD object, then --lr sets
    its lr (the paper's γ when a schedule runs).
    """
    record = copy.deepcopy(RECIPES[args.recipe])
    if record['epochs'] is None:
        record.update(epochs=nb_epoch, batch_size=batch_size)
    overridden = []
    if getattr(args, 'pass_sgd_object', False):
        record['optimizer'] = dict(BLOG_SGD_OBJECT)
        overridden.append('optimizer')
    if getattr(args, 'lr', None) is not None:
        optimizer = record['optimizer']
        optimizer['lr'] = args.lr
        if optimizer['compile_with'] == 'string':
            # The string 'sgd' cannot carry another lr: the same default SGD, as an object.
            optimizer['compile_with'] = 'object'
        overridden.append('optimizer.lr')
    for field in FLAG_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            record[field] = value
            overridden.append(field)
    return record, overridden


def for_run(args, resumed, batch_size, nb_epoch):
    """resolve(); prints which recipe trains. A resumed run's stored record must be what its
    arguments give: one edited by hand, or made by code whose recipes differ, is refused
    before anything is changed, since the run could not go on as it started."""
    recipe, overridden = resolve(args, batch_size, nb_epoch)
    if resumed and 'recipe' in resumed:
        # Through JSON, as run.json holds it (tuples become lists).
        if [resumed.get('recipe'), resumed.get('overridden')] != json.loads(
                json.dumps([recipe, overridden])):
            raise Refused('--resume %s: run.json\'s recipe is not the one its arguments give '
                          '(edited, or written by code with other recipes); start the run '
                          'again' % args.logdir)
    print('Recipe: %s%s' % (args.recipe, ' (overridden: %s)' % ', '.join(overridden)
                            if overridden else ''))
    return recipe, overridden


def compile_argument(spec, listing_sgd):
    """What model.compile gets as `optimizer` for the record `spec`.

    The string 'sgd' for the blog, `listing_sgd` (the listing's own SGD object) when the record
    asks for exactly its arguments, else an SGD built from the record.
    """
    from keras.optimizers import SGD  # Keras only once a model is built: cli.py reads NAMES
    args = dict((k, spec[k]) for k in SGD_ARGS)
    if spec['compile_with'] == 'string':
        if args != KERAS_SGD:
            raise ValueError("optimizer 'sgd' (the string) trains with Keras' defaults %r, "
                             "not %r" % (KERAS_SGD, args))
        return 'sgd'
    if spec == BLOG_SGD_OBJECT:
        return listing_sgd
    return SGD(**args)


def paper_lr(epoch, gamma, drops=(200, 250, 300), factor=0.1):
    """The learning rate of epoch `epoch`, counted from 1 as history.csv counts.

    The paper multiplies γ by 0.1 "after epochs" 200, 250 and 300: epochs 1-200 train with γ,
    201-250 with γ/10, 251-300 with γ/100 and 301-350 with γ/1000.
    """
    return gamma * factor ** sum(1 for d in drops if epoch > d)


def decay_kernels(model, weight_decay):
    """Weight decay λ on every convolution kernel of the built `model`, biases excluded.

    The paper's λ adds λw to each kernel's gradient: the loss term λ/2·||w||², Keras' l2(λ/2)
    (choice: the paper does not say how it counts λ, docs/recipes.md). Keras 1.2.2's
    W_regularizer argument does exactly this add_loss at build time (Layer.add_weight); doing
    it afterwards leaves the listing's layer lines as published.
    """
    from keras.layers import Convolution2D
    from keras.regularizers import l2
    if not weight_decay:
        return
    for layer in model.layers:
        if isinstance(layer, Convolution2D):
            layer.W_regularizer = l2(weight_decay / 2.)
            layer.add_loss(layer.W_regularizer(layer.W))


def count_weight_decay_once(template):
    """Undo Keras 1.2.2's repeat of the weight penalties when make_parallel calls `template`.

    Each call of a model appends its layers' unconditional losses (the l2 terms) to the model
    again, so with N towers the compiled loss would add the weight decay N times. The l2
    tensors are the same objects each time, so keeping the first of each restores one term
    per kernel. A single-device model is never called and keeps its list as it is.
    """
    graph = getattr(template, 'model', None) or template  # a Sequential keeps its graph here
    losses = getattr(graph, '_per_input_losses', {}).get(None)
    if losses:
        seen = set()
        losses[:] = [t for t in losses if not (id(t) in seen or seen.add(id(t)))]
