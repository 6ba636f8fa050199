"""Command-line flags of allconvnet.py: parsing, and refusing bad values before any work starts
(the folder they name is claimed by runkit/logdir.py).

Every refusal is one line on stderr and exit code 2 (argparse's convention), with no traceback.
"""

import datetime
import os

from runkit.argtypes import (Parser, count_or_all, folder, non_negative_float, positive_float,
                             positive_int, seed)
from runkit.recipes import NAMES

# XLA compiles the step once per batch shape (15-20 s each here, and a run has up to four:
# the full and the last batch, for training and validation), then trains 6-14% faster.
# --jit auto turns it on for runs of at least this many training images (10 CIFAR-10 epochs,
# about 3 hours here), where the compiling costs about 1% of the run (runkit/session.py).
JIT_MIN_IMAGES = 500000
JIT_CHOICES = ('auto', 'on', 'off')


def default_logdir():
    return os.path.join('logs', datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%SZ'))


def build_parser():
    # allow_abbrev=False: '--epoch 3' must not silently mean --epochs.
    p = Parser(prog='allconvnet.py', allow_abbrev=False,
               description='Train the All Convolutional Net (All-CNN-C) on CIFAR-10 as in the '
                           '2017 Keras 1 tutorial. Defaults are the blog recipe, the listing '
                           'with its gaps filled, and a progress bar where the listing has '
                           'verbose=0 (--quiet).')
    p.add_argument('--recipe', choices=NAMES, default='blog',
                   help="the settings to train with (default: blog): the blog's listing with "
                        "its gaps filled (ReLUs, dropout, pooling head and 1/255 scaling from "
                        "the post's prose and upstream), the upstream repository's final "
                        "allconv.py, or the paper's All-CNN-C; docs/recipes.md compares them. "
                        "The flags below override single fields")
    p.add_argument('--epochs', type=positive_int, default=None,
                   help="epochs to train (default: the recipe's; the blog's is nb_epoch in "
                        "allconvnet.py, docs/recipes.md has the others)")
    p.add_argument('--batch-size', type=positive_int, default=None,
                   help="images per step, split across the towers (default: the recipe's; "
                        "the blog's is batch_size in allconvnet.py)")
    p.add_argument('--gpus', type=count_or_all, default='all',
                   help="towers for make_parallel: a count, or 'all' visible GPUs "
                        "(default); 0 trains the plain model on the CPU")
    p.add_argument('--towers-on-cpu', action='store_true',
                   help='place the --gpus towers on virtual CPU devices /cpu:0..N-1 instead of '
                        'GPUs (to exercise make_parallel on a machine without GPUs)')
    p.add_argument('--train-limit', type=positive_int, default=None, metavar='N',
                   help='train on the first N training images only (short runs)')
    p.add_argument('--test-limit', type=positive_int, default=None, metavar='N',
                   help='validate on the first N test images only (short runs)')
    p.add_argument('--dim-ordering', choices=('tf', 'th'), default='tf',
                   help="Keras' image ordering: tf (default) keeps images NHWC, as upstream "
                        "9c5a2b4 pins it; th runs the listing's input_shape=(3, 32, 32) as "
                        "published, the ordering its author's keras.json must have named, at a "
                        "cost on a CPU (docs/performance.md)")
    p.add_argument('--seed', type=seed, default=None,
                   help='seed Python, numpy and TensorFlow (default: unseeded, as the blog)')
    p.add_argument('--deterministic', action='store_true',
                   help='one TensorFlow thread, so that a rerun with the same --seed on the '
                        'same CPU machine gives the same history.csv (needs --seed)')
    p.add_argument('--jit', choices=JIT_CHOICES, default='auto',
                   help="XLA compilation of the training step: auto (default) turns it on for "
                        "runs of at least %d training images on a machine without GPUs, where "
                        "it was measured faster (docs/performance.md); never under "
                        "--deterministic" % JIT_MIN_IMAGES)
    p.add_argument('--pass-sgd-object', action='store_true',
                   help="compile with the blog's unused SGD(lr=0.1, decay=1e-6, momentum=0.9, "
                        "nesterov=True) object instead of the string 'sgd' it really passes "
                        "(replaces the recipe's optimizer). The author's evident intent; it "
                        "diverges (see README)")
    p.add_argument('--lr', type=positive_float, default=None,
                   help="override the learning rate of whichever SGD trains, the paper's "
                        "starting rate gamma (default: the recipe's, docs/recipes.md)")
    p.add_argument('--weight-decay', type=non_negative_float, default=None, metavar='LAMBDA',
                   help="weight decay on every convolution kernel, as the paper's lambda "
                        "(a gradient term lambda*w; default: the recipe's, docs/recipes.md)")
    p.add_argument('--logdir', type=folder, default=None,
                   help='where the run writes its files (default: logs/<UTC timestamp>)')
    p.add_argument('--resume', type=folder, default=None, metavar='LOGDIR',
                   help='continue the run in LOGDIR after its last finished epoch, with the '
                        'arguments stored in its run.json (only --quiet may go with it)')
    p.add_argument('--overwrite', action='store_true',
                   help="let a new run delete the run files already in --logdir (a live "
                        "run's folder is refused all the same)")
    p.add_argument('--quiet', action='store_true',
                   help="no per-batch progress bar: the listing's verbose=0 (the checkpoint "
                        "still prints a line per epoch, as the post's did)")
    return p


def parse_args(argv, parser=None):
    """The flags of `argv`, refused in one line (exit 2) where they cannot be right. With
    --resume, only --resume and --quiet: the run's own arguments come from its run.json
    (runkit/logdir.py's hold)."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if args.resume is not None:
        extra = ['--' + k.replace('_', '-') for k, v in sorted(vars(args).items())
                 if k not in RESUME_MAY_CHANGE and v != parser.get_default(k)]
        if extra:
            parser.error('--resume continues a run with the arguments in its run.json; drop '
                         '%s (only --quiet may go with --resume)' % ', '.join(extra))
        return args
    if args.deterministic and args.seed is None:
        parser.error('--deterministic needs --seed N')
    if args.towers_on_cpu and args.gpus == 'all':
        parser.error('--towers-on-cpu needs a tower count, e.g. --gpus 2')
    if args.logdir is None:
        args.logdir = default_logdir()
    return args


# Flags that change only what a resumed run prints.
RESUME_MAY_CHANGE = ('resume', 'quiet')

