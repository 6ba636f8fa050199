"""Static checks of the Docker image: hadolint, and the Dockerfile's structure against the code.

No Docker engine runs where this project is built and tested, so this is what stands between a
change and a user's failed `docker build` or a container that writes its logs into the void.
Fast and offline: no TensorFlow import, no network; seconds, plus the suite's shared synthetic
CIFAR-10 fixture for the bake test. tools/rehearse_image.sh rehearses the install and a first
run separately (network, minutes).
"""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'docker'))
import image_requirements as ir  # noqa: E402

DOCKERFILE = os.path.join(ROOT, 'Dockerfile')
HADOLINT_CONFIG = os.path.join(ROOT, '.hadolint.yaml')


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


@pytest.fixture(scope='module')
def parser():
    return DockerfileParser(DOCKERFILE, cache_content=True)


def stages(parser):
    """[(stage name or None, [instruction dicts with 'args' and 'envs' resolved])]."""
    result = []
    for instr, context in zip(parser.structure, parser.context_structure):
        instr = dict(instr, args=context.args, envs=context.envs)
        if instr['instruction'] == 'FROM':
            words = instr['value'].split()
            name = words[2] if len(words) == 3 and words[1].upper() == 'AS' else None
            result.append((name, [instr]))
        elif result:
            result[-1][1].append(instr)
    return result


def final_stage(parser):
    return stages(parser)[-1][1]


def expand(value, variables):
    return re.sub(r'\$\{?(\w+)\}?', lambda m: variables.get(m.group(1), m.group(0)), value)


def values(instructions, name):
    return [i for i in instructions if i['instruction'] == name]


def env_of(parser, index=-1):
    """The ENV a stage ends with, including what it inherits from the stage it builds on."""
    all_stages = stages(parser)
    name, instructions = all_stages[index]
    parent = instructions[0]['value'].split()[0]
    inherited = {}
    for position, (other, _) in enumerate(all_stages[:all_stages.index((name, instructions))]):
        if other == parent:
            inherited = env_of(parser, position)
    own = values(instructions, 'ENV')
    return dict(inherited, **(own[-1]['envs'] if own else {}))


# hadolint ---------------------------------------------------------------------------------

def hadolint(*args, stdin=None):
    binary = os.path.join(os.path.dirname(sys.executable), 'hadolint')
    assert os.path.isfile(binary), ('hadolint not next to %s: install the test pins '
                                    '(./setup.sh requirements-test.txt)' % sys.executable)
    return subprocess.run([binary, '--no-color', '-c', HADOLINT_CONFIG] + list(args),
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)


def test_hadolint_passes_at_the_strictest_threshold():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0 and result.stdout.strip() == '', result.stdout


def test_hadolint_config_is_in_force():
    # A Dockerfile with known faults must fail under the same config, inline pragma or not:
    # proves the config is read, the threshold bites and ignore pragmas are refused.
    bad = ('FROM ubuntu:latest\n'
           '# hadolint ignore=DL3008\n'
           'RUN apt-get update && apt-get install -y --no-install-recommends curl '
           '&& rm -rf /var/lib/apt/lists/*\n')
    result = hadolint('-', stdin=bad)
    assert result.returncode != 0
    assert 'DL3007' in result.stdout and 'DL3008' in result.stdout, result.stdout


def test_hadolint_config_threshold_and_ignored_rules_have_reasons():
    config = yaml.safe_load(read('.hadolint.yaml'))
    assert config['failure-threshold'] == 'style'
    assert config['disable-ignore-pragma'] is True
    lines = read('.hadolint.yaml').splitlines()
    for rule in config.get('ignored') or []:
        at = next(n for n, line in enumerate(lines) if re.match(r'\s*-\s*%s\b' % rule, line))
        reason = lines[at - 1].strip()
        assert reason.startswith('#') and len(reason.split()) >= 5, (
            'ignored rule %s needs a comment line above it saying why' % rule)


# The base image ---------------------------------------------------------------------------

def test_base_image_is_cuda10_cudnn7_ubuntu1804_and_pinned(parser):
    base = parser.parent_images[0]
    name, _, tag = base.partition('@')[0].rpartition(':')
    assert name and tag and tag != 'latest', base
    assert tag == '10.0-cudnn7-runtime-ubuntu18.04' and name == 'nvidia/cuda', base
    # Every later stage builds on an earlier one, never on another image.
    names = [stage for stage, _ in stages(parser)]
    for parent in parser.parent_images[1:]:
        assert parent in names, parent


def test_the_fallback_base_is_documented():
    for text in (read('Dockerfile'), read('docs', 'docker.md')):
        assert 'tensorflow/tensorflow:1.15.5-gpu-py3' in text
    assert '@sha256:' in read('docs', 'docker.md')


def test_nvidia_apt_sources_go_before_apt_get_update(parser):
    runs = [i['value'] for i in values(stages(parser)[0][1], 'RUN') if 'apt-get update' in i['value']]
    assert len(runs) == 1
    run = runs[0]
    assert run.index('/etc/apt/sources.list.d/cuda') < run.index('apt-get update')
    assert run.index('/etc/apt/sources.list.d/nvidia-ml') < run.index('apt-get update')
    assert 'rm -rf /var/lib/apt/lists/*' in run


def test_python37_from_the_ubuntu_archive_into_a_venv(parser):
    runtime = stages(parser)[0][1]
    apt = next(i for i in values(runtime, 'RUN') if 'apt-get install' in i['value'])
    args = apt['args']
    installed = re.findall(r'([\w.+-]+)="?\$\{?(\w+)\}?"?', apt['value'])
    pins = {package: args[var] for package, var in installed}
    assert pins['python3.7'].startswith('3.7.') and pins['python3.7-venv'] == pins['python3.7']
    assert 'python3-distutils' in pins
    assert any(i['value'] == 'python3.7 -m venv /opt/venv' for i in values(runtime, 'RUN'))


# Python packages: one source of truth -----------------------------------------------------

def test_image_pins_are_requirements_txt_with_tensorflow_gpu(parser):
    requirements = read('requirements.txt')
    expected = ir.gpu_pins(requirements)
    lock = read('docker', 'requirements-gpu.lock')
    assert ir.disagreements(expected, ir.parse_pins(lock, 'lock')) == []
    cpu = dict((ir.canonical(n), v) for n, v in ir.parse_pins(requirements))
    gpu = dict((ir.canonical(n), v) for n, v in expected)
    assert 'tensorflow' not in gpu and gpu['tensorflow-gpu'] == cpu['tensorflow'] == '1.15.5'
    assert {k: v for k, v in gpu.items() if k != 'tensorflow-gpu'} == \
        {k: v for k, v in cpu.items() if k != 'tensorflow'}
    hashes = ir.parse_hashes(lock)
    assert set(hashes) == set(gpu) and all(hashes.values())


def test_bootstrap_lock_matches_its_pins():
    lock = read('docker', 'requirements-bootstrap.lock')
    assert ir.parse_pins(lock, 'bootstrap') == ir.BOOTSTRAP
    assert all(ir.parse_hashes(lock).values())


def test_the_image_installs_through_the_shared_script(parser):
    runtime = stages(parser)[0][1]
    copy = [i['value'].split() for i in values(runtime, 'COPY') if i['value'].endswith('/tmp/install/')]
    assert len(copy) == 1
    assert set(copy[0][:-1]) == {'requirements.txt', 'docker/image_requirements.py',
                                 'docker/install-requirements.sh',
                                 'docker/requirements-bootstrap.lock',
                                 'docker/requirements-gpu.lock'}
    run = [' '.join(i['value'].split()) for i in values(runtime, 'RUN')
           if 'install-requirements.sh' in i['value']]
    assert run == ['sh /tmp/install/install-requirements.sh /opt/venv/bin/python /tmp/install '
                   '&& rm -rf /tmp/install']
    assert values(runtime, 'ARG') and any(
        i['args'].get('PIP_INDEX_URL') == 'https://pypi.org/simple' for i in values(runtime, 'ARG'))


def test_install_script_pip_commands_are_pinned_hashed_and_uncached():
    script = read('docker', 'install-requirements.sh')
    commands = re.sub(r'\\\n\s*', ' ', script)
    installs = [line for line in commands.splitlines() if 'pip install' in line]
    assert len(installs) == 2
    for line in installs:
        assert '--no-cache-dir' in line and '--require-hashes' in line, line
        assert re.search(r'-r "\$dir/requirements-(bootstrap|gpu)\.lock"', line), line
    check = commands.index('image_requirements.py" check')
    assert check < commands.index('pip install'), 'the lock must be checked before pip runs'


def test_image_requirements_refuses_drift():
    requirements = 'keras==1.2.2\ntensorflow==1.15.5\nsix==1.16.0\n'
    pins = ir.gpu_pins(requirements)
    assert pins == [('keras', '1.2.2'), ('tensorflow-gpu', '1.15.5'), ('six', '1.16.0')]
    lock = ('keras==1.2.2 \\\n    --hash=sha256:%s\ntensorflow-gpu==1.15.4 \\\n'
            '    --hash=sha256:%s\n' % ('a' * 64, 'b' * 64))
    problems = ir.disagreements(pins, ir.parse_pins(lock))
    assert any('1.15.4' in p for p in problems) and any('six' in p for p in problems)
    with pytest.raises(ir.PinError):
        ir.gpu_pins('keras==1.2.2\n')
    with pytest.raises(ir.PinError):
        ir.gpu_pins('tensorflow==1.15.5\ntensorflow-gpu==1.15.5\n')
    with pytest.raises(ir.PinError):
        ir.gpu_pins('tensorflow>=1.15\n')


def test_image_requirements_check_command(tmp_path):
    drifted = tmp_path / 'requirements.txt'
    drifted.write_text(read('requirements.txt').replace('six==1.16.0', 'six==1.15.0'))
    script = os.path.join(ROOT, 'docker', 'image_requirements.py')
    lock = os.path.join(ROOT, 'docker', 'requirements-gpu.lock')
    ok = subprocess.run([sys.executable, script, 'check', os.path.join(ROOT, 'requirements.txt'),
                         lock], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, script, 'check', str(drifted), lock],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert bad.returncode == 1 and 'six' in bad.stderr and 'lock_image_requirements' in bad.stderr


# How the container runs -------------------------------------------------------------------

def test_entrypoint_is_allconvnet_in_exec_form_with_default_gpus_all(parser):
    final = final_stage(parser)
    entrypoint = json.loads(values(final, 'ENTRYPOINT')[-1]['value'])
    assert entrypoint == ['/opt/venv/bin/python', 'allconvnet.py']
    assert json.loads(values(final, 'CMD')[-1]['value']) == ['--gpus', 'all']
    workdir = values(final, 'WORKDIR')[-1]['value']
    copied = [i['value'].split() for i in values(final, 'COPY') if not i['value'].startswith('--')]
    assert ['allconvnet.py', 'make_parallel.py', 'predict.py', './'] in copied and workdir == '/app'
    assert ['runkit/', 'runkit/'] in copied


def test_final_user_is_not_root(parser):
    final = final_stage(parser)
    user = values(final, 'USER')[-1]
    resolved = expand(user['value'], user['args'])
    uid, _, gid = resolved.partition(':')
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, resolved
    # The user exists with that number and a home, created in the stage the final one builds on.
    useradd = next(i for i in values(stages(parser)[0][1], 'RUN') if 'useradd' in i['value'])
    assert '--uid "${USER_UID}"' in useradd['value'] and '--create-home' in useradd['value']
    assert useradd['args']['USER_UID'] == uid


def test_logs_volume_is_where_allconvnet_writes_by_default(parser):
    from runkit.cli import default_logdir
    final = final_stage(parser)
    workdir = values(final, 'WORKDIR')[-1]['value']
    logdir = default_logdir()
    assert logdir.split(os.sep)[0] == 'logs'
    volumes = json.loads(values(final, 'VOLUME')[-1]['value'])
    assert volumes == [os.path.join(workdir, 'logs')]


def test_cache_paths_are_where_keras_and_cuda_look(parser, tmp_path, monkeypatch):
    from runkit import dataset
    env = env_of(parser)
    home = env['HOME']
    assert home == '/home/allconv'
    # runkit.dataset.cache_dir() (Keras 1.2.2's rule) under a HOME whose ~/.keras is writable,
    # as the image's is: it must be HOME/.keras/datasets.
    fake_home = tmp_path / 'home'
    (fake_home / '.keras').mkdir(parents=True)
    monkeypatch.setenv('HOME', str(fake_home))
    relative = os.path.relpath(dataset.cache_dir(), str(fake_home))
    assert relative == os.path.join('.keras', 'datasets')
    # Keras itself (read, not imported): get_file puts its cache under ~/.keras/<cache_subdir>.
    import importlib.util
    keras_dir = importlib.util.find_spec('keras').submodule_search_locations[0]  # not imported
    data_utils = os.path.join(keras_dir, 'utils', 'data_utils.py')
    with open(data_utils) as f:
        source = f.read()
    assert "os.path.expanduser(os.path.join('~', '.keras'))" in source
    assert "cache_subdir='datasets'" in source
    image_cache = os.path.join(home, relative)
    runtime_text = read('Dockerfile')
    assert 'mkdir -p %s ' % image_cache in runtime_text
    copy_from = [i['value'] for i in values(final_stage(parser), 'COPY')
                 if i['value'].startswith('--from=cifar10')]
    assert copy_from and copy_from[0].split()[-1].rstrip('/') == image_cache
    # CUDA's JIT cache: the driver's default place under HOME, and the maximum size.
    assert env['CUDA_CACHE_PATH'] == os.path.join(home, '.nv', 'ComputeCache')
    assert env['CUDA_CACHE_MAXSIZE'] == str(4 * 1024 ** 3)
    docs = read('docs', 'docker.md')
    for path in (image_cache, env['CUDA_CACHE_PATH'], '/app/logs'):
        assert path in docs, path


def test_layers_are_ordered_for_the_cache(parser):
    text = read('Dockerfile')
    assert (text.index('apt-get update') < text.index('install-requirements.sh /opt/venv')
            < text.index('COPY allconvnet.py'))


def test_cifar10_is_baked_only_on_request(parser):
    named = dict(stages(parser))
    bake = named['cifar10']
    arg = [i for i in values(bake, 'ARG') if 'BAKE_CIFAR10' in i['value']]
    assert arg and arg[0]['args']['BAKE_CIFAR10'] == '0'
    user = values(bake, 'USER')[-1]
    assert expand(user['value'], user['args']) == '1000:1000'


def test_dockerignore_sends_only_what_the_dockerfile_copies(parser):
    rules = [line.strip() for line in read('.dockerignore').splitlines()
             if line.strip() and not line.lstrip().startswith('#')]

    def ignored(path):
        import fnmatch
        result = False
        for rule in rules:
            negate = rule.startswith('!')
            pattern = rule.lstrip('!').rstrip('/')
            parts = path.split('/')
            prefixes = ['/'.join(parts[:n]) for n in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace('**/', ''))
                   for p in prefixes):
                result = not negate
        return result

    sources = []
    for _, instructions in stages(parser):
        for copy in values(instructions, 'COPY'):
            words = copy['value'].split()
            if any(w.startswith('--from') for w in words):
                continue
            sources += [w for w in words[:-1] if not w.startswith('--')]
    for source in sources:
        assert not ignored(source.rstrip('/') + ('/x.py' if source.endswith('/') else '')), source
    for path in ('.venv/bin/python', 'logs/run/history.csv', '.git/HEAD', 'tests/conftest.py',
                 'docs/docker.md', 'tools/blog_diff.py', 'runkit/__pycache__/cli.cpython-37.pyc'):
        assert ignored(path), path


def test_bake_script_default_only_makes_the_cache_folder(tmp_path):
    home = tmp_path / 'home'
    (home / '.keras').mkdir(parents=True)
    bake = os.path.join(ROOT, 'docker', 'bake_cifar10.py')
    env = dict(os.environ, HOME=str(home), PYTHONPATH=ROOT)  # runkit sits beside it in the image
    run = subprocess.run([sys.executable, bake, '0', str(tmp_path), 'http://invalid.invalid/x'],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert os.listdir(str(home / '.keras' / 'datasets')) == []
    # A local archive that is not CIFAR-10 fails the build, and leaves nothing behind.
    (tmp_path / 'cifar-10-python.tar.gz').write_bytes(b'not the archive')
    run = subprocess.run([sys.executable, bake, '1', str(tmp_path), 'http://invalid.invalid/x'],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=120)
    assert run.returncode != 0 and 'MD5' in run.stderr, run.stderr
    assert os.listdir(str(home / '.keras' / 'datasets')) == []


def test_scripts_parse():
    for shell, script in (('sh', 'docker/install-requirements.sh'),
                          ('bash', 'tools/rehearse_image.sh')):
        result = subprocess.run([shell, '-n', os.path.join(ROOT, script)],
                                stderr=subprocess.PIPE, universal_newlines=True)
        assert result.returncode == 0, (script, result.stderr)


def test_rehearsal_reads_the_dockerfile():
    script = read('tools', 'rehearse_image.sh')
    assert 'install-requirements.sh' in script and '/tmp/install/' in script
    assert 'PIP_INDEX_URL' in script and 'synthetic_cifar.py' in script


def test_docs_cover_running_and_what_was_verified():
    docs = read('docs', 'docker.md')
    for needle in ('docker build', '--gpus all', '--gpus \'"device=0,1"\'', '--epochs 5',
                   'nvidia-container-toolkit', 'BAKE_CIFAR10=1', 'Ampere', 'Hopper',
                   'What was and was not verified', 'tools/rehearse_image.sh',
                   'tools/lock_image_requirements.py'):
        assert needle in docs, needle


def test_bake_script_lays_out_the_cache_as_keras_reads_it(cifar_home, tmp_path, monkeypatch):
    # The synthetic cache's archive has the real one's layout; only its MD5 differs.
    import hashlib
    import shutil
    sys.path.insert(0, os.path.join(ROOT, 'docker'))
    import bake_cifar10
    from runkit import dataset
    archive = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py.tar.gz')
    context = tmp_path / 'context'
    context.mkdir()
    shutil.copyfile(archive, str(context / 'cifar-10-python.tar.gz'))
    with open(archive, 'rb') as f:
        monkeypatch.setattr(bake_cifar10, 'MD5', hashlib.md5(f.read()).hexdigest())
    home = tmp_path / 'home'
    (home / '.keras').mkdir(parents=True)
    monkeypatch.setenv('HOME', str(home))
    assert bake_cifar10.main(['1', str(context), 'http://invalid.invalid/x']) == 0
    datadir = home / '.keras' / 'datasets'
    assert sorted(os.listdir(str(datadir))) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']
    dataset.preflight()  # what allconvnet.py checks before load_data(): no download needed
    assert dataset.check_batch(str(datadir / 'cifar-10-batches-py' / 'test_batch')) is None
