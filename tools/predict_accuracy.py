"""Top-1 accuracy of a run's checkpoint through predict.py on labelled images, beside its val_acc.

    python -m tools.predict_accuracy FOLDER --run logs/<run> [--batch-size N]

FOLDER holds one subfolder per CIFAR-10 class, named as predict.CLASSES (airplane, automobile,
...), with the images of that class: the layout of the CIFAR-10 JPEG copy's test/ folder. Every
image goes through predict.py's own reading, preprocessing and prediction functions. The
checkpoint (weights.best.hdf5) is the epoch with the best val_acc in the run's history.csv;
when FOLDER holds the images the run validated on, the two accuracies must agree, up to what
re-encoding the images changed.

Exit codes: 0 measured; 1 some images could not be read (the rest are measured); 2 bad input.
"""
import os
import sys

import numpy as np

import predict
from runkit.argtypes import Parser, positive_int
from runkit.errors import Refused, exit_code, prepare, say
from tools.runs import load_history, require_columns

PROG = 'python -m tools.predict_accuracy'


def labelled_files(folder):
    """([image path], [class index]) from FOLDER/<class>/*, sorted; PredictError if odd."""
    if not os.path.isdir(folder):
        raise predict.PredictError('%s: no such directory' % folder)
    subfolders = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    unknown = [d for d in subfolders if d not in predict.CLASSES]
    if unknown or not subfolders:
        raise predict.PredictError('%s must hold one folder per CIFAR-10 class (%s); found %s'
                                   % (folder, ', '.join(predict.CLASSES), subfolders or 'none'))
    paths, labels = [], []
    for name in subfolders:
        for entry in sorted(os.listdir(os.path.join(folder, name))):
            paths.append(os.path.join(folder, name, entry))
            labels.append(predict.CLASSES.index(name))
    return paths, labels


def main(argv=None):
    p = Parser(prog=PROG, allow_abbrev=False, description=__doc__.strip().splitlines()[0])
    p.add_argument('folder', metavar='FOLDER', help='FOLDER/<class>/<image>')
    p.add_argument('--run', required=True, metavar='DIR', help='a run directory of allconvnet.py')
    p.add_argument('--batch-size', type=positive_int, default=128, metavar='N')
    args = p.parse_args(argv)
    try:
        paths, labels = labelled_files(args.folder)
        weights, logdir = predict.locate(run=args.run)
        spec, note = predict.read_preprocessing(logdir)
        if note:
            say(PROG, 'note', note)
        history = load_history(args.run)
        require_columns(history, ['val_acc'])
        val_accs = history.frame['val_acc']
        # The checkpoint is only replaced on a strictly higher val_acc: idxmax keeps the first.
        epoch, val_acc = val_accs.idxmax(), val_accs.max()
        model = predict.load_checkpoint(weights)
        images, read, failed = predict.read_images(paths)
        probabilities = predict.classify(model, images, spec, logdir, args.batch_size)
    except (OSError, ValueError, KeyError) as e:  # the folder, or the run's history.csv
        raise Refused(str(e))
    for path, reason in failed:
        say(PROG, 'error', '%s: %s' % (path, reason))
    unread = set(path for path, _ in failed)
    truth = np.array([label for path, label in zip(paths, labels) if path not in unread])
    correct = int((probabilities.argmax(axis=1) == truth).sum())
    accuracy = correct / len(truth) if len(truth) else float('nan')
    print('top-1 accuracy through predict.py: %.4f (%d of %d images in %s)'
          % (accuracy, correct, len(truth), args.folder))
    print('checkpoint %s: epoch %d, val_acc %.4f in history.csv' % (weights, epoch, val_acc))
    print('difference: %+.4f (%+d images of %d)'
          % (accuracy - val_acc, correct - int(round(val_acc * len(truth))), len(truth)))
    return 1 if failed else 0


if __name__ == '__main__':
    prepare(PROG)
    sys.exit(exit_code(main, PROG))
