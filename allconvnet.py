"""The 2017 Keras 1 tutorial "All ConvNet: Striving for Simplicity", as a runnable script.

It follows the blog post's code listing statement by statement, in the post's order, with
the listing's gaps filled. A comment on a line says why it differs from the post and which
source decided it; docs/blog-vs-repo.md lines the two up. Defaults are the post's settings
(batch 32, 1000 epochs); `--recipe upstream` and `--recipe paper` train with the upstream
repository's and the paper's instead (runkit/recipes.py, docs/recipes.md), and
`python allconvnet.py --help` lists the overrides.
"""
# Importing the libraries and the dependencies
from __future__ import print_function
import os
import random
import sys
# Keras 1.2.2 reads its backend from ~/.keras/keras.json, which may name Theano.
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
# TF 1.15's INFO lines and deprecation notices about Keras 1.2.2's calls bury the progress.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
import numpy as np
import tensorflow as tf
from keras.datasets import cifar10
from keras.preprocessing.image import ImageDataGenerator
from keras.models import Sequential
from keras.layers import Dropout, Activation, Convolution2D, GlobalAveragePooling2D
from keras.utils import np_utils
from keras.optimizers import SGD
from keras import backend as K
from keras.regularizers import l2
import pandas
from make_parallel import make_parallel, count_devices
from runkit import dataset, recipes, session
from runkit.cli import parse_args
from runkit.guards import (Diverged, EpochEndHoldsSignals, Interrupted, NaNGuard,
                           raise_on_signals)
from runkit.preprocess import fit as fit_preprocessing, preprocess
from runkit.records import (AtomicModelCheckpoint, HistoryCSV, check_logdir, git_commit,
                            machine, save_model_atomically, utc_now, versions,
                            write_json)
from runkit.resume import SaveState, restore_state
from tools.curves import plot_run

tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)

# Upstream 9c5a2b4 (getcrest/All-Conv-Keras PR #3) pins the TF ordering: images are NHWC.
K.set_image_dim_ordering('tf')

# Configuring batch size, number of classes and the no of iterations
batch_size = 32
nb_classes = 10
nb_epoch = 1000
rows, cols = 32, 32
channels = 3


def build_model(dropout=0.5, dropout_input=0., weight_decay=0.):
    """All-CNN-C as the blog builds it, plus the layers the upstream repository adds.

    The defaults are the blog's and upstream's model; the paper's recipe also drops input
    pixels (`dropout_input`) and decays every kernel (`weight_decay`, its λ).
    """
    def kernel_decay():
        # The paper's λ adds λw to each kernel's gradient, the loss term λ/2·||w||², which is
        # Keras' l2(λ/2) (it adds l·sum(w²)). Biases are not decayed (docs/recipes.md).
        return l2(weight_decay / 2.) if weight_decay else None
    # (32, 32, 3), not the blog's (3, 32, 32): 'tf' ordering is NHWC (upstream issue #2, PR #5).
    shape = {'input_shape': (rows, cols, channels)}
    model = Sequential()
    if dropout_input:
        # The paper's dropout on the input image; the first layer takes the input shape.
        model.add(Dropout(dropout_input, **shape))
        shape = {}
    model.add(Convolution2D(96, 3, 3, border_mode='same', W_regularizer=kernel_decay(), **shape))
    # Each ReLU, Dropout and the softmax head below are from upstream c2af6a7 and the paper.
    model.add(Activation('relu'))
    model.add(Convolution2D(96, 3, 3, border_mode='same', W_regularizer=kernel_decay()))
    model.add(Activation('relu'))
    # The next layer is the substitute of max pooling, we are taking a strided convolution layer to reduce the dimensionality of the image.
    model.add(Convolution2D(96, 3, 3, border_mode='same', subsample=(2, 2), W_regularizer=kernel_decay()))
    model.add(Dropout(dropout))
    model.add(Convolution2D(192, 3, 3, border_mode='same', W_regularizer=kernel_decay()))
    model.add(Activation('relu'))
    model.add(Convolution2D(192, 3, 3, border_mode='same', W_regularizer=kernel_decay()))
    model.add(Activation('relu'))
    # The next layer is the substitute of max pooling, we are taking a strided convolution layer to reduce the dimensionality of the image.
    model.add(Convolution2D(192, 3, 3, border_mode='same', subsample=(2, 2), W_regularizer=kernel_decay()))
    model.add(Dropout(dropout))
    model.add(Convolution2D(192, 3, 3, border_mode='same', W_regularizer=kernel_decay()))
    model.add(Activation('relu'))
    model.add(Convolution2D(192, 1, 1, border_mode='valid', W_regularizer=kernel_decay()))
    model.add(Activation('relu'))
    model.add(Convolution2D(10, 1, 1, border_mode='valid', W_regularizer=kernel_decay()))
    model.add(GlobalAveragePooling2D())
    model.add(Activation('softmax'))
    return model


def draw_curves(logdir):
    # Issue 4: every run leaves curves.png beside its history; a failed plot is only a warning.
    if os.path.exists(os.path.join(logdir, 'history.csv')):
        try:
            plot_run(logdir)
        except Exception as e:
            print('Could not draw %s/curves.png: %s' % (logdir, e), file=sys.stderr)


def fail(message, code=2):
    sys.stderr.write('allconvnet.py: error: %s\n' % message)
    return code


def main(argv=None):
    args, resumed = parse_args(argv, batch_size, nb_epoch)
    # The settings come from one record (runkit/recipes.py); a resumed run keeps its own.
    recipe, overridden = recipes.resolve(args)
    if resumed and 'recipe' in resumed:
        recipe, overridden = resumed['recipe'], resumed['overridden']
    print('Recipe: %s%s' % (args.recipe, ' (overridden: %s)' % ', '.join(overridden)
                            if overridden else ''))

    if not resumed:
        problem = check_logdir(args.logdir, args.overwrite)
        if problem:
            return fail(problem)

    # Splitting the dataset into train, test and validation set
    # Fetched and verified before the session starts, so a bad cache fails before any GPU does.
    try:
        dataset.ensure()
        try:
            (X_train, y_train), (X_test, y_test) = cifar10.load_data()
        except Exception as e:
            raise dataset.diagnose(e)
        dataset.validate(X_train, y_train, X_test, y_test)
    except dataset.DatasetError as e:
        return fail(str(e))
    warning = session.newer_gpu_warning(session.cuda_gpus())
    if warning:
        print(warning, file=sys.stderr)
    # A session of our own, for --deterministic's single thread, --towers-on-cpu's devices and,
    # in long runs on a CPU-only machine, XLA, measured faster there (runkit/session.py).
    jit = session.use_jit(args.jit, args.deterministic,
                          recipe['epochs'] * min(args.train_limit or 50000, 50000))
    config = session.config(cpu_devices=max(args.gpus, 1) if args.towers_on_cpu else None,
                            deterministic=args.deterministic, jit=jit)
    K.set_session(tf.Session(config=config))
    if jit:
        print('XLA on (--jit %s): each new batch shape compiles once, 15-20 s on a 2-core CPU'
              % args.jit)
    device = '/cpu:%d' if args.towers_on_cpu else '/gpu:%d'
    visible = count_devices(device)
    gpu_count = visible if args.gpus == 'all' else args.gpus
    if gpu_count > visible:
        return fail('--gpus %d asks for more %s than the %d visible'
                    % (gpu_count, 'CPU devices' if args.towers_on_cpu else 'GPUs', visible))
    towers = max(gpu_count, 1)  # --gpus 0: the plain model on the CPU
    kind = 'CPU device' if args.towers_on_cpu else 'GPU'
    if towers > 1:
        print('Training on %d %ss via make_parallel (%d visible)' % (towers, kind, visible))
    elif gpu_count == 1:
        print('Training on 1 %s, no make_parallel needed (%d visible)' % (kind, visible))
    else:
        print('Training on the CPU, no make_parallel (%d GPUs visible%s)'
              % (visible, '' if args.gpus == 'all' else ', --gpus 0'))
    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
        tf.set_random_seed(args.seed)

    # --train-limit / --test-limit: the first N samples, for short runs.
    X_train, y_train = X_train[:args.train_limit], y_train[:args.train_limit]
    X_test, y_test = X_test[:args.test_limit], y_test[:args.test_limit]
    # Scaled to [0, 1] as upstream c2af6a7 does (the blog feeds raw 0-255 values), or the
    # paper's GCN + ZCA, fitted on the training images once, before any augmentation.
    preprocessing = recipe['preprocessing']
    if not resumed:
        fit_preprocessing(X_train, preprocessing, args.logdir)
    X_train = preprocess(X_train, preprocessing, args.logdir)
    X_test = preprocess(X_test, preprocessing, args.logdir)
    print('X_train shape:', X_train.shape)
    print(X_train.shape[0], 'train samples')
    print(X_test.shape[0], 'test samples')
    print(X_train.shape[1:])
    Y_train = np_utils.to_categorical(y_train, nb_classes)
    Y_test = np_utils.to_categorical(y_test, nb_classes)

    # Building the model
    model = build_model(recipe['dropout'], recipe['dropout_input'], recipe['weight_decay'])
    template = model
    model = make_parallel(model, towers, device=device)
    recipes.count_weight_decay_once(template)
    sgd = SGD(lr=0.1, decay=1e-6, momentum=0.9, nesterov=True)
    # As published, compile gets the string 'sgd', not the object above, so Keras trains with
    # its default SGD (lr 0.01, no momentum, no decay); upstream PR #1 (dca8f05) found this.
    # --pass-sgd-object compiles with the object above; upstream and paper build their own.
    optimizer = recipes.compile_argument(recipe['optimizer'], sgd)
    model.compile(loss='categorical_crossentropy', optimizer=optimizer, metrics=['accuracy'])
    # The template's summary: the parallel wrapper's would hide the layers.
    template.summary()

    # Data augmentation
    # The blog recipe's arguments are the listing's, line for line (runkit/recipes.py).
    datagen = ImageDataGenerator(**recipe['augmentation'])

    # Saving the best weights and adding checkpoints into our model
    # The blog never defines filepath; upstream c2af6a7 used "weights.hdf5".
    filepath = os.path.join(args.logdir, 'weights.best.hdf5')
    # Atomic: a crash while saving leaves the previous best in place.
    checkpoint = AtomicModelCheckpoint(filepath, monitor='val_acc', verbose=1, save_best_only=True, save_weights_only=False, mode='max')
    run = resumed or {
        'argv': list(sys.argv[1:] if argv is None else argv), 'args': vars(args),
        'started': utc_now(), 'seed': args.seed, 'git_commit': git_commit(),
        'versions': versions(), 'machine': machine(), 'last_epoch': 0}
    run.update(status='running', towers=towers, preprocessing=preprocessing, xla=jit,
               threads=[config.intra_op_parallelism_threads, config.inter_op_parallelism_threads],
               recipe_name=args.recipe, recipe=recipe, overridden=overridden,
               devices=[device % i for i in range(towers)] if towers > 1 else ['default'],
               optimizer={'class_name': type(model.optimizer).__name__,
                          'config': model.optimizer.get_config(),
                          'compiled_with': "string 'sgd'" if optimizer == 'sgd' else 'sgd object',
                          'note': "the blog builds SGD(lr=0.1, decay=1e-6, momentum=0.9, "
                                  "nesterov=True) but compiles with optimizer='sgd', so this "
                                  "config is what really trains" if optimizer == 'sgd' else
                                  "the recipe's SGD object; lr is the starting rate of any "
                                  "lr_schedule"})
    run_json = os.path.join(args.logdir, 'run.json')
    history_csv = os.path.join(args.logdir, 'history.csv')
    initial_epoch = 0
    if resumed:
        initial_epoch = restore_state(template, model, os.path.join(args.logdir, 'state.h5'))
        history = pandas.read_csv(history_csv)
        history = history[history.epoch <= initial_epoch]
        history.to_csv(history_csv, index=False)
        if len(history) and os.path.exists(filepath):
            checkpoint.best = float(history.val_acc.max())
        run.setdefault('resumed_at_epoch', []).append(initial_epoch)
        print('Resuming %s after epoch %d' % (args.logdir, initial_epoch))
    write_json(run_json, run)

    def epoch_saved(epoch):
        run['last_epoch'] = epoch
        write_json(run_json, run)

    callbacks_list = [EpochEndHoldsSignals([
        HistoryCSV(history_csv, model.optimizer, nb_epoch=recipe['epochs']), checkpoint,
        SaveState(template, model.optimizer, os.path.join(args.logdir, 'state.h5'), epoch_saved)]),
        NaNGuard()]
    if recipe['lr_schedule']:  # the paper's steps; set before each epoch, also after --resume
        callbacks_list.insert(0, recipes.StepSchedule(model.optimizer, recipe['optimizer']['lr'],
                                                      recipe['lr_schedule']))
    raise_on_signals()
    # Fit the model on the batches generated by datagen.flow().
    try:
        history_callback = model.fit_generator(datagen.flow(X_train, Y_train, batch_size=recipe['batch_size'], seed=args.seed), samples_per_epoch=X_train.shape[0], nb_epoch=recipe['epochs'], validation_data=(X_test, Y_test), callbacks=callbacks_list, verbose=0 if args.quiet else 1, initial_epoch=initial_epoch)
    except Diverged as e:
        run.update(status='diverged', ended=utc_now(), error=str(e))
        write_json(run_json, run)
        draw_curves(args.logdir)
        return fail('%s; history up to the last finished epoch is in %s' % (e, history_csv), 3)
    except Interrupted as e:
        run.update(status='interrupted', ended=utc_now(), signal=e.signum)
        write_json(run_json, run)
        draw_curves(args.logdir)
        print('\nInterrupted; every finished epoch is in %s. Continue with: python allconvnet.py '
              '--resume %s' % (history_csv, args.logdir), file=sys.stderr)
        return 128 + e.signum

    # Finally taking the log of the training process and saving our model
    # history.csv already holds one row per epoch (HistoryCSV); the final model is the template.
    save_model_atomically(template, os.path.join(args.logdir, 'model.h5'))
    run.update(status='finished', ended=utc_now())
    write_json(run_json, run)
    draw_curves(args.logdir)
    print('Finished: %s' % args.logdir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
