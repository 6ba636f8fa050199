"""Fetching CIFAR-10: runkit.dataset.ensure against a real HTTP server on 127.0.0.1 (conftest's
`mirror`), serving the synthetic archive in CIFAR-10's on-disk format. No mock of the download."""
import os
import resource
import signal
import stat
import subprocess
import sys
import time

import pytest

from helpers import ROOT
from runkit import dataset


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
    import io
    import tarfile
    with tarfile.open(str(path), 'w:gz') as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def member(name, kind=None, data=b'x', target=''):
    import tarfile
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
    import hashlib
    import tarfile
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
])
def test_bad_download_settings_are_refused_before_any_download(empty_home, monkeypatch,
                                                               variable, value):
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(dataset, 'download', lambda *a: pytest.fail('it downloaded'))
    with pytest.raises(dataset.DatasetError, match=variable):
        dataset.ensure()
    assert not (empty_home / '.keras').exists()


@pytest.mark.parametrize('path,said', [
    ('/chunked-short.tar.gz', 'was cut short'), ('/bad-length.tar.gz', 'failed midway'),
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
