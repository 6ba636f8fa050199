"""Input preprocessing as a record: what allconvnet.py applies before training, stored in run.json.

predict.py (and anything else that feeds a trained model) reads the record back from run.json
and calls the same function, so the preprocessing is never typed twice.
"""
import numpy as np

# The blog never scales its inputs; the upstream repository divides by 255 (c2af6a7).
BLOG = {'name': 'scale', 'scale': 1. / 255}


def preprocess(X, spec, logdir=None):
    """float32 model input from uint8 images (N, 32, 32, 3), as the record `spec` says.

    `logdir` is where a run keeps any fitted statistics (none for 'scale').
    """
    if spec['name'] == 'scale':
        return X.astype('float32') * np.float32(spec['scale'])
    raise ValueError('unknown preprocessing %r in run.json' % (spec['name'],))
