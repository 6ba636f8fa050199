"""Input preprocessing as a record: what allconvnet.py applies before training, stored in run.json.

predict.py (and anything else that feeds a trained model) reads the record back from run.json
and calls the same function, so the preprocessing is never typed twice. A record that needs
statistics of the training set (the paper's GCN + ZCA) is fitted once by `fit`, which writes
them to the run's logdir; `preprocess` reads them from there.
"""
import io

import numpy as np

from runkit.errors import Refused
from runkit.logdir import PREPROCESSING

# The blog never scales its inputs; the upstream repository divides by 255 (c2af6a7), and
# the blog and upstream recipes follow it.
SCALE_255 = {'name': 'scale', 'scale': 1. / 255}

# The paper whitens and contrast-normalises CIFAR-10 "as in Goodfellow et al. 2013" (maxout).
# That preprocessing is pylearn2's scripts/datasets/make_cifar10_gcn_whitened.py:
# CIFAR10(gcn=55.), i.e. global_contrast_normalize(X, scale=55.) with its defaults (subtract
# each image's mean, divide by its L2 norm, sqrt_bias 0, min_divisor 1e-8), then
# preprocessing.ZCA() with its default filter_bias 0.1, fitted on the training set.
GCN_ZCA = {'name': 'gcn_zca', 'gcn_scale': 55., 'zca_bias': 0.1, 'fitted': PREPROCESSING}

# Rows per matrix product: bounds the float64 temporaries at about 120 MB for 3072 features.
CHUNK = 5000


def flat(X):
    return X.reshape(len(X), int(np.prod(X.shape[1:])))


def gcn(X, scale=55., min_divisor=1e-8):
    """Global contrast normalisation: each image minus its mean, scaled to L2 norm `scale`.

    pylearn2's global_contrast_normalize with use_std=False and sqrt_bias=0; float32, X's shape.
    """
    out = np.empty(X.shape, np.float32)
    o = flat(out)
    for i in range(0, len(X), CHUNK):
        x = flat(X[i:i + CHUNK]).astype(np.float64)
        x -= x.mean(axis=1, keepdims=True)
        norm = np.sqrt((x ** 2).sum(axis=1, keepdims=True)) / scale
        norm[norm < min_divisor] = 1.  # a flat image stays zero instead of dividing by zero
        o[i:i + CHUNK] = x / norm
    return out


def fit_zca(X, bias=0.1):
    """(mean, W) with (x - mean) @ W the ZCA-whitened x, fitted on the rows of X.

    pylearn2's ZCA: covariance C = (X - mean)ᵀ(X - mean) / n, W = V diag(1 / sqrt(eig + bias)) Vᵀ
    over C's eigenvectors V. With fewer images than values per image (short runs) C has rank
    below n, and the same W comes from the SVD of the n centred rows at a fraction of the
    cost of a 3072 x 3072 eigendecomposition: directions outside their span have eigenvalue 0.
    Sums run in float64 chunk by chunk, so 50,000 CIFAR-10 images never need a float64 copy;
    mean and W are returned as float32.
    """
    x2 = flat(X)
    n, d = x2.shape
    mean = np.zeros(d)
    for i in range(0, n, CHUNK):
        mean += x2[i:i + CHUNK].sum(axis=0, dtype=np.float64)
    mean /= n
    if n < d:
        _, s, vt = np.linalg.svd(x2.astype(np.float64) - mean, full_matrices=False)
        scale = 1. / np.sqrt(s ** 2 / n + bias) - 1. / np.sqrt(bias)
        W = np.eye(d) / np.sqrt(bias) + (vt.T * scale).dot(vt)
        return mean.astype(np.float32), W.astype(np.float32)
    cov = np.zeros((d, d))
    for i in range(0, n, CHUNK):
        c = x2[i:i + CHUNK].astype(np.float64) - mean
        cov += c.T.dot(c)
    cov /= n
    eigs, eigv = np.linalg.eigh(cov)
    # Rounding can leave the smallest eigenvalues slightly negative.
    W = (eigv * (1. / np.sqrt(np.maximum(eigs, 0.) + bias))).dot(eigv.T)
    return mean.astype(np.float32), W.astype(np.float32)


def zca(X, mean, W, out=None):
    """(X - mean) @ W row by row, float32, in X's shape; `out` may be X itself."""
    if out is None:
        out = np.empty(X.shape, np.float32)
    o = flat(out)
    x2 = flat(X)
    for i in range(0, len(X), CHUNK):
        o[i:i + CHUNK] = (x2[i:i + CHUNK].astype(np.float32) - mean).dot(W)
    return out


def fit(X, spec, logdir):
    """Fit what `spec` needs on the uint8 training images X and save it in the run's Logdir.

    Nothing to fit for 'scale'. For 'gcn_zca', LOGDIR/<spec['fitted']> gets the ZCA mean and
    matrix, written whole (runkit/files.py).
    """
    if spec['name'] == 'scale':
        return
    if spec['name'] != 'gcn_zca':
        raise Refused('unknown preprocessing %r' % (spec['name'],))
    mean, W = fit_zca(gcn(X, spec['gcn_scale']), spec['zca_bias'])
    buffer = io.BytesIO()
    np.savez(buffer, mean=mean, W=W, fitted_on=len(X))
    logdir.write(spec['fitted'], buffer.getvalue())


def load_fitted(spec, logdir, values):
    """(mean, W) that `fit` saved in `logdir` (a Logdir), for images of `values` values;
    Refused, naming the file, when it is missing, damaged or of other images."""
    if logdir is None:
        raise Refused('preprocessing %r needs the run directory that holds %s'
                      % (spec['name'], spec['fitted']))
    path = logdir.file(spec['fitted'])
    try:
        with np.load(io.BytesIO(logdir.read(spec['fitted']))) as stored:
            mean, W = stored['mean'], stored['W']
    except FileNotFoundError:
        raise Refused('%s is missing: it holds the ZCA whitening fitted on the run\'s training '
                      'images' % path) from None
    except Refused:
        raise
    except Exception as e:  # numpy raises OSError, KeyError, ValueError... on a damaged file
        raise Refused('%s is truncated or damaged (%s)' % (path, type(e).__name__)) from None
    if mean.shape != (values,) or W.shape != (values, values):
        raise Refused('%s was fitted on %s values per image, the images have %d'
                      % (path, mean.shape, values))
    return mean, W


def inputs(spec, X_train, X_test, logdir, fitted=False):
    """(X_train, X_test) as model input; fits `spec` on X_train first unless it was `fitted`
    already (a resumed run reuses what it fitted)."""
    if not fitted:
        fit(X_train, spec, logdir)
    return preprocess(X_train, spec, logdir), preprocess(X_test, spec, logdir)


def preprocess(X, spec, logdir=None):
    """float32 model input from uint8 images (N, 32, 32, 3), as the record `spec` says.

    `logdir` is the Logdir where a run keeps any fitted statistics (none for 'scale').
    """
    if spec['name'] == 'scale':
        return X.astype('float32') * np.float32(spec['scale'])
    if spec['name'] == 'gcn_zca':
        mean, W = load_fitted(spec, logdir, flat(X).shape[1])
        normalised = gcn(X, spec['gcn_scale'])
        # In place: 50,000 CIFAR-10 images take 614 MB per float32 copy.
        return zca(normalised, mean, W, out=normalised)
    raise Refused('unknown preprocessing %r in run.json' % (spec['name'],))
