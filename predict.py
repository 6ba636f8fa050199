"""Classify your own images with a trained All-CNN-C checkpoint: the top-k CIFAR-10 classes of each.

    python predict.py IMAGE [IMAGE ...] --run logs/<run> [--top 3] [--json]
    python predict.py IMAGE [IMAGE ...] --weights logs/<run>/weights.best.hdf5

The blog ends by sending readers elsewhere to use a trained model; the upstream repository's
inline attempt resized to 224x224, forgot the batch axis and used Python 2's print. Here every
image Pillow can read (PNG, JPEG, ...; any size; RGBA, greyscale or palette) is turned upright
by its EXIF orientation, converted to RGB (alpha is dropped), resized to 32x32 with Pillow's
bilinear filter (CIFAR-10's own 32x32 images pass unchanged; other aspect ratios are
stretched, not cropped) and given the preprocessing its training run recorded in run.json,
through runkit.preprocess, the same function allconvnet.py trains with. All images are
predicted in batches of --batch-size.

Exit codes: 0 every image classified; 1 some images could not be read (one `predict.py:
error:` line each on stderr, the others are still reported); 2 bad usage, a weights file that
is not a checkpoint of this model, or a run directory without checkpoint or run.json.
"""

import json
import os
import sys
import warnings

from runkit.errors import Refused, exit_code, prepare, say
prepare('predict.py')
import numpy as np
from PIL import Image, ImageOps

from runkit.argtypes import Parser, positive_int
from runkit.files import read_json_object
from runkit.logdir import CHECKPOINT, RUN_JSON, Logdir
from runkit.preprocess import SCALE_255, preprocess

# CIFAR-10's label order (batches.meta).
CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
           'dog', 'frog', 'horse', 'ship', 'truck')
ROWS, COLS, CHANNELS = 32, 32, 3
ALL_CLASSIFIED, SOME_FAILED, USAGE = 0, 1, 2


class PredictError(Refused):
    """A bad run, checkpoint or preprocessing record (exit 2)."""


def locate(weights=None, run=None):
    """(checkpoint path, run directory) for --weights FILE or --run DIR."""
    if run is not None:
        if not os.path.isdir(run):
            raise PredictError('--run %s: no such directory' % run)
        weights = os.path.join(run, CHECKPOINT)
        if not os.path.isfile(weights):
            raise PredictError('--run %s holds no checkpoint (%s); its first epoch has not '
                               'finished, or this is not a run directory' % (run, CHECKPOINT))
        return weights, run
    if os.path.isdir(weights):
        raise PredictError('--weights %s is a directory; pass it as --run %s' % (weights, weights))
    if not os.path.isfile(weights):
        raise PredictError('--weights %s: no such file' % weights)
    return weights, os.path.dirname(os.path.abspath(weights))


def read_preprocessing(logdir):
    """(the preprocessing record of the run in logdir, a note for stderr or None)."""
    record = os.path.join(logdir, RUN_JSON)
    if not os.path.isfile(record):
        raise PredictError('no run.json in %s: it records the preprocessing the model was '
                           'trained with; keep the run\'s run.json beside its checkpoint, or '
                           'use --run with the run directory' % logdir)
    run = read_json_object(record)
    if 'preprocessing' not in run:
        # Runs made before the record existed all scaled by 1/255: it was the only choice then.
        return SCALE_255, ('%s predates the preprocessing record; using the blog\'s scaling by '
                      '1/255, the only preprocessing such runs had' % record)
    spec = run['preprocessing']
    if not isinstance(spec, dict) or 'name' not in spec:
        raise PredictError('%s: preprocessing %r is not a record with a name' % (record, spec))
    return spec, None


def import_keras():
    import tensorflow as tf
    from keras import backend as K
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    # allconvnet.py trains with TF's ordering: images are NHWC.
    K.set_image_dim_ordering('tf')


def load_checkpoint(path):
    """The Keras model in `path`, if it is a checkpoint of this model; else PredictError.

    allconvnet.py saves the single-device template even after a multi-GPU run, so no
    make_parallel wrapper and no custom_objects are needed.
    """
    import_keras()
    from keras.models import load_model
    try:
        with warnings.catch_warnings():
            # A multi-GPU run's template was never compiled (the wrapper was), so Keras warns
            # that it cannot restore a training configuration: predicting needs none.
            warnings.filterwarnings('ignore', 'No training configuration found')
            model = load_model(path)
    except Exception as e:  # h5py and Keras fail in many ways: not HDF5, truncated, weights only
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PredictError('%s is not a checkpoint of this model: Keras cannot load it (%s)'
                           % (path, reason))
    expected = ((None, ROWS, COLS, CHANNELS), (None, len(CLASSES)))
    found = (model.input_shape, model.output_shape)
    # A model trained with --dim-ordering th takes channels first (classify transposes).
    if found != expected and found != ((None, CHANNELS, ROWS, COLS), expected[1]):
        raise PredictError('%s is not a checkpoint of this model: it maps %s to %s, not %s '
                           'CIFAR-10 images to %d classes' % (path, found[0], found[1],
                                                              expected[0], len(CLASSES)))
    return model


class UnsupportedImage(Exception):
    """An image whose pixel values cannot be read as 8 bits without guessing their range."""


def to_8_bits(img, fmt):
    """`img` as 8-bit RGB. Pillow's convert('RGB') clips 16-bit greyscale to 255 rather than
    scaling it, so those are scaled from 0-65535; images of 32-bit integers or floats carry
    no range to scale from and are refused."""
    if img.mode.startswith('I;16') or (img.mode == 'I' and fmt == 'PNG'):
        # PNG's 16-bit greyscale opens as 'I'; TIFF's as 'I;16'.
        grey = np.asarray(img, dtype=np.float64) * (255. / 65535.)
        img = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), 'L')
    elif img.mode in ('I', 'F') or img.mode.startswith('I;32') or img.mode.startswith('F;'):
        raise UnsupportedImage('holds %s pixels (Pillow mode %s), whose range is unknown; save '
                               'it as an 8- or 16-bit image' % (
                                   'floating-point' if img.mode.startswith('F') else
                                   '32-bit integer', img.mode))
    return img.convert('RGB')


def read_image(path):
    """uint8 (32, 32, 3): the image at `path` as the model sees it before preprocessing."""
    with Image.open(path) as img:
        # A phone photo stores "rotate me" in EXIF; the pixels alone are sideways.
        img = to_8_bits(ImageOps.exif_transpose(img), img.format)
    # Bilinear (with Pillow's support scaled to the reduction, so downscaling averages rather
    # than skips pixels); a 32x32 image is returned unchanged.
    img = img.resize((COLS, ROWS), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def read_images(paths):
    """(uint8 array (n, 32, 32, 3), the n paths read, [(path, one-line reason)] not read)."""
    arrays, read, failed = [], [], []
    for path in paths:
        try:
            arrays.append(read_image(path))
        except FileNotFoundError:
            failed.append((path, 'no such file'))
            continue
        except IsADirectoryError:
            failed.append((path, 'is a directory, not an image'))
            continue
        except Image.UnidentifiedImageError:
            failed.append((path, 'not an image Pillow can read'))
            continue
        except UnsupportedImage as e:
            failed.append((path, str(e)))
            continue
        except Exception as e:  # truncated or corrupt files fail while decoding, in many ways
            failed.append((path, 'cannot read the image: %s'
                           % (str(e).strip().splitlines() or [type(e).__name__])[0]))
            continue
        read.append(path)
    images = np.stack(arrays) if arrays else np.zeros((0, ROWS, COLS, CHANNELS), np.uint8)
    return images, read, failed


def classify(model, images, spec, logdir, batch_size=128):
    """Class probabilities (n, 10) of uint8 images (n, 32, 32, 3), preprocessed as `spec` says."""
    if model.input_shape[1] == CHANNELS:  # --dim-ordering th: trained, and fitted, on NCHW
        images = images.transpose(0, 3, 1, 2)
    try:
        x = preprocess(images, spec, Logdir(logdir))
    except Exception as e:  # an unknown record or missing fitted statistics: the run is at fault
        raise PredictError('cannot apply the preprocessing %r of %s/run.json: %s'
                           % (spec, logdir, e))
    return model.predict(x, batch_size=batch_size, verbose=0)


def top_classes(probabilities, k):
    """[(class name, probability)] of the k most probable classes, most probable first."""
    order = np.argsort(-probabilities, kind='stable')[:k]
    return [(CLASSES[i], float(probabilities[i])) for i in order]


def build_parser():
    p = Parser(prog='predict.py', allow_abbrev=False,
               description='Print the top-k CIFAR-10 classes of each image, with their '
                           'probabilities, from a checkpoint of allconvnet.py. Exit 0: all '
                           'classified; 1: some images unreadable; 2: bad weights, run or usage.')
    p.add_argument('images', nargs='+', metavar='IMAGE',
                   help='any image Pillow reads; converted to RGB and resized to 32x32')
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--run', metavar='DIR',
                        help='a run directory: uses DIR/%s and DIR/run.json' % CHECKPOINT)
    source.add_argument('--weights', metavar='FILE',
                        help='a checkpoint (e.g. logs/<run>/%s); the run.json beside it says '
                             'how to preprocess' % CHECKPOINT)
    p.add_argument('--top', type=positive_int, default=3, metavar='K',
                   help='classes to print per image (default: %(default)s; 10 for all)')
    p.add_argument('--json', action='store_true',
                   help='one JSON document on stdout: every image with its top-k classes and '
                        'all 10 probabilities, or its error')
    p.add_argument('--batch-size', type=positive_int, default=128, metavar='N',
                   help='images per predict step (default: %(default)s)')
    return p




def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top > len(CLASSES):
        parser.error('--top %d: CIFAR-10 has %d classes' % (args.top, len(CLASSES)))
    weights, logdir = locate(args.weights, args.run)
    spec, note = read_preprocessing(logdir)
    if note:
        say('predict.py', 'note', note)
    model = load_checkpoint(weights)
    images, read, failed = read_images(args.images)
    probabilities = (classify(model, images, spec, logdir, args.batch_size) if len(read)
                     else np.zeros((0, len(CLASSES)), np.float32))

    for path, reason in failed:
        say('predict.py', 'error', '%s: %s' % (path, reason))
    results = dict((path, p) for path, p in zip(read, probabilities))
    reasons = dict(failed)
    if args.json:
        entries = []
        for path in args.images:
            if path in results:
                entries.append({'image': path,
                                'top': [{'class': c, 'probability': p}
                                        for c, p in top_classes(results[path], args.top)],
                                'probabilities': [float(p) for p in results[path]]})
            else:
                entries.append({'image': path, 'error': reasons[path]})
        json.dump({'weights': weights, 'preprocessing': spec, 'classes': list(CLASSES),
                   'images': entries}, sys.stdout, indent=2)
        sys.stdout.write('\n')
    else:
        for path in read:
            print('%s: %s' % (path, ', '.join('%s %.3f' % cp
                                              for cp in top_classes(results[path], args.top))))
    return SOME_FAILED if failed else ALL_CLASSIFIED


if __name__ == '__main__':
    sys.exit(exit_code(main, 'predict.py'))
