"""The 2017 Keras 1 tutorial "All ConvNet: Striving for Simplicity", as a runnable script.

The blog post's code listing, statement by statement in the post's order, with its gaps
filled. Each `# blog:` comment says why the line below it differs from the post and which
source decided it, in [brackets]; docs/blog-vs-repo.md lines the two up.
runkit/ holds what a run needs around the listing; `python allconvnet.py --help` lists the
flags, and `--recipe upstream|paper` trains with the upstream repository's or the paper's
settings (docs/recipes.md).
"""
# Importing the libraries and the dependencies
from __future__ import print_function
import sys
# blog: the backend, TF's log level and a clean Ctrl-C set before TensorFlow loads. [repo]
from runkit.errors import exit_code, prepare
prepare('allconvnet.py')
import tensorflow as tf
from keras.datasets import cifar10
from keras.preprocessing.image import ImageDataGenerator
from keras.models import Sequential
from keras.layers import Dropout, Activation, Convolution2D, GlobalAveragePooling2D
from keras.utils import np_utils
from keras.optimizers import SGD
from keras import backend as K
from keras.callbacks import ModelCheckpoint
import pandas
from make_parallel import make_parallel
from runkit import callbacks, dataset, files, guards, preprocess, recipes, records, resume, session
from runkit.cli import parse_args
from runkit.logdir import CHECKPOINT, HISTORY_CALLBACK, MODEL, hold

# Configuring batch size, number of classes and the no of iterations
batch_size = 32
nb_classes = 10
nb_epoch = 1000
rows, cols = 32, 32
channels = 3


# blog: the listing's model statements in a function, so that tools and tests can build the
# model without training it. [repo]
def build_model(recipe):
    """All-CNN-C as the listing builds it, with the layers its prose and upstream add."""
    model = Sequential()
    # blog: one shape for the chosen ordering: the listing's (3, 32, 32) is Theano's 'th';
    # this repo's default is TensorFlow's 'tf', set in main() (--dim-ordering). [upstream 9c5a2b4]
    channels_first = K.image_dim_ordering() == 'th'
    shape = (channels, rows, cols) if channels_first else (rows, cols, channels)
    # blog: the paper's recipe drops 20% of the input pixels. [paper]
    if recipe['dropout_input']:
        model.add(Dropout(recipe['dropout_input'], input_shape=shape))
    # blog: the listing's first layer as published needs --dim-ordering th. [upstream 9c5a2b4]
    if channels_first:
        model.add(Convolution2D(96, 3, 3, border_mode='same', input_shape=(3, 32, 32)))
    else:
        # blog: (32, 32, 3) under the TF ordering, where the listing's (3, 32, 32) fails.
        # [upstream issue #2; upstream PR #5]
        model.add(Convolution2D(96, 3, 3, border_mode='same', input_shape=shape))
    # blog: a ReLU after each non-strided convolution; the listing has no activation at all.
    # [prose; upstream c2af6a7; paper]
    model.add(Activation('relu'))
    model.add(Convolution2D(96, 3, 3, border_mode='same'))
    model.add(Activation('relu'))
    # The next layer is the substitute of max pooling, we are taking a strided convolution layer to reduce the dimensionality of the image.
    model.add(Convolution2D(96, 3, 3, border_mode='same', subsample=(2, 2)))
    # blog: the paper's table puts a ReLU after every convolution, the strided ones and the
    # last included; upstream and the blog recipe have only the six above. [paper]
    if recipe['relu_everywhere']:
        model.add(Activation('relu'))
    # blog: dropout 0.5 after each stride-2 convolution. [upstream c2af6a7; paper]
    model.add(Dropout(recipe['dropout']))
    model.add(Convolution2D(192, 3, 3, border_mode='same'))
    model.add(Activation('relu'))
    model.add(Convolution2D(192, 3, 3, border_mode='same'))
    model.add(Activation('relu'))
    # The next layer is the substitute of max pooling, we are taking a strided convolution layer to reduce the dimensionality of the image.
    model.add(Convolution2D(192, 3, 3, border_mode='same', subsample=(2, 2)))
    if recipe['relu_everywhere']:
        model.add(Activation('relu'))
    model.add(Dropout(recipe['dropout']))
    model.add(Convolution2D(192, 3, 3, border_mode='same'))
    model.add(Activation('relu'))
    model.add(Convolution2D(192, 1, 1, border_mode='valid'))
    model.add(Activation('relu'))
    model.add(Convolution2D(10, 1, 1, border_mode='valid'))
    if recipe['relu_everywhere']:
        model.add(Activation('relu'))
    # blog: global average pooling and softmax, which the prose names and the listing lacks.
    # [prose; upstream c2af6a7; paper]
    model.add(GlobalAveragePooling2D())
    model.add(Activation('softmax'))
    # blog: the paper recipe's weight decay λ = 0.001 on every kernel (the blog's and
    # upstream's have none), added after the listing's layers so that they stay as the post
    # prints them; counting it as l2(λ/2) without biases is this repo's choice. [paper; repo]
    recipes.decay_kernels(model, recipe['weight_decay'])
    return model


# blog: the listing's top-level statements in main(), so that a failure can end in one line
# and an exit code; flags and recipes, with the constants above as the blog's defaults. [repo]
def main(argv=None):
    logdir, args, resumed, initial_epoch = hold(parse_args(argv))
    recipe, overridden = recipes.for_run(args, resumed, batch_size, nb_epoch)
    # blog: a GPU this TensorFlow build has no kernels for is refused first, in seconds. [repo]
    gpus = session.check_gpus(args)

    # Splitting the dataset into train, test and validation set
    # blog: NHWC unless --dim-ordering th, which the post's (3, 32, 32) implies. [upstream 9c5a2b4]
    K.set_image_dim_ordering(args.dim_ordering)
    # blog: fetched and MD5-verified before any GPU starts; a broken cache explained. [repo]
    with dataset.explained():
        (X_train, y_train), (X_test, y_test) = cifar10.load_data()
    # blog: the arrays checked for CIFAR-10's shapes, types and labels. [repo]
    dataset.validate(X_train, y_train, X_test, y_test, args.dim_ordering == 'th')
    # blog: --train-limit and --test-limit keep the first N images, for short runs. [repo]
    X_train, y_train = X_train[:args.train_limit], y_train[:args.train_limit]
    X_test, y_test = X_test[:args.test_limit], y_test[:args.test_limit]
    # blog: [0, 1] pixels (the listing feeds 0-255), or GCN + ZCA. [upstream c2af6a7; paper]
    X_train, X_test = preprocess.inputs(recipe['preprocessing'], X_train, X_test, logdir,
                                        fitted=bool(resumed))
    print('X_train shape:', X_train.shape)
    print(X_train.shape[0], 'train samples')
    print(X_test.shape[0], 'test samples')
    print(X_train.shape[1:])
    Y_train = np_utils.to_categorical(y_train, nb_classes)
    Y_test = np_utils.to_categorical(y_test, nb_classes)

    # Building the model
    # blog: our own session (devices, threads, XLA), made after the data is in hand. [repo]
    placed = session.setup(args, recipe, gpus)
    model = template = build_model(recipe)
    # blog: every visible GPU (--gpus), not 4; one device trains the plain model. [prose]
    model = make_parallel(model, placed.towers, device=placed.device)
    # blog: towers repeat the template's weight penalties; count them once. [Keras 1.2.2 API]
    recipes.count_weight_decay_once(template)
    sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
    # blog: the post compiles with the string 'sgd', so Keras trains with its default SGD
    # (lr 0.01, no momentum); kept, --pass-sgd-object passes the object. [upstream PR #1]
    optimizer = recipes.compile_argument(recipe['optimizer'], sgd)
    model.compile(loss='categorical_crossentropy', optimizer=optimizer, metrics=['accuracy'])
    # blog: the summary of the single-device model, without the stray None. [Keras 1.2.2 API]
    template.summary()

    # Data augmentation
    # blog: the recipe's arguments; the blog recipe's are the listing's, verbatim, in
    # runkit/recipes.py. [upstream d642d15; paper]
    datagen = ImageDataGenerator(**recipe['augmentation'])

    # Saving the best weights and adding checkpoints into our model
    # blog: the listing never defines filepath; the name in the run's folder. [upstream c2af6a7]
    filepath = CHECKPOINT
    # blog: written whole by the folder's owner (runkit/logdir.py): a crash or a full disk
    # keeps the last best. [repo]
    checkpoint = callbacks.AtomicModelCheckpoint(logdir, filepath, monitor='val_acc', verbose=1,
        save_best_only=True, save_weights_only=False, mode='max')
    callbacks_list = [checkpoint]
    # blog: --resume restores weights, momenta and history before run.json says running; each
    # epoch saves history.csv's row, checkpoint, state.h5, run.json in that order, signals held,
    # so --resume repairs a kill between them. [prose; upstream c2af6a7; paper]
    resume.restore(resumed, logdir, initial_epoch, template, model, checkpoint)
    records.start_run(logdir, argv, args, resumed, recipe, overridden, placed, model, initial_epoch)
    epoch_end = [callbacks.HistoryCSV(logdir, model.optimizer, recipe['epochs']), checkpoint,
                 resume.SaveState(template, model.optimizer, logdir)]
    callbacks_list = [callbacks.Progress(model, args.quiet), guards.EpochEndHoldsSignals(epoch_end),
                      guards.NaNGuard()] + callbacks.lr_steps(recipe, model.optimizer)
    # Fit the model on the batches generated by datagen.flow().
    # blog: the recipe's batch and epochs, a seed, resume; run.json says how it ended; a
    # failure in Keras' feeding thread is handed to this one (runkit/guards.py). [repo]
    with records.outcome(logdir):
        history_callback = model.fit_generator(
            guards.Feeder(datagen.flow(X_train, Y_train, batch_size=recipe['batch_size'],
                                       seed=args.seed)),
            samples_per_epoch=X_train.shape[0], nb_epoch=recipe['epochs'],
            validation_data=(X_test, Y_test), callbacks=callbacks_list, verbose=0,
            initial_epoch=initial_epoch)
        # Finally taking the log of the training process and saving our model
        # blog: missing from the archived post; upstream c2af6a7's history dump and model.save
        # here beside the per-epoch history.csv; the template saved whole, both through the
        # run's folder. [prose; upstream c2af6a7]
        logdir.write(HISTORY_CALLBACK, pandas.DataFrame(history_callback.history).to_csv())
        logdir.write(MODEL, files.model_bytes(template))
    records.finish_run(logdir)
    return 0


# blog: whatever ends the run ends in one line on stderr and an exit code. [repo]
if __name__ == '__main__':
    sys.exit(exit_code(main, 'allconvnet.py'))
