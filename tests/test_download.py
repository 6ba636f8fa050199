"""Fetching CIFAR-10: runkit.dataset.ensure against a real HTTP server on 127.0.0.1 (conftest's
`mirror`), serving the synthetic archive in CIFAR-10's on-disk format. No mock of the download:
only a full disk (the unpacked files' writes) and, for made-up addresses, the network (every
connection refused) are stood in for."""
import errno
import gzip
import hashlib
import http.server
import io
import os
import resource
import signal
import socket
import stat
import string
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synthetic_cifar
from helpers import ROOT, one_clear_line
from runkit import dataset, errors, files


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    for name in (dataset.URL_VARIABLE, dataset.MD5_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def left_behind(home):
    datadir = home / '.keras' / 'datasets'
    return sorted(os.listdir(str(datadir))) if datadir.exists() else []


def test_download_verifies_unpacks_and_is_read_by_keras(empty_home, mirror, capsys):
    url, md5 = mirror
    folder = dataset.ensure(url + '/cifar-10-python.tar.gz', md5)
    datadir = empty_home / '.keras' / 'datasets'
    assert folder == str(datadir / 'cifar-10-batches-py')
    assert left_behind(empty_home) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']
    assert dataset.digest(folder + '.tar.gz') == md5
    assert 'Downloading CIFAR-10 from %s' % url in capsys.readouterr().out
    # Keras reads it from there without downloading: the end-to-end run from a fresh HOME
    # (conftest's tiny_runs) trains on exactly this.
    # A second call finds the cache and does nothing.
    assert dataset.ensure('http://127.0.0.1:1/never-asked', md5) == folder


@pytest.mark.parametrize('path,fragments', [
    ('/corrupt.tar.gz', ['has MD5', 'expected c58f30108f718f92721af3b95e74349a']),
    ('/short.tar.gz', ['was cut short', 'bytes']),
    ('/loop.tar.gz', ['redirect']),
    ('/missing.tar.gz', ['HTTP 404']),
])
def test_failed_download_is_one_line_and_leaves_nothing(empty_home, mirror, path, fragments):
    url = mirror[0] + path
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure(url, dataset.MD5)
    message = str(e.value)
    assert '\n' not in message and url in message
    for fragment in fragments:
        assert fragment in message, message
    assert left_behind(empty_home) == []


def test_published_md5_refuses_the_synthetic_archive_with_both_values(empty_home, mirror):
    url, md5 = mirror
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure(url + '/cifar-10-python.tar.gz')
    assert 'has MD5 %s, expected %s' % (md5, dataset.MD5) in str(e.value)
    assert left_behind(empty_home) == []


def test_refused_connection_names_the_manual_route(empty_home, refused_url):
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure(refused_url)
    message = str(e.value)
    assert 'cannot reach %s' % refused_url in message and 'Connection refused' in message
    assert 'save cifar-10-python.tar.gz' in message
    assert '(that name: Keras 1.2.2 looks for it)' in message
    assert str(empty_home / '.keras' / 'datasets' / 'cifar-10-batches-py.tar.gz') in message
    assert left_behind(empty_home) == []


def test_unknown_host_names_the_manual_route(empty_home):
    # .invalid never resolves (RFC 2606), with or without a network.
    url = 'http://cifar10.invalid/cifar-10-python.tar.gz'
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure(url)
    assert 'cannot reach %s' % url in str(e.value) and 'by hand' in str(e.value)


def test_archive_put_by_hand_is_verified_and_unpacked(empty_home, mirror, cifar_home):
    datadir = empty_home / '.keras' / 'datasets'
    datadir.mkdir(parents=True)
    good = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py.tar.gz')
    os.symlink(good, str(datadir / 'cifar-10-batches-py.tar.gz'))
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure('http://127.0.0.1:1/never-asked')  # the published MD5: refused
    assert 'expected %s' % dataset.MD5 in str(e.value) and 'Repair: delete' in str(e.value)
    assert left_behind(empty_home) == ['cifar-10-batches-py.tar.gz']  # the user's file stays
    assert os.path.isdir(dataset.ensure('http://127.0.0.1:1/never-asked', mirror[1]))


def test_command_line_fails_in_one_line(empty_home, refused_url):
    env = dict(os.environ, HOME=str(empty_home), **{dataset.URL_VARIABLE: refused_url})
    proc = subprocess.run([sys.executable, '-m', 'runkit.dataset'], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('python -m runkit.dataset: error: cannot reach')


def test_help_and_a_bad_flag_download_nothing(empty_home, refused_url):
    # Once, --help started the 170 MB download: the command took no arguments at all.
    env = dict(os.environ, HOME=str(empty_home), **{dataset.URL_VARIABLE: refused_url})
    for argv, code in ((['--help'], 0), (['--bogus'], 2)):
        proc = subprocess.run([sys.executable, '-m', 'runkit.dataset'] + argv, cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        assert proc.returncode == code and 'cannot reach' not in proc.stderr, proc.stderr
        assert not os.path.exists(str(empty_home / '.keras'))
    assert 'exit codes:' in subprocess.run(
        [sys.executable, '-m', 'runkit.dataset', '--help'], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, universal_newlines=True).stdout


def test_command_line_takes_mirror_and_checksum_from_the_environment(empty_home, mirror,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv(dataset.URL_VARIABLE, mirror[0] + '/cifar-10-python.tar.gz')
    monkeypatch.setenv(dataset.MD5_VARIABLE, mirror[1].upper())
    assert dataset.main([]) == 0
    assert 'CIFAR-10 is ready in %s' % (empty_home / '.keras' / 'datasets') in \
        capsys.readouterr().out


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_download_keeps_nothing(empty_home, mirror, signum):
    env = dict(os.environ, HOME=str(empty_home), PYTHONUNBUFFERED='1',
               **{dataset.URL_VARIABLE: mirror[0] + '/slow.tar.gz'})
    proc = subprocess.Popen([sys.executable, '-m', 'runkit.dataset'], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    datadir = empty_home / '.keras' / 'datasets'
    deadline = time.time() + 60
    while time.time() < deadline and not any(
            n.endswith('.part') and os.path.getsize(str(datadir / n)) > 0
            for n in (os.listdir(str(datadir)) if datadir.exists() else [])):
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum and 'Traceback' not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        'python -m runkit.dataset: interrupted by %s during the CIFAR-10 download; nothing '
        'was kept' % signal.Signals(signum).name)
    assert left_behind(empty_home) == []


def test_a_stalled_mirror_is_given_up_in_one_line(empty_home, mirror, monkeypatch):
    # The real loop with a short window: one byte every 0.2 s is far under 1000 bytes/s.
    monkeypatch.setattr(dataset, 'RATE_WINDOW', 1)
    monkeypatch.setattr(dataset, 'MIN_RATE', 1000)
    url = mirror[0] + '/trickle.tar.gz'
    started = time.time()
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure(url, mirror[1])
    assert time.time() - started < 10
    message = str(e.value)
    assert message.startswith('download of %s stalled: ' % url) and 'bytes/s' in message
    assert left_behind(empty_home) == []


def tar_with(path, members):
    """A gzipped tar at `path` holding the (TarInfo, bytes or None) `members`."""
    with tarfile.open(str(path), 'w:gz') as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def member(name, kind=None, data=b'x', target=''):
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind is None else 0
    if kind:
        info.type, info.linkname = kind, target
    return info, (data if kind is None else None)


@pytest.mark.parametrize('evil', ['../escaped', '/tmp/absolute-escape', 'elsewhere/x',
                                  'cifar-10-batches-py/../../escaped', 'symlink', 'hardlink',
                                  'fifo'])
def test_an_archive_that_escapes_its_folder_is_refused_naming_the_member(empty_home, tmp_path,
                                                                         evil):
    kinds = {'symlink': member('cifar-10-batches-py/data_batch_1', tarfile.SYMTYPE,
                               target='/etc/passwd'),
             'hardlink': member('cifar-10-batches-py/data_batch_1', tarfile.LNKTYPE,
                                target='/etc/passwd'),
             'fifo': member('cifar-10-batches-py/data_batch_1', tarfile.FIFOTYPE)}
    bad = kinds.get(evil) or member(evil)
    datadir = empty_home / '.keras' / 'datasets'
    datadir.mkdir(parents=True)
    archive = datadir / 'cifar-10-batches-py.tar.gz'
    tar_with(archive, [member('cifar-10-batches-py/batches.meta'), bad])
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(dataset.DatasetError) as e:
        dataset.ensure('http://127.0.0.1:9/unused', md5)
    assert repr(bad[0].name) in str(e.value) and 'nothing was' in str(e.value)
    assert sorted(os.listdir(str(datadir))) == ['cifar-10-batches-py.tar.gz']
    assert not os.path.lexists('/tmp/absolute-escape')
    assert not (empty_home / '.keras' / 'escaped').exists()
    assert not (tmp_path / 'escaped').exists()


# -- neighbours, leftovers, settings and servers that misbehave (the real entry point) ------

def fetch(home, url, md5=None, **popen):
    """`python -m runkit.dataset` started with HOME=home and the mirror's settings."""
    env = dict(os.environ, HOME=str(home), ALLCONVNET_CIFAR10_URL=url, PYTHONUNBUFFERED='1')
    env.pop(dataset.MD5_VARIABLE, None)
    if md5:
        env[dataset.MD5_VARIABLE] = md5
    return subprocess.Popen([sys.executable, '-m', 'runkit.dataset'], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, **popen)


def test_two_fetches_at_once_both_end_ready(tmp_path, mirror):
    url, md5 = mirror
    procs = [fetch(tmp_path, url + '/slow.tar.gz', md5) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum('Waiting for PID' in out for out, _ in outs) == 1
    assert left_behind(tmp_path) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']


def test_a_killed_download_s_leftovers_go_at_the_next_start(tmp_path, mirror):
    url, md5 = mirror
    datadir = tmp_path / '.keras' / 'datasets'
    proc = fetch(tmp_path, url + '/slow.tar.gz', md5)
    deadline = time.time() + 120
    while not [n for n in (os.listdir(str(datadir)) if datadir.exists() else [])
               if n.endswith('.part')] and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    assert [n for n in os.listdir(str(datadir)) if n.endswith('.part')]
    proc = fetch(tmp_path, url + '/cifar-10-python.tar.gz', md5)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    assert left_behind(tmp_path) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']


def test_the_cache_is_readable_by_others(tmp_path, mirror):
    url, md5 = mirror
    proc = fetch(tmp_path, url + '/cifar-10-python.tar.gz', md5, preexec_fn=lambda: os.umask(0o022))
    assert proc.wait(timeout=300) == 0, proc.communicate()
    datadir = tmp_path / '.keras' / 'datasets'
    modes = {p.name: stat.S_IMODE(os.stat(str(p)).st_mode)
             for p in [datadir / 'cifar-10-batches-py.tar.gz', datadir / 'cifar-10-batches-py',
                       datadir / 'cifar-10-batches-py' / 'data_batch_1']}
    assert modes == {'cifar-10-batches-py.tar.gz': 0o644, 'cifar-10-batches-py': 0o755,
                     'data_batch_1': 0o644}


@pytest.mark.parametrize('variable,value', [
    (dataset.MD5_VARIABLE, 'c58f30108f718f92721af3b95e74349'),  # 31 digits
    (dataset.MD5_VARIABLE, ' '), (dataset.MD5_VARIABLE, 'g' * 32),
    (dataset.MD5_VARIABLE, dataset.MD5 + '\n'),
    (dataset.URL_VARIABLE, 'ftp://example.org/cifar.tar.gz'),
    (dataset.URL_VARIABLE, 'localhost/cifar.tar.gz'), (dataset.URL_VARIABLE, 'http://'),
    (dataset.URL_VARIABLE, 'http://exa mple.org/x.tar.gz'),
    (dataset.URL_VARIABLE, 'http://example.org/x.tar.gz\nHost: evil'),
    (dataset.URL_VARIABLE, 'http://' + 'a' * 5000 + '/x'),
    # What urllib would take to the network and fail on there, or fetch from elsewhere.
    (dataset.URL_VARIABLE, 'http://ex\u00e4mple.org/x.tar.gz'),
    (dataset.URL_VARIABLE, 'http://example.org/\u00e4.tar.gz'),
    (dataset.URL_VARIABLE, 'http://example.org:99999/x'),
    (dataset.URL_VARIABLE, 'http://example.org:abc/x'), (dataset.URL_VARIABLE, 'http://h:0/x'),
    (dataset.URL_VARIABLE, 'http://h:-1/x'), (dataset.URL_VARIABLE, 'http:///x.tar.gz'),
    (dataset.URL_VARIABLE, 'http://:80/x'), (dataset.URL_VARIABLE, 'gopher://example.org/x'),
    (dataset.URL_VARIABLE, 'http://user:pw@example.org/x'),
    (dataset.URL_VARIABLE, 'http://[not-ipv6]/x'), (dataset.URL_VARIABLE, 'http://ex%41mple.org/x'),
])
def test_bad_download_settings_are_refused_before_any_download(empty_home, monkeypatch,
                                                               variable, value):
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(dataset, 'download', lambda *a: pytest.fail('it downloaded'))
    with pytest.raises(dataset.DatasetError, match=variable):
        dataset.ensure()
    assert not (empty_home / '.keras').exists()


@pytest.mark.parametrize('path,said', [
    ('/chunked-short.tar.gz', 'was cut short'), ('/bad-length.tar.gz', "Content-Length 'lots'"),
    ('/huge.tar.gz', 'announced 1000000000000 bytes'), ('/empty.tar.gz', 'has MD5'),
    ('/hangup.tar.gz', 'failed midway'),
])
def test_a_server_that_misbehaves_gives_one_line(tmp_path, mirror, path, said):
    url, md5 = mirror
    proc = fetch(tmp_path, url + path, md5)
    out, err = proc.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith('python -m runkit.dataset: error: ') and said in lines[0], err
    assert 'unexpected' not in err and not (tmp_path / '.keras').exists()


def test_a_download_that_outgrows_a_file_size_limit_is_a_write_failure(tmp_path, mirror):
    url, md5 = mirror

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
    proc = fetch(tmp_path, url + '/cifar-10-python.tar.gz', md5, preexec_fn=limit)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 4, err
    assert err.strip().startswith('python -m runkit.dataset: error: cannot write') and \
        'File too large' in err
    assert not (tmp_path / '.keras').exists()


# -- what a hostile review found: an archive that matches its MD5 yet is no tar.gz, a disk
# that fills while unpacking, owners from another machine, a Content-Length that is no byte
# count, and addresses that urllib cannot fetch as they are written --------------------------

PROG = 'python -m runkit.dataset'


def main_here(capsys):
    """`python -m runkit.dataset` in this process, settings from the environment: how it ended,
    checked to be no unexpected error."""
    proc = SimpleNamespace(returncode=errors.exit_code(lambda: dataset.main([]), PROG),
                           stderr=capsys.readouterr().err)
    assert 'unexpected' not in proc.stderr, proc.stderr
    return proc


def from_mirror(monkeypatch, url, md5):
    monkeypatch.setenv(dataset.URL_VARIABLE, url)
    monkeypatch.setenv(dataset.MD5_VARIABLE, md5)


def blank_batch():
    """A sound CIFAR-10 batch of black images, pickled as the Toronto files are: 30 MB that
    gzip to almost nothing, so an archive of six is small to serve and large to unpack."""
    buffer = io.BytesIO()
    synthetic_cifar.Python2Pickler(buffer, protocol=2).dump(
        {b'data': np.zeros((10000, 3072), np.uint8), b'labels': [0] * 10000})
    return buffer.getvalue()


@pytest.fixture(scope='module')
def foreign_archive(tmp_path_factory):
    """(file:// URL, MD5) of a sound CIFAR-10 archive (under 1 MB, 184 MB unpacked) made on
    another machine: its members belong to uid and gid 12345 (user `nobody` by name) and ask
    for setuid and sticky modes."""
    path = tmp_path_factory.mktemp('foreign') / 'cifar-10-python.tar.gz'
    folder = tarfile.TarInfo(dataset.NAME)
    folder.type, folder.mode = tarfile.DIRTYPE, 0o1777
    members, batch = [(folder, None)], blank_batch()
    for name in dataset.TRAIN_FILES + [dataset.TEST_FILE]:
        members.append(member(dataset.NAME + '/' + name, data=batch))
        members[-1][0].mode = 0o4777
    for info, _ in members:
        info.uid = info.gid = 12345
        info.uname, info.gname = 'nobody', 'nogroup'
    tar_with(path, members)
    return 'file://%s' % path, hashlib.md5(path.read_bytes()).hexdigest()


def unreadable(kind):
    """gzip bytes that tarfile cannot read, each failing in its own way (`kind`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as t:
        info, data = member(dataset.NAME + '/data_batch_1', data=bytes(1 << 20))
        t.addfile(info, io.BytesIO(data))
    tar = buffer.getvalue()
    packed = gzip.compress(tar)
    if kind == 'zlib.error':  # the first deflate block's header
        return packed[:10] + bytes([packed[10] ^ 0xff]) + packed[11:]
    if kind == 'EOFError':
        return packed[:len(packed) // 2]
    if kind == 'ReadError':  # a tar, not gzipped
        return tar
    return gzip.compress(tar[:2048]) + b'no gzip stream follows' + packed  # OSError


@pytest.mark.parametrize('kind,raised', [('zlib.error', zlib.error), ('EOFError', EOFError),
                                         ('ReadError', tarfile.ReadError),
                                         ('OSError', OSError)])
@pytest.mark.parametrize('by_hand', [False, True])
def test_an_archive_that_is_no_readable_tar_gz_is_one_line(empty_home, tmp_path, monkeypatch,
                                                           capsys, kind, raised, by_hand):
    # The MD5 matches (the user named the mirror and its MD5): only unpacking finds out.
    path, data = tmp_path / 'mirror.tar.gz', unreadable(kind)
    path.write_bytes(data)
    with pytest.raises(raised), tarfile.open(str(path), 'r:gz') as t:
        t.getmembers()  # the damage is the kind it says
    datadir = empty_home / '.keras' / 'datasets'
    if by_hand:
        datadir.mkdir(parents=True)
        os.rename(str(path), str(datadir / 'cifar-10-batches-py.tar.gz'))
    from_mirror(monkeypatch, 'file://%s' % path, hashlib.md5(data).hexdigest())
    line = one_clear_line(main_here(capsys), 'is not a readable tar.gz', prog=PROG)
    if by_hand:  # the user's file stays, and the line says how to replace it
        assert 'Repair: delete' in line
        assert left_behind(empty_home) == ['cifar-10-batches-py.tar.gz']
    else:
        assert 'nothing was kept' in line and 'fix that mirror' in line
        assert left_behind(empty_home) == []


def test_a_full_disk_while_unpacking_keeps_the_verified_archive(empty_home, foreign_archive,
                                                                refused_url, monkeypatch,
                                                                capsys):
    real_open, written = tarfile.bltn_open, []

    class FullDisk:
        """An unpacked file on a disk that is full after 40 MB: the first batch fits."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            if sum(written) + len(data) > 40 << 20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written.append(len(data))
            return self.f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
    # Only the writes of the files tarfile unpacks: the download and the checks are real.
    monkeypatch.setattr(tarfile, 'bltn_open', lambda path, mode: FullDisk(real_open(path, mode)))
    from_mirror(monkeypatch, *foreign_archive)
    one_clear_line(main_here(capsys), 'No space left on device', 'is kept', code=4, prog=PROG)
    assert sum(written) > 30 << 20  # a whole batch and part of the next were written
    assert left_behind(empty_home) == ['cifar-10-batches-py.tar.gz']
    monkeypatch.setattr(tarfile, 'bltn_open', real_open)
    from_mirror(monkeypatch, refused_url, foreign_archive[1])  # the rerun downloads nothing
    assert main_here(capsys).returncode == 0
    assert left_behind(empty_home) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']


def test_a_file_size_limit_while_unpacking_keeps_the_verified_archive(tmp_path, foreign_archive,
                                                                      refused_url):
    def limit():  # the archive fits, a 30 MB batch does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, resource.RLIM_INFINITY))
    proc = fetch(tmp_path, *foreign_archive, preexec_fn=limit)
    proc.stderr = proc.communicate(timeout=300)[1]
    one_clear_line(proc, 'File too large', 'is kept', code=4, prog=PROG)
    assert left_behind(tmp_path) == ['cifar-10-batches-py.tar.gz']
    proc = fetch(tmp_path, refused_url, foreign_archive[1])
    assert proc.wait(timeout=300) == 0, proc.communicate()
    assert left_behind(tmp_path) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']


def test_unpacked_files_are_the_user_s_own_with_plain_modes(empty_home, foreign_archive):
    # As root (a Docker build bakes the cache so), tarfile gives each file the owner that the
    # archive names; a mirror's archive decides neither owners nor modes.
    with tarfile.open(foreign_archive[0][len('file://'):]) as t:
        assert {(m.uid, m.uname) for m in t.getmembers()} == {(12345, 'nobody')}
    folder = dataset.ensure(*foreign_archive)
    paths = [folder] + [os.path.join(folder, name) for name in os.listdir(folder)]
    assert len(paths) == 7
    for path in paths:
        info = os.stat(path)
        assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()), path
        assert stat.S_IMODE(info.st_mode) == (files.DIR_MODE if os.path.isdir(path)
                                              else files.MODE), path


@pytest.fixture(scope='module')
def lying_server():
    """A server on 127.0.0.1 whose Content-Length is what follows /length/ in the request's
    path, unquoted, whatever it says; 1000 bytes follow."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header('Content-Length', urllib.parse.unquote(self.path[8:]))
            self.end_headers()
            self.wfile.write(b'x' * 1000)
            self.close_connection = True

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d/length/' % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('length', ['lots', '-5', '-0', '\u00b2', '', '12, 12', '0x10', '1e3',
                                    '+1000'])
def test_a_content_length_that_is_no_byte_count_is_named(empty_home, lying_server, monkeypatch,
                                                         capsys, length):
    url = lying_server + urllib.parse.quote(length, safe='')
    from_mirror(monkeypatch, url, '0' * 32)
    one_clear_line(main_here(capsys), 'download of %s' % url,
                   'Content-Length %r, which is no byte count' % length, prog=PROG)
    assert left_behind(empty_home) == []


@pytest.mark.parametrize('url', [
    'http://example.org/x', 'https://[::1]:8443/a.tar.gz', 'http://127.0.0.1:8080/c?d=1#e',
    'HTTPS://Mirror-1.Example.org:/cifar-10-python.tar.gz', 'http://h_1:65535/%C3%A4.tar.gz',
    'file:///src/cifar-10-python.tar.gz', 'file:///src/\u00e4.tar.gz'])
def test_fetchable_addresses_are_accepted(url):
    assert dataset.settings(url, None) == (url, dataset.MD5)


@pytest.fixture
def no_network(monkeypatch):
    """Every connection refused, and the settings only from the arguments."""
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    monkeypatch.setattr(socket, 'create_connection', refuse)
    for name in (dataset.URL_VARIABLE, dataset.MD5_VARIABLE):
        monkeypatch.delenv(name, raising=False)


# What addresses are made of, a space and a non-ASCII letter; and any text at all.
PIECES = st.text(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=% \u00e4",
                 max_size=12)
HOSTS = st.one_of(PIECES,
                  st.from_regex(r'[A-Za-z0-9_-]{1,8}(\.[A-Za-z0-9_-]{1,8}){0,2}', fullmatch=True),
                  st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map('[{}]'.format),
                  st.sampled_from(['', 'localhost', '[::1', '[x]', 'a..b', 'u:p@h', 'h:1:2']))
PORTS = st.one_of(st.just(''), st.integers(-2, 70000).map(':{}'.format), PIECES.map(':{}'.format))
BUILT = st.builds('{}://{}{}/{}'.format, st.sampled_from(
    ['http', 'https', 'HTTP', 'HtTpS', 'file', 'ftp', '']), HOSTS, PORTS, PIECES)
URLS = st.one_of(BUILT, st.text(max_size=40))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(url=URLS)
def test_an_address_is_fetched_as_written_or_refused_in_one_line(tmp_path, no_network, url):
    try:
        accepted, _ = dataset.settings(url, None)
    except errors.Refused as e:
        assert str(e).startswith(dataset.URL_VARIABLE + '=') and '\n' not in str(e), e
        return
    scheme = urllib.parse.urlsplit(accepted).scheme
    assert scheme in ('http', 'https', 'file'), accepted
    if scheme != 'file':
        # urllib takes it as written, host, port and path, as far as the connection.
        with pytest.raises(dataset.DatasetError, match='^cannot reach '):
            dataset.download(accepted, str(tmp_path / 'part'))
