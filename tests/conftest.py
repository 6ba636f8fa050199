"""Shared fixtures: the synthetic CIFAR-10 cache under a temporary HOME, and fresh TF sessions."""
import fcntl
import json
import os
import shutil
import subprocess

import pytest

import synthetic_cifar
from helpers import ROOT, run_allconvnet, run_side_by_side  # noqa: F401 (until moved)

from runkit.errors import environment

environment()


def once(tmp_path_factory, name, make):
    """make(folder)'s JSON-able result, made once for the whole suite. pytest-xdist gives each
    worker its own session fixtures, so the first worker to ask makes it in a folder they share
    and the others wait on a lock and read what it left."""
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        return make(str(tmp_path_factory.mktemp(name)))
    root = tmp_path_factory.getbasetemp().parent
    folder, done = root / name, root / (name + '.json')
    with open(str(root / (name + '.lock')), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(str(folder), ignore_errors=True)  # what a failed first try left
            folder.mkdir()
            done.write_text(json.dumps(make(str(folder))))
        return json.loads(done.read_text())


@pytest.fixture(scope='session')
def cifar_home(tmp_path_factory):
    """A HOME whose ~/.keras/datasets holds the synthetic cache (written once per suite)."""
    def make(home):
        synthetic_cifar.write_cache(home)
        return home
    return once(tmp_path_factory, 'home', make)


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


@pytest.fixture(scope='session')
def mirror(cifar_home):
    """A CIFAR-10 mirror on 127.0.0.1 serving the synthetic archive; yields (base URL, MD5).

    Paths: /cifar-10-python.tar.gz (the archive), /corrupt.tar.gz (one byte flipped),
    /short.tar.gz (the full Content-Length, a tenth of the body, then the connection closes),
    /slow.tar.gz (1 MiB a tenth of a second, for interrupting), /trickle.tar.gz (one byte
    every 0.2 s, a stalled mirror), /loop.tar.gz (a redirect to itself), and servers that
    misbehave: /chunked-short.tar.gz (a chunked body cut inside its second chunk),
    /bad-length.tar.gz (a Content-Length that is no number), /huge.tar.gz (a terabyte
    announced), /empty.tar.gz (200 and no body), /hangup.tar.gz (no response at all); anything
    else is a 404.
    """
    import hashlib
    import http.server
    import threading
    import time
    archive = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py.tar.gz')
    size = os.path.getsize(archive)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == '/loop.tar.gz':
                self.send_response(302)
                self.send_header('Location', '/loop.tar.gz')
                self.end_headers()
                return
            if self.path == '/trickle.tar.gz':
                self.send_response(200)
                self.send_header('Content-Length', str(size))
                self.end_headers()
                for _ in range(100):  # 20 s at most, then the connection closes
                    try:
                        self.wfile.write(b'x')
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)
                return
            if self.path == '/hangup.tar.gz':  # accepts, says nothing, closes
                self.close_connection = True
                return
            if self.path in ('/chunked-short.tar.gz', '/bad-length.tar.gz', '/huge.tar.gz',
                             '/empty.tar.gz'):
                self.misbehave()
                return
            if self.path not in ('/cifar-10-python.tar.gz', '/corrupt.tar.gz', '/short.tar.gz',
                                 '/slow.tar.gz'):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header('Content-Length', str(size))
            self.end_headers()
            sent = 0
            with open(archive, 'rb') as f:
                for block in iter(lambda: f.read(1 << 20), b''):
                    if self.path == '/corrupt.tar.gz' and sent == 1 << 20:
                        block = bytes([block[0] ^ 0xff]) + block[1:]
                    if self.path == '/short.tar.gz' and sent >= size // 10:
                        break
                    try:
                        self.wfile.write(block)
                    except OSError:  # the client hung up (the interrupted download)
                        return
                    sent += len(block)
                    if self.path == '/slow.tar.gz':
                        time.sleep(0.1)
            self.close_connection = True

        def misbehave(self):
            self.send_response(200)
            if self.path == '/chunked-short.tar.gz':  # two chunks of a promised many, then EOF
                self.send_header('Transfer-Encoding', 'chunked')
                self.end_headers()
                self.wfile.write(b'10000\r\n' + b'x' * 0x10000 + b'\r\n' + b'10000\r\nxx')
            else:
                self.send_header('Content-Length', {'/bad-length.tar.gz': 'lots',
                                                    '/huge.tar.gz': str(10 ** 12),
                                                    '/empty.tar.gz': '0'}[self.path])
                self.end_headers()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with open(archive, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    yield 'http://127.0.0.1:%d' % server.server_address[1], md5
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused_url():
    """A loopback URL on a port that nothing listens on."""
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return 'http://127.0.0.1:%d/cifar-10-python.tar.gz' % port


@pytest.fixture(scope='session')
def tiny_runs(cifar_home, mirror, tmp_path_factory):
    """{'single': (logdir, proc), 'two-towers': (logdir, proc)}: two finished 2-epoch runs, shared
    by the tests that only read what a run leaves. The single one is a first run on a fresh
    machine: an empty HOME, CIFAR-10 from the loopback mirror. Made once for the suite."""
    def make(folder):
        jobs, logdirs = [], {}
        for kind in ('single', 'two-towers'):
            logdirs[kind] = os.path.join(folder, 'run', kind)
            home, extra, env = cifar_home, ['--towers-on-cpu', '--gpus', '2'], None
            if kind == 'single':
                home, extra = os.path.join(folder, 'fresh-home'), []
                os.makedirs(home)
                env = {'ALLCONVNET_CIFAR10_URL': mirror[0] + '/cifar-10-python.tar.gz',
                       'ALLCONVNET_CIFAR10_MD5': mirror[1]}
            jobs.append((['--epochs', '2', '--train-limit', '64', '--test-limit', '32', '--seed',
                          '3', '--quiet', '--logdir', logdirs[kind]] + extra, home, env))
        runs = {}
        for kind, proc in zip(('single', 'two-towers'), run_side_by_side(jobs)):
            assert proc.returncode == 0, proc.stderr[-3000:]
            runs[kind] = (logdirs[kind], [proc.args, proc.returncode, proc.stdout, proc.stderr])
        return runs
    return {kind: (logdir, subprocess.CompletedProcess(*proc))
            for kind, (logdir, proc) in once(tmp_path_factory, 'tiny-runs', make).items()}
