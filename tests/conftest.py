"""Shared fixtures: the synthetic CIFAR-10 cache under a temporary HOME, and fresh TF sessions."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import synthetic_cifar  # noqa: E402


@pytest.fixture(scope='session')
def cifar_home(tmp_path_factory):
    """A HOME whose ~/.keras/datasets holds the synthetic cache (written once per session)."""
    home = str(tmp_path_factory.mktemp('home'))
    synthetic_cifar.write_cache(home)
    return home


def run_allconvnet(args, home, timeout=600, env=None):
    """Run the real program in a subprocess with HOME=home; return CompletedProcess."""
    full_env = dict(os.environ, HOME=home, PYTHONUNBUFFERED='1')
    full_env.update(env or {})
    return subprocess.run([sys.executable, os.path.join(ROOT, 'allconvnet.py')] + list(args),
                          cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


@pytest.fixture
def cpu_session():
    """A fresh Keras graph and session with four CPU devices, /cpu:0 .. /cpu:3."""
    import tensorflow as tf
    from keras import backend as K
    K.clear_session()
    sess = tf.Session(config=tf.ConfigProto(device_count={'CPU': 4}))
    K.set_session(sess)
    yield sess
    K.clear_session()
