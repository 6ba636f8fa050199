"""Static checks of the Docker images: hadolint, and the Dockerfiles' structure against the code.

No Docker engine runs where this project is built and tested, so this is what stands between a
change and a user's failed `docker build` or a container that writes its logs into the void.
Two images: the main Dockerfile (tensorflow-gpu 1.15.5, CUDA 10.0) and docker/ngc.Dockerfile
(NVIDIA's TF1 container, for Ampere and Hopper). Offline; seconds, plus the suite's shared
synthetic CIFAR-10 fixture for the bake tests. docker/rehearse_image.sh rehearses the install
and a first run separately (network, minutes).
"""
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def docker_module(name):
    """A module of docker/, which is no package: the image copies its files one by one."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'docker', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ir = docker_module('image_requirements')

DOCKERFILE = os.path.join(ROOT, 'Dockerfile')
NGC_DOCKERFILE = os.path.join(ROOT, 'docker', 'ngc.Dockerfile')
HADOLINT_CONFIG = os.path.join(ROOT, '.hadolint.yaml')
# The self-check's reference set (issue 20) and what of it the images carry.
REFERENCE_SET = 'logs/reference/upstream-10k'
REFERENCE_SENT = ('README.md', 'seed-1/history.csv', 'seed-1/run.json', 'seed-1/command.txt')
# NVIDIA deleted these from Docker Hub in 2023 (NVIDIA/nvidia-docker#1768, #1790).
DELETED_BASE = re.compile(r'^(docker\.io/)?nvidia/cuda:(9|10)\.')


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


@pytest.fixture(scope='module')
def parser():
    return DockerfileParser(DOCKERFILE, cache_content=True)


@pytest.fixture(scope='module')
def ngc_parser():
    return DockerfileParser(NGC_DOCKERFILE, cache_content=True)


def all_dockerfiles():
    """Every Dockerfile in the repository, wherever it sits and whatever its suffix."""
    found = set()
    for pattern in ('**/Dockerfile', '**/Dockerfile.*', '**/*.Dockerfile', '**/*.dockerfile'):
        found.update(glob.glob(os.path.join(ROOT, pattern), recursive=True))
    skip = (os.sep + '.venv' + os.sep, os.sep + '.git' + os.sep, os.sep + 'logs' + os.sep)
    return sorted(f for f in found if not any(part in f for part in skip))


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


def stage(parser, name):
    return dict(stages(parser))[name]


def expand(value, variables):
    return re.sub(r'\$\{?(\w+)\}?', lambda m: variables.get(m.group(1), m.group(0)), value)


def values(instructions, name):
    return [i for i in instructions if i['instruction'] == name]


def env_of(parser, index=-1):
    """The ENV a stage ends with, including what it inherits from the stage it builds on."""
    all_stages = stages(parser)
    index = index % len(all_stages)
    parent = expand(all_stages[index][1][0]['value'].split()[0], global_args(parser))
    inherited = {}
    for position, (other, _) in enumerate(all_stages[:index]):
        if other == parent:
            inherited = env_of(parser, position)
    own = values(all_stages[index][1], 'ENV')
    return dict(inherited, **(own[-1]['envs'] if own else {}))


def global_args(parser):
    """The ARGs declared before the first FROM, with their defaults."""
    found = {}
    for instr in parser.structure:
        if instr['instruction'] == 'FROM':
            break
        if instr['instruction'] == 'ARG':
            name, _, value = instr['value'].partition('=')
            found[name.strip()] = value.strip()
    return found


def defaults(parser):
    """Every ARG default in a Dockerfile, global or in a stage: {name: [values]}."""
    found = {}
    for instr in parser.structure:
        if instr['instruction'] == 'ARG' and '=' in instr['value']:
            name, _, value = instr['value'].partition('=')
            found.setdefault(name.strip(), []).append(value.strip().strip('"\''))
    return found


# hadolint ---------------------------------------------------------------------------------

def hadolint(*args, stdin=None):
    binary = os.path.join(os.path.dirname(sys.executable), 'hadolint')
    assert os.path.isfile(binary), ('hadolint not next to %s: install the test pins '
                                    '(./setup.sh requirements-test.txt)' % sys.executable)
    return subprocess.run([binary, '--no-color', '-c', HADOLINT_CONFIG] + list(args),
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)


def test_every_dockerfile_is_checked_here():
    assert all_dockerfiles() == sorted([DOCKERFILE, NGC_DOCKERFILE])


@pytest.mark.parametrize('dockerfile', [DOCKERFILE, NGC_DOCKERFILE])
def test_hadolint_passes_at_the_strictest_threshold(dockerfile):
    result = hadolint(dockerfile)
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


# The base images --------------------------------------------------------------------------

def test_default_base_is_the_tensorflow_projects_cuda10_image(parser):
    assert global_args(parser)['BASE_IMAGE'] == 'tensorflow/tensorflow:1.15.5-gpu-py3'
    assert expand(stage(parser, 'runtime')[0]['value'].split()[0], global_args(parser)) == \
        'tensorflow/tensorflow:1.15.5-gpu-py3'
    # Images named by tag, never `latest`; stages after `runtime` build on earlier stages.
    names = [name for name, _ in stages(parser)]
    for position, parent in enumerate(parser.parent_images):
        if names[position] in ('cuda10-apt', 'runtime'):
            name, _, tag = parent.partition('@')[0].rpartition(':')
            assert name and tag and tag != 'latest', parent
        else:
            assert parent in names[:position], parent


def test_no_default_base_is_a_deleted_nvidia_cuda_tag():
    for deleted in ('nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04', 'nvidia/cuda:9.2-base',
                    'docker.io/nvidia/cuda:10.2-devel-ubuntu18.04'):
        assert DELETED_BASE.match(deleted), deleted
    assert not DELETED_BASE.match('nvidia/cuda:11.8.0-base-ubuntu22.04')
    for dockerfile in all_dockerfiles():
        dfp = DockerfileParser(dockerfile, cache_content=True)
        images = list(dfp.parent_images) + [v for vs in defaults(dfp).values() for v in vs]
        for image in images:
            assert not DELETED_BASE.match(image), (dockerfile, image)


def test_apt_alternative_rebuilds_nvidias_cuda10_cudnn7_runtime(parser):
    apt = stage(parser, 'cuda10-apt')
    assert apt[0]['value'].split()[0] == 'ubuntu:18.04'
    added = [i['value'].split() for i in values(apt, 'ADD')]
    assert any(src.endswith('/repos/ubuntu1804/x86_64/cuda-keyring_1.0-1_all.deb')
               and src.startswith('https://developer.download.nvidia.com/') for src, _ in added)
    run = ' '.join(values(apt, 'RUN')[-1]['value'].split())
    packages = dict(p.split('=', 1) for p in re.findall(r'(?<!\S)([a-z0-9.+-]+=[^\s]+)', run))
    assert packages['libcudnn7'] == '7.6.5.32-1+cuda10.0'
    cuda = {name: version for name, version in packages.items() if name.startswith('cuda-')}
    assert set(cuda) >= {'cuda-cudart-10-0', 'cuda-libraries-10-0'}
    assert all(name.endswith('-10-0') and version for name, version in cuda.items())
    assert run.index('dpkg -i /tmp/cuda-keyring.deb') < run.rindex('apt-get update')
    env = env_of(parser, [n for n, _ in stages(parser)].index('cuda10-apt'))
    assert env['NVIDIA_VISIBLE_DEVICES'] == 'all'
    assert env['NVIDIA_DRIVER_CAPABILITIES'] == 'compute,utility'
    assert env['NVIDIA_REQUIRE_CUDA'].startswith('cuda>=10.0')
    # The runtime stage removes these NVIDIA sources again before its own apt-get update:
    # cuda-keyring's own list file, and the machine-learning repository's written here.
    removal = next(i['value'] for i in values(stage(parser, 'runtime'), 'RUN')
                   if 'apt-get update' in i['value']).split('&&')[0].split()[2:]
    import fnmatch
    lists = ['/etc/apt/sources.list.d/cuda-ubuntu1804-x86_64.list'] + re.findall(
        r'> (/etc/apt/sources\.list\.d/\S+)', run)
    assert len(lists) == 2
    for listed in lists:
        assert any(fnmatch.fnmatch(listed, pattern) for pattern in removal), listed


def test_the_other_bases_are_documented(parser):
    header = read('Dockerfile').split('\nFROM ')[0]
    assert 'BASE_IMAGE=cuda10-apt' in header
    docs = read('docs', 'docker.md')
    for needle in ('tensorflow/tensorflow:1.15.5-gpu-py3', '--build-arg BASE_IMAGE=cuda10-apt',
                   '@sha256:', 'BuildKit'):
        assert needle in docs, needle


def test_nvidia_apt_sources_go_before_apt_get_update(parser):
    runs = [i['value'] for i in values(stage(parser, 'runtime'), 'RUN')
            if 'apt-get update' in i['value']]
    assert len(runs) == 1
    run = runs[0]
    assert run.index('/etc/apt/sources.list.d/cuda') < run.index('apt-get update')
    assert run.index('/etc/apt/sources.list.d/nvidia-ml') < run.index('apt-get update')
    assert 'rm -rf /var/lib/apt/lists/*' in run


def test_python37_from_the_ubuntu_archive_into_a_venv(parser):
    runtime = stage(parser, 'runtime')
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
    runtime = stage(parser, 'runtime')
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


def stock_tensorflow():
    """The venv's `tensorflow` distribution, which stands in for the NGC image's; the oneDNN
    build's venv (make test TF_BUILD=mkl) has intel-tensorflow instead, and no stand-in."""
    import pkg_resources
    try:
        return pkg_resources.get_distribution('tensorflow')
    except pkg_resources.DistributionNotFound:
        pytest.skip('this venv has intel-tensorflow, not the tensorflow distribution that '
                    'stands in for the NGC image\'s; the stock build runs this test')


def tensorflow_closure():
    """Canonical names of tensorflow 1.15.5's requirements, closed over (the venv's metadata)."""
    import pkg_resources
    stock_tensorflow()
    seen, todo = set(), ['tensorflow']
    while todo:
        dist = pkg_resources.get_distribution(todo.pop())
        if ir.canonical(dist.project_name) not in seen:
            seen.add(ir.canonical(dist.project_name))
            todo += [r.project_name for r in dist.requires()]
    return seen


def test_ngc_keeps_tensorflow_and_all_it_needs():
    pinned = set(ir.canonical(n) for n, _ in ir.parse_pins(read('requirements.txt')))
    needed = (tensorflow_closure() & pinned) - {'h5py'}
    assert 'numpy' in needed and 'protobuf' in needed and 'gast' in needed
    assert needed <= ir.NGC_KEEPS, sorted(needed - ir.NGC_KEEPS)
    assert 'scipy' in ir.NGC_KEEPS and 'h5py' not in ir.NGC_KEEPS and 'keras' not in ir.NGC_KEEPS


def test_ngc_pins_add_requirements_txt_without_replacing_the_images_tensorflow():
    requirements = read('requirements.txt')
    pinned = ir.parse_pins(requirements)
    # An image with NVIDIA's TensorFlow and numpy, and (say) no scipy.
    image = {ir.canonical(n): v for n, v in pinned if ir.canonical(n) in ir.NGC_KEEPS}
    image.update(tensorflow='1.15.5+nv23.03', numpy='1.22.2')
    del image['scipy']
    install, kept = ir.ngc_pins(requirements, lambda name: image.get(ir.canonical(name)))
    names = [ir.canonical(n) for n, _ in install]
    assert 'tensorflow' not in names and 'numpy' not in names and 'gast' not in names
    assert ('keras', '1.2.2') in install and ('h5py', '2.10.0') in install
    assert ('scipy', '1.4.1') in install  # missing from the image: requirements.txt's pin
    assert set(install) <= set(pinned)
    assert ('tensorflow', '1.15.5', '1.15.5+nv23.03') in kept
    assert len(install) + len(kept) == len(pinned)
    # NVIDIA's wheel under its PyPI name is kept as well; an image without TensorFlow is refused.
    del image['tensorflow']
    image['nvidia-tensorflow'] = '1.15.5+nv23.03'
    install, _ = ir.ngc_pins(requirements, lambda name: image.get(ir.canonical(name)))
    assert 'tensorflow' not in [ir.canonical(n) for n, _ in install]
    del image['nvidia-tensorflow']
    with pytest.raises(ir.PinError):
        ir.ngc_pins(requirements, lambda name: image.get(ir.canonical(name)))


def test_ngc_command_prints_the_pins_to_install():
    stock_tensorflow()
    script = os.path.join(ROOT, 'docker', 'image_requirements.py')
    run = subprocess.run([sys.executable, script, 'ngc', os.path.join(ROOT, 'requirements.txt')],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    install = ir.parse_pins(run.stdout, 'ngc')
    assert ('keras', '1.2.2') in install
    assert set(install) <= set(ir.parse_pins(read('requirements.txt')))
    assert 'keeping the image\'s tensorflow 1.15.5' in run.stderr  # here: the venv's


def test_ngc_image_installs_the_derived_pins_and_nothing_else(ngc_parser):
    instructions = ngc_parser.structure
    assert ngc_parser.parent_images == ['nvcr.io/nvidia/tensorflow:23.03-tf1-py3']
    copy = [i['value'].split() for i in instructions if i['instruction'] == 'COPY'
            and i['value'].endswith('/tmp/install/')]
    assert copy == [['requirements.txt', 'docker/image_requirements.py', '/tmp/install/']]
    runs = [' '.join(i['value'].split()) for i in instructions if i['instruction'] == 'RUN']
    pips = [r for r in runs if 'pip' in r]
    assert len(pips) == 1, pips
    run = pips[0]
    derive = 'python /tmp/install/image_requirements.py ngc /tmp/install/requirements.txt > ' \
             '/tmp/install/ngc-requirements.txt'
    assert run.startswith(derive)
    install = re.search(r'python -m pip install (.*?) &&', run).group(1).split()
    assert {'--no-deps', '--no-cache-dir', '--no-build-isolation'} <= set(install)
    assert install[-2:] == ['-r', '/tmp/install/ngc-requirements.txt']
    assert 'import keras' in run and 'tensorflow' not in run.lower()
    assert any(i['args'].get('PIP_INDEX_URL') == 'https://pypi.org/simple'
               for i in values(final_stage(ngc_parser), 'ARG'))


def test_ngc_image_is_labelled_unverified(ngc_parser):
    assert read('docker', 'ngc.Dockerfile').startswith('# UNVERIFIED')
    assert ngc_parser.labels['org.opencontainers.image.description'].startswith('UNVERIFIED')
    docs = read('docs', 'docker.md')
    section = docs[docs.index('## Ampere and Hopper'):]
    assert 'docker build -f docker/ngc.Dockerfile -t allconvnet .' in section
    assert 'unverified' in section.split('\n## ')[0].lower()


# How the container runs -------------------------------------------------------------------

def code_copies(parser):
    """The final stage's COPY lines after WORKDIR /app: the code."""
    final = final_stage(parser)
    workdir = max(n for n, i in enumerate(final) if i['instruction'] == 'WORKDIR')
    return [i['value'].split() for i in values(final[workdir:], 'COPY')]

@pytest.mark.parametrize('which,python', [('main', '/opt/venv/bin/python'), ('ngc', 'python')])
def test_entrypoint_is_allconvnet_in_exec_form_with_default_gpus_all(parser, ngc_parser, which,
                                                                      python):
    dfp = parser if which == 'main' else ngc_parser
    final = final_stage(dfp)
    entrypoint = json.loads(values(final, 'ENTRYPOINT')[-1]['value'])
    assert entrypoint == [python, 'allconvnet.py']
    assert json.loads(values(final, 'CMD')[-1]['value']) == ['--gpus', 'all']
    workdir = values(final, 'WORKDIR')[-1]['value']
    copied = code_copies(dfp)
    assert ['allconvnet.py', 'make_parallel.py', 'predict.py', './'] in copied and workdir == '/app'
    assert ['runkit/', 'runkit/'] in copied


def test_both_images_carry_the_same_code(parser, ngc_parser):
    assert code_copies(parser) == code_copies(ngc_parser)


def user_stage(dfp):
    """The stage that creates the image's user and its mount points."""
    return next(instructions for _, instructions in stages(dfp)
                if any('useradd' in i['value'] for i in values(instructions, 'RUN')))


@pytest.mark.parametrize('which', ['main', 'ngc'])
def test_final_user_is_not_root(parser, ngc_parser, which):
    dfp = parser if which == 'main' else ngc_parser
    final = final_stage(dfp)
    user = values(final, 'USER')[-1]
    resolved = expand(user['value'], user['args'])
    uid, _, gid = resolved.partition(':')
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, resolved
    # The user exists with that number and a home, created in the final stage or its parent.
    useradd = next(i for i in values(user_stage(dfp), 'RUN') if 'useradd' in i['value'])
    assert '--uid "${USER_UID}"' in useradd['value'] and '--create-home' in useradd['value']
    assert useradd['args']['USER_UID'] == uid


@pytest.mark.parametrize('which', ['main', 'ngc'])
def test_a_fresh_dataset_volume_is_the_users_to_write(parser, ngc_parser, which):
    # Docker fills a new named volume with the mount point's owner and mode; the dataset
    # folder must leave the build owned by the user and writable for any --user.
    dfp = parser if which == 'main' else ngc_parser
    datadir = '/home/allconv/.keras/datasets'
    useradd = next(i for i in values(user_stage(dfp), 'RUN') if 'useradd' in i['value'])
    run = ' '.join(useradd['value'].split())
    steps = [step.strip() for step in run.split('&&')]
    mkdir = next(step for step in steps if step.startswith('mkdir -p '))
    chown = next(step for step in steps if step.startswith('chown -R allconv:allconv '))
    chmod = next(step for step in steps if step.startswith('chmod 1777 '))
    assert datadir in mkdir.split() and datadir in chmod.split()
    assert '/home/allconv' in chown.split()
    assert steps.index(mkdir) < steps.index(chown) < steps.index(chmod)
    # Nothing later touches the folder itself: the bake's COPY brings its contents only, into
    # the folder made above (whose owner and mode a COPY into an existing folder keeps).
    final = final_stage(dfp)
    final = final[final.index(useradd) + 1:] if useradd in final else final
    later = values(final, 'RUN') + [i for i in values(final, 'COPY') if datadir in i['value']]
    for instr in later:
        words = instr['value'].split()
        if words[0].startswith('--from='):
            assert words[-2] == datadir + '/' and words[-1] == datadir + '/', words
        else:
            assert datadir not in instr['value'], instr['value']


@pytest.mark.parametrize('which', ['main', 'ngc'])
def test_logs_volume_is_where_allconvnet_writes_by_default(parser, ngc_parser, which):
    from runkit.cli import default_logdir
    final = final_stage(parser if which == 'main' else ngc_parser)
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
    # TensorFlow needs the driver's compute libraries, whatever the base says.
    assert 'compute' in env['NVIDIA_DRIVER_CAPABILITIES'].split(',')
    # The NVIDIA image: the same paths.
    ngc_env = env_of(DockerfileParser(NGC_DOCKERFILE, cache_content=True))
    for name in ('HOME', 'CUDA_CACHE_PATH', 'CUDA_CACHE_MAXSIZE'):
        assert ngc_env[name] == env[name], name
    docs = read('docs', 'docker.md')
    for path in (image_cache, env['CUDA_CACHE_PATH'], '/app/logs'):
        assert path in docs, path


def test_layers_are_ordered_for_the_cache(parser):
    # Guards a slow image: if the code were copied before the packages were installed, every
    # edit to allconvnet.py would rerun apt and pip (about 2 GB) on the next build.
    final = final_stage(parser)
    assert final[0]['value'].split() == ['runtime']
    chain = stage(parser, 'runtime') + final  # the image's layers, base stage first

    def first(instruction, word):
        return next(i for i, x in enumerate(chain) if x['instruction'] == instruction
                    and word in x['value'])
    assert first('RUN', 'apt-get update') < first('RUN', 'install-requirements.sh') < \
        first('COPY', 'allconvnet.py')


def test_cifar10_is_baked_only_on_request(parser):
    bake = stage(parser, 'cifar10')
    args = values(bake, 'ARG')[-1]['args']
    assert args['BAKE_CIFAR10'] == '0'
    # No URL of its own: empty means runkit.dataset's default, the one a first run uses.
    assert args['CIFAR10_URL'] == ''
    copies = [i['value'].split() for i in values(bake, 'COPY')]
    # runkit/dataset.py and what it imports of runkit, transitively, and nothing else of it.
    needed, todo = set(), ['runkit/__init__.py', 'runkit/dataset.py']
    while todo:
        path = todo.pop()
        if path not in needed:
            needed.add(path)
            todo += [m.replace('.', '/') + '.py' for m in project_imports(os.path.join(ROOT, path))
                     if os.path.isfile(os.path.join(ROOT, m.replace('.', '/') + '.py'))]
    copied = [w for words in copies for w in words[:-1] if w.startswith('runkit/')]
    assert sorted(copied) == sorted(needed), copied
    assert [words[-1] for words in copies if 'runkit/dataset.py' in words] == ['/tmp/bake/runkit/']
    user = values(bake, 'USER')[-1]
    assert expand(user['value'], user['args']) == '1000:1000'


def test_bake_script_has_no_download_code_of_its_own():
    # Guards a second download path that would skip runkit.dataset's MD5 check and its
    # one-line errors: the bake stage must fetch through dataset.ensure only.
    source = read('docker', 'bake_cifar10.py')
    assert 'dataset.ensure(' in source
    for own in ('urlopen', 'urlretrieve', 'hashlib', 'tarfile', 'c58f30108f718f92721af3b95e74349a'):
        assert own not in source, own


@pytest.mark.parametrize('dockerfile', [DOCKERFILE, NGC_DOCKERFILE])
def test_dockerignore_sends_only_what_the_dockerfile_copies(dockerfile):
    parser = DockerfileParser(dockerfile, cache_content=True)
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
        if source.rstrip('/') == REFERENCE_SET:
            continue
        assert not ignored(source.rstrip('/') + ('/x.py' if source.endswith('/') else '')), source
    # The reference set: its text files only, whatever else a run left beside them.
    assert REFERENCE_SET + '/' in sources
    for name in REFERENCE_SENT:
        assert not ignored(REFERENCE_SET + '/' + name), name
    for name in ('seed-1/curves.png', 'seed-1/model.h5', 'seed-1/weights.best.hdf5',
                 'seed-1/state.h5', 'curves.png'):
        assert ignored(REFERENCE_SET + '/' + name), name
    for path in ('.venv/bin/python', 'logs/run/history.csv', '.git/HEAD', 'tests/conftest.py',
                 'docs/docker.md', 'tools/blog_diff.py', 'runkit/__pycache__/cli.cpython-37.pyc',
                 'logs/reference/upstream-50k/history.csv', 'docker/build_image.sh'):
        assert ignored(path), path


def bake_stage_layout(parser, root):
    """/tmp/bake as the bake stage's COPY lines fill it, under `root`; the script's path."""
    import shutil
    for copy in values(stage(parser, 'cifar10'), 'COPY'):
        words = copy['value'].split()
        dest = os.path.join(str(root), words[-1].lstrip('/'))
        os.makedirs(dest, exist_ok=True)
        for source in words[1:-1] if words[0].startswith('--') else words[:-1]:
            source = os.path.join(ROOT, source)
            if os.path.isdir(source):
                for name in os.listdir(source):
                    shutil.copy(os.path.join(source, name), dest)
            else:
                shutil.copy(source, dest)
    return os.path.join(str(root), 'tmp', 'bake', 'bake_cifar10.py')


def test_bake_script_default_only_makes_the_cache_folder(parser, tmp_path):
    home = tmp_path / 'home'
    (home / '.keras').mkdir(parents=True)
    # Only what the bake stage copies: runkit/__init__.py and runkit/dataset.py must suffice.
    bake = bake_stage_layout(parser, tmp_path / 'image')
    env = dict(os.environ, HOME=str(home))
    for name in ('PYTHONPATH', 'ALLCONVNET_CIFAR10_URL', 'ALLCONVNET_CIFAR10_MD5'):
        env.pop(name, None)
    run = subprocess.run([sys.executable, bake, '0', str(tmp_path), 'http://invalid.invalid/x'],
                         env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert os.listdir(str(home / '.keras' / 'datasets')) == []
    # A local archive that is not CIFAR-10 fails the build, and leaves nothing behind.
    (tmp_path / 'cifar-10-python.tar.gz').write_bytes(b'not the archive')
    run = subprocess.run([sys.executable, bake, '1', str(tmp_path), 'http://invalid.invalid/x'],
                         env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert run.returncode != 0 and 'MD5' in run.stderr, run.stderr
    assert os.listdir(str(home / '.keras' / 'datasets')) == []


def test_scripts_parse():
    for shell, script in (('sh', 'docker/install-requirements.sh'),
                          ('bash', 'docker/rehearse_image.sh')):
        result = subprocess.run([shell, '-n', os.path.join(ROOT, script)],
                                stderr=subprocess.PIPE, universal_newlines=True)
        assert result.returncode == 0, (script, result.stderr)


def test_docs_build_arguments_are_ones_the_images_declare():
    # Guards a pasted command that fails: docker build rejects nothing, it warns and ignores an
    # undeclared --build-arg, so a misspelt one in the docs silently builds the wrong image.
    docs = read('docs', 'docker.md')
    assert '## What was and was not verified' in docs  # what could not be run where it was written
    declared = set(defaults(DockerfileParser(DOCKERFILE, cache_content=True))) | set(
        defaults(DockerfileParser(NGC_DOCKERFILE, cache_content=True))) | {'USER_UID', 'USER_GID'}
    for name in re.findall(r'--build-arg ([A-Z0-9_]+)=', docs):
        assert name in declared, name


def test_bake_script_lays_out_the_cache_as_keras_reads_it(cifar_home, tmp_path, monkeypatch):
    # A local archive in the build context (docker/cifar10/): the synthetic cache's archive has
    # the real one's layout; only its MD5 differs, given the way a mirror's would be.
    import hashlib
    import shutil
    bake_cifar10 = docker_module('bake_cifar10')
    from runkit import dataset
    archive = os.path.join(cifar_home, '.keras', 'datasets', 'cifar-10-batches-py.tar.gz')
    context = tmp_path / 'context'
    context.mkdir()
    shutil.copyfile(archive, str(context / 'cifar-10-python.tar.gz'))
    with open(archive, 'rb') as f:
        monkeypatch.setenv(dataset.MD5_VARIABLE, hashlib.md5(f.read()).hexdigest())
    monkeypatch.delenv(dataset.URL_VARIABLE, raising=False)
    home = tmp_path / 'home'
    (home / '.keras').mkdir(parents=True)
    monkeypatch.setenv('HOME', str(home))
    assert bake_cifar10.main(['1', str(context), 'http://invalid.invalid/x']) == 0
    datadir = home / '.keras' / 'datasets'
    assert sorted(os.listdir(str(datadir))) == ['cifar-10-batches-py', 'cifar-10-batches-py.tar.gz']
    # What a first run finds: the cache is complete, so nothing is downloaded.
    assert dataset.ensure('http://127.0.0.1:1/never-asked') == str(datadir / dataset.NAME)
    assert dataset.check_batch(str(datadir / 'cifar-10-batches-py' / 'test_batch')) is None


def test_bake_script_downloads_from_the_build_argument(mirror, tmp_path, monkeypatch):
    bake_cifar10 = docker_module('bake_cifar10')
    from runkit import dataset
    url, md5 = mirror
    monkeypatch.setenv(dataset.MD5_VARIABLE, md5)
    monkeypatch.delenv(dataset.URL_VARIABLE, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    empty_context = tmp_path / 'context'
    empty_context.mkdir()
    assert bake_cifar10.main(['1', str(empty_context), url + '/cifar-10-python.tar.gz']) == 0
    assert os.path.isdir(str(tmp_path / '.keras' / 'datasets' / dataset.NAME))
    # A failed download fails the build in one line naming the way round it.
    monkeypatch.setenv('HOME', str(tmp_path / 'other'))
    with pytest.raises(SystemExit) as e:
        bake_cifar10.main(['1', str(empty_context), url + '/missing.tar.gz'])
    assert 'HTTP 404' in str(e.value) and 'docker/cifar10/' in str(e.value)
    assert '\n' not in str(e.value)


# The run lines the docs and headers give, against the images ---------------------------------

def docker_commands(text, verb):
    """Every `docker <verb> ...` command line in `text` (README and docs code blocks, a
    Dockerfile's header), its backslash continuations joined, as shlex words."""
    import shlex
    text = re.sub(r'\\\n[#\s]*', ' ', text)
    found = []
    for line in text.splitlines():
        command = line.lstrip('# ')
        if command.startswith('docker %s ' % verb):
            found.append(shlex.split(command.split('  #')[0]))
    return found


def header(path):
    """A Dockerfile's comment lines before its first instruction."""
    lines = []
    for line in read(path).splitlines():
        if line and not line.startswith('#'):
            break
        lines.append(line)
    return '\n'.join(lines)


def mounts(words):
    """{container path: source} of a docker run's -v options."""
    return dict(reversed(words[i + 1].split(':')[:2]) for i, w in enumerate(words) if w == '-v')


def image_mount_points(dfp):
    """What the image makes for mounting: the VOLUMEs and the mkdir'd cache folders."""
    final = final_stage(dfp)
    points = set(json.loads(values(final, 'VOLUME')[-1]['value']))
    useradd = next(i for i in values(user_stage(dfp), 'RUN') if 'useradd' in i['value'])
    mkdir = next(step.strip() for step in ' '.join(useradd['value'].split()).split('&&')
                 if step.strip().startswith('mkdir -p '))
    return points | set(mkdir.split()[2:])


@pytest.mark.parametrize('which', ['main', 'ngc'])
def test_each_header_gives_its_own_build_and_run_line(parser, ngc_parser, which):
    dfp, path = (parser, 'Dockerfile') if which == 'main' else (ngc_parser,
                                                                'docker/ngc.Dockerfile')
    text = header(path)
    builds = docker_commands(text, 'build')
    expected = (['docker', 'build', '-t', 'allconvnet', '.'] if which == 'main' else
                ['docker', 'build', '-f', 'docker/ngc.Dockerfile', '-t', 'allconvnet', '.'])
    assert builds == [expected], builds
    (run,) = docker_commands(text, 'run')
    assert run[:4] == ['docker', 'run', '--rm', '--gpus'] and run[-1] == 'allconvnet', run
    mounted = mounts(run)
    assert set(mounted) <= image_mount_points(dfp), mounted
    assert '/app/logs' in mounted and '/home/allconv/.keras/datasets' in mounted
    # The CUDA 10 image JIT-compiles on GPUs it has no SASS for; NVIDIA's build has the kernels.
    cache = env_of(dfp)['CUDA_CACHE_PATH']
    assert (cache in mounted) == (which == 'main'), mounted


def test_the_readme_says_first_which_image_for_which_gpu():
    readme = read('README.md')
    section = readme[readme.index('## On an NVIDIA GPU'):]
    first = section[:section.index('```')]
    assert 'Volta' in first and 'Ampere' in first and '7.5' in first and '8.0' in first
    assert '`docker build -t allconvnet .`' in first
    assert '`docker build -f docker/ngc.Dockerfile -t allconvnet .`' in first
    assert '`make image`' in first and '`docker run --gpus all allconvnet`' in first
    # The build command the refusal gives is the README's.
    from runkit import session
    assert '`%s`' % session.NGC_BUILD in first


def selfcheck_line():
    readme = read('README.md')
    (words,) = [w for w in docker_commands(readme, 'run') if 'tools.selfcheck' in w]
    return words


def test_the_selfcheck_line_runs_in_both_images(parser, ngc_parser):
    words = selfcheck_line()
    assert words == docker_commands(read('docs', 'docker.md'), 'run')[
        [('tools.selfcheck' in w) for w in docker_commands(read('docs', 'docker.md'),
                                                           'run')].index(True)]
    image = words.index('allconvnet')
    assert words[image + 1:] == ['-m', 'tools.selfcheck']
    entrypoint = words[words.index('--entrypoint') + 1]
    # A bare `python`: the venv's, first on PATH, in the CUDA 10 image; the image's own in NGC's
    # (which has no /opt/venv).
    assert entrypoint == 'python'
    assert env_of(parser)['PATH'].split(':')[0] == '/opt/venv/bin'
    assert json.loads(values(final_stage(ngc_parser), 'ENTRYPOINT')[-1]['value'])[0] == 'python'
    for dfp in (parser, ngc_parser):
        assert set(mounts(words)) <= image_mount_points(dfp)
        assert '/app/logs' in mounts(words)
        files = image_files(dfp)
        # `-m tools.selfcheck` from WORKDIR /app, and the project modules it imports.
        assert {'tools/__init__.py', 'tools/selfcheck.py'} <= files, sorted(files)
        # Every module it imports, and every module those import.
        seen, todo = set(), ['tools.selfcheck']
        while todo:
            module = todo.pop()
            path = module.replace('.', '/')
            assert path + '.py' in files or path + '/__init__.py' in files, module
            source = os.path.join(ROOT, path + '.py')
            for name in project_imports(source) if os.path.isfile(source) else ():
                if name not in seen:
                    seen.add(name)
                    todo.append(name)


def image_files(dfp):
    """The repository files the final stage copies under WORKDIR /app, as repository paths."""
    files = set()
    for words in code_copies(dfp):
        for source in words[:-1]:
            if source.endswith('/'):
                for base, _, names in os.walk(os.path.join(ROOT, source)):
                    files.update(os.path.relpath(os.path.join(base, n), ROOT) for n in names)
            else:
                files.add(source)
    return files


def project_imports(path):
    """The modules of this repository that the file at `path` imports, absolute names."""
    import ast
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update('%s.%s' % (node.module, a.name) for a in node.names)
    local = ('tools', 'runkit', 'allconvnet', 'make_parallel', 'predict')
    found = set()
    for name in names:
        if name.split('.')[0] in local:
            # `from runkit import plot` names a module; `from runkit.plot import plot_run` not.
            path = os.path.join(ROOT, *name.split('.'))
            if os.path.isfile(path + '.py') or os.path.isdir(path):
                found.add(name)
    return found


@pytest.mark.parametrize('which', ['main', 'ngc'])
def test_the_reference_set_is_where_the_selfcheck_looks_and_no_volume_hides_it(
        parser, ngc_parser, which):
    dfp = parser if which == 'main' else ngc_parser
    final = final_stage(dfp)
    workdir = values(final, 'WORKDIR')[-1]['value']
    (copy,) = [words for words in code_copies(dfp) if words[0] == REFERENCE_SET + '/']
    inside = os.path.normpath(os.path.join(workdir, copy[-1]))
    assert env_of(dfp)['ALLCONVNET_REFERENCE_SET'] == inside
    for volume in json.loads(values(final, 'VOLUME')[-1]['value']):
        assert not (inside + '/').startswith(volume.rstrip('/') + '/'), (inside, volume)
    # The self-check's default is that variable (tools/selfcheck.py, issue 20).
    assert 'ALLCONVNET_REFERENCE_SET' in read('tools', 'selfcheck.py')


def test_the_reference_set_has_what_the_image_copies():
    root = os.path.join(ROOT, REFERENCE_SET)
    assert os.path.isfile(os.path.join(root, 'README.md'))
    seeds = sorted(glob.glob(os.path.join(root, 'seed-*')))
    assert len(seeds) >= 5, seeds
    for seed in seeds:
        for name in ('history.csv', 'run.json', 'command.txt'):
            assert os.path.isfile(os.path.join(seed, name)), (seed, name)


# make image ---------------------------------------------------------------------------------

def build_image(tmp_path, smi=None, gpus=None):
    """docker/build_image.sh with DRY_RUN=1 on a host whose nvidia-smi prints `smi` (None: one
    too old for compute_cap, as drivers before 510) and whose libcuda.so.1 shows `gpus`
    ("name=major.minor;...", the stand-in; None: no driver); (exit code, stdout)."""
    import standin_cuda
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    smi_script = ('#!/bin/sh\nprintf "%s"\n' % smi if smi is not None else
                  '#!/bin/sh\necho \'Field "compute_cap" is not a valid field to query.\'\n'
                  'exit 2\n')
    (bin_dir / 'nvidia-smi').write_text(smi_script)
    (bin_dir / 'nvidia-smi').chmod(0o755)
    env = dict(os.environ, DRY_RUN='1', PATH='%s:%s:/usr/bin:/bin' % (
        bin_dir, os.path.dirname(sys.executable)))
    env.pop('CUDA_VISIBLE_DEVICES', None)
    env.pop('LD_LIBRARY_PATH', None)
    if gpus is not None:
        env.update(LD_LIBRARY_PATH=standin_cuda.build(str(tmp_path / 'lib')),
                   STANDIN_CUDA_GPUS=gpus)
    run = subprocess.run(['bash', os.path.join(ROOT, 'docker', 'build_image.sh')], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    return run.returncode, run.stdout


def test_make_image_picks_the_dockerfile_by_compute_capability(tmp_path):
    code, out = build_image(tmp_path, smi='7.0\\n8.6\\n')
    assert code == 0, out
    assert out.startswith('make image: docker/ngc.Dockerfile: compute capability 7.0, 8.6 '
                          '(nvidia-smi): 8.0 or newer'), out
    assert 'docker build -f docker/ngc.Dockerfile -t allconvnet ' in out
    code, out = build_image(tmp_path, smi='7.5\\n')
    assert code == 0 and out.startswith('make image: Dockerfile: compute capability 7.5 '), out
    assert 'docker build -f Dockerfile -t allconvnet ' in out
    # nvidia-smi too old to say: the driver itself, through libcuda.so.1.
    code, out = build_image(tmp_path, gpus='NVIDIA H100 80GB HBM3=9.0')
    assert code == 0 and out.startswith('make image: docker/ngc.Dockerfile: compute capability '
                                        '9.0 (libcuda.so.1)'), out
    # No GPU seen at all: the CUDA 10 image, saying so.
    code, out = build_image(tmp_path)
    assert code == 0 and out.startswith('make image: Dockerfile: no GPU seen'), out
    assert re.search(r'^image:\n\tdocker/build_image\.sh ', read('Makefile'), re.M)
