"""Fetching CIFAR-10: runkit.dataset.ensure against a real HTTP server on 127.0.0.1 (conftest's
`mirror`), serving the synthetic archive in CIFAR-10's on-disk format. No mock of the download."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
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
    assert dataset.file_md5(folder + '.tar.gz') == md5
    assert 'Downloading CIFAR-10 from %s' % url in capsys.readouterr().out
    # Keras reads it from there without downloading: the end-to-end run from a fresh HOME
    # (conftest's tiny_runs) trains on exactly this.
    # A second call finds the cache and does nothing.
    assert dataset.ensure('http://127.0.0.1:1/never-asked', md5) == folder


@pytest.mark.parametrize('path,fragments', [
    ('/corrupt.tar.gz', ['has MD5', 'expected c58f30108f718f92721af3b95e74349a']),
    ('/short.tar.gz', ['was cut short', 'retrieval incomplete']),
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
    assert 'put cifar-10-python.tar.gz' in message
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
    assert proc.stderr.strip().splitlines()[-1].startswith('runkit.dataset: error: cannot reach')


def test_command_line_takes_mirror_and_checksum_from_the_environment(empty_home, mirror,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv(dataset.URL_VARIABLE, mirror[0] + '/cifar-10-python.tar.gz')
    monkeypatch.setenv(dataset.MD5_VARIABLE, mirror[1].upper())
    assert dataset.main() == 0
    assert 'CIFAR-10 is ready in %s' % (empty_home / '.keras' / 'datasets') in \
        capsys.readouterr().out


def test_ctrl_c_during_the_download_keeps_nothing(empty_home, mirror):
    import signal
    import time
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
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and 'Traceback' not in err
    assert err.strip().splitlines()[-1].endswith('interrupted; nothing was kept')
    assert left_behind(empty_home) == []
