"""Top-1 accuracy of a run's checkpoint through predict.py on labelled image files, beside its val_acc.

    python tools/predict_accuracy.py FOLDER --run logs/<run> [--batch-size N]

FOLDER holds one subfolder per CIFAR-10 class, named as predict.CLASSES (airplane, automobile,
...), with the images of that class: the layout of the CIFAR-10 JPEG copy's test/ folder. Every
image goes through predict.py's own reading, preprocessing and prediction functions. The
checkpoint (weights.best.hdf5) is the epoch with the best val_acc in the run's history.csv;
when FOLDER holds the images the run validated on, the two accuracies must agree, up to what
re-encoding the images changed.

Exit codes: 0 measured; 1 some images could not be read (the rest are measured); 2 bad input.
"""
from __future__ import print_function

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import pandas  # noqa: E402

import predict  # noqa: E402


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


def checkpoint_epoch(run):
    """(epoch, val_acc) of the best epoch in run/history.csv: the one weights.best.hdf5 holds.

    The checkpoint is only replaced on a strictly higher val_acc, so a tie keeps the first.
    """
    history = pandas.read_csv(os.path.join(run, 'history.csv'))
    best = history.val_acc.idxmax()
    return int(history.epoch[best]), float(history.val_acc[best])


def main(argv=None):
    p = predict.Parser(prog='predict_accuracy.py', allow_abbrev=False,
               description=__doc__.strip().splitlines()[0])
    p.add_argument('folder', metavar='FOLDER', help='FOLDER/<class>/<image>')
    p.add_argument('--run', required=True, metavar='DIR', help='a run directory of allconvnet.py')
    p.add_argument('--batch-size', type=predict.positive_int, default=128, metavar='N')
    args = p.parse_args(argv)
    try:
        paths, labels = labelled_files(args.folder)
        weights, logdir = predict.locate(run=args.run)
        spec, note = predict.read_preprocessing(logdir)
        if note:
            sys.stderr.write('predict_accuracy.py: note: %s\n' % note)
        epoch, val_acc = checkpoint_epoch(args.run)
        model = predict.load_checkpoint(weights)
        images, read, failed = predict.read_images(paths)
        probabilities = predict.classify(model, images, spec, logdir, args.batch_size)
    except (predict.PredictError, OSError, ValueError, KeyError) as e:
        sys.stderr.write('predict_accuracy.py: error: %s\n' % e)
        return 2
    for path, reason in failed:
        sys.stderr.write('predict_accuracy.py: error: %s: %s\n' % (path, reason))
    unread = set(path for path, _ in failed)
    truth = np.array([label for path, label in zip(paths, labels) if path not in unread])
    correct = int((probabilities.argmax(axis=1) == truth).sum())
    accuracy = correct / float(len(truth)) if len(truth) else float('nan')
    print('top-1 accuracy through predict.py: %.4f (%d of %d images in %s)'
          % (accuracy, correct, len(truth), args.folder))
    print('checkpoint %s: epoch %d, val_acc %.4f in history.csv' % (weights, epoch, val_acc))
    print('difference: %+.4f (%+d images of %d)'
          % (accuracy - val_acc, correct - int(round(val_acc * len(truth))), len(truth)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
