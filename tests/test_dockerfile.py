"""Checks of the Docker images: hadolint, and properties of the Dockerfiles against the code.

No Docker engine runs where this project is built and tested, so this is what stands between a
change and a user's failed `docker build` or a container that writes its logs into the void.
Two images: the main Dockerfile (tensorflow-gpu 1.15.5, CUDA 10.0) and docker/ngc.Dockerfile
(NVIDIA's TF1 container, for Ampere and Hopper); what both must do is checked on both. The tests
state properties (pins from requirements.txt, a non-root user, volumes where the code writes,
the modules the entrypoints import copied), not the Dockerfiles' text, and run the code the
images run: the bake script, docker/image_requirements.py, `make image`'s choice. Offline;
seconds, plus the suite's shared synthetic CIFAR-10 fixture for the bake tests.
docker/rehearse_image.sh rehearses the install and a first run separately (network, minutes).
"""
import ast
import fnmatch
import functools
import glob
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from helpers import ROOT


def docker_module(name):
    """A module of docker/, which is no package: the image copies its files one by one."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'docker', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ir = docker_module('image_requirements')

DOCKERFILES = {'main': os.path.join(ROOT, 'Dockerfile'),
               'ngc': os.path.join(ROOT, 'docker', 'ngc.Dockerfile')}
HADOLINT_CONFIG = os.path.join(ROOT, '.hadolint.yaml')
# The self-check's reference set (issue 20).
REFERENCE_SET = 'logs/reference/upstream-10k'
# NVIDIA deleted these from Docker Hub in 2023 (NVIDIA/nvidia-docker#1768, #1790).
DELETED_BASE = re.compile(r'^(docker\.io/)?nvidia/cuda:(9|10)\.')
both = pytest.mark.parametrize('which', sorted(DOCKERFILES))


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def parse(which):
    return DockerfileParser(DOCKERFILES[which], cache_content=True)


def stages(dfp):
    """[(stage name or None, [instruction dicts with 'args' and 'envs' resolved])]."""
    result = []
    for instr, context in zip(dfp.structure, dfp.context_structure):
        instr = dict(instr, args=context.args, envs=context.envs)
        if instr['instruction'] == 'FROM':
            words = instr['value'].split()
            result.append((words[2] if len(words) == 3 else None, [instr]))
        elif result:
            result[-1][1].append(instr)
    return result


def final_stage(dfp):
    return stages(dfp)[-1][1]


def lineage(dfp):
    """The final image's instructions: those of the stages it builds on, then its own."""
    named, chain = dict(stages(dfp)), final_stage(dfp)
    while chain[0]['value'].split()[0] in named:
        chain = named[chain[0]['value'].split()[0]] + chain
    return chain


def values(instructions, name):
    return [i for i in instructions if i['instruction'] == name]


def env_of(dfp):
    """The final image's ENV, as far as the Dockerfile sets it."""
    env = {}
    for instr in values(lineage(dfp), 'ENV'):
        env.update(instr['envs'])
    return env


def defaults(dfp):
    """Every ARG default in a Dockerfile, global or in a stage: {name: [values]}."""
    found = {}
    for instr in dfp.structure:
        if instr['instruction'] == 'ARG' and '=' in instr['value']:
            name, _, value = instr['value'].partition('=')
            found.setdefault(name.strip(), []).append(value.strip().strip('"\''))
    return found


def exec_form(dfp, instruction):
    return json.loads(values(final_stage(dfp), instruction)[-1]['value'])


def expand(value, variables):
    return re.sub(r'\$\{?(\w+)\}?', lambda m: variables[m.group(1)], value)


def resolved_user(instructions):
    user = values(instructions, 'USER')[-1]
    return expand(user['value'], user['args'])


def useradd(dfp):
    """The RUN that creates the image's user and its mount points, split at &&."""
    run = next(i for i in values(lineage(dfp), 'RUN') if 'useradd' in i['value'])
    return run, [step.strip() for step in ' '.join(run['value'].split()).split('&&')]


def mount_points(dfp):
    """What the image makes for mounting: the VOLUMEs and the mkdir'd cache folders."""
    mkdir = next(s for s in useradd(dfp)[1] if s.startswith('mkdir -p '))
    return set(exec_form(dfp, 'VOLUME')) | set(mkdir.split()[2:])


def image_datadir(dfp, tmp_path, monkeypatch):
    """Where runkit.dataset (Keras 1.2.2's rule) looks for CIFAR-10 in the image: its cache_dir()
    under a HOME whose ~/.keras is writable, as the image's is, moved to the image's HOME."""
    from runkit import dataset
    home = tmp_path / 'h'
    (home / '.keras').mkdir(parents=True)
    monkeypatch.setenv('HOME', str(home))
    return os.path.join(env_of(dfp)['HOME'], os.path.relpath(dataset.cache_dir(), str(home)))


def copies(instructions):
    """[(sources, destination)] of the COPY lines that copy from the build context."""
    found = []
    for instr in values(instructions, 'COPY'):
        words = instr['value'].split()
        if not any(w.startswith('--from') for w in words):
            found.append(([w for w in words[:-1] if not w.startswith('--')], words[-1]))
    return found


def copied_to(instructions):
    """Where in the image those COPY lines put each source."""
    return {os.path.join(dest, os.path.basename(s.rstrip('/')))
            for sources, dest in copies(instructions) for s in sources}


def code_copies(dfp):
    """The final stage's COPY lines after WORKDIR /app: the code."""
    final = final_stage(dfp)
    return copies(final[max(n for n, i in enumerate(final) if i['instruction'] == 'WORKDIR'):])


def image_files(dfp):
    """The repository files the final stage copies under WORKDIR /app, as repository paths."""
    files = set()
    for sources, _ in code_copies(dfp):
        for source in sources:
            for base, _, names in os.walk(os.path.join(ROOT, source)):
                files.update(os.path.relpath(os.path.join(base, n), ROOT) for n in names)
            files.update([source] if not source.endswith('/') else [])
    return files


@functools.lru_cache(maxsize=None)
def module_closure(module):
    """Repository paths of `module`, the packages it is in and every project module they import,
    transitively."""
    paths, todo = set(), [module]
    while todo:
        parts = todo.pop().split('.')
        for n in range(1, len(parts) + 1):
            base = os.path.join(*parts[:n])
            path = base + '.py' if os.path.isfile(os.path.join(ROOT, base + '.py')) else \
                os.path.join(base, '__init__.py')
            if path in paths or not os.path.isfile(os.path.join(ROOT, path)):
                continue
            paths.add(path)
            for node in ast.walk(ast.parse(read(path))):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    todo += [node.module] + ['%s.%s' % (node.module, a.name) for a in node.names]
    return frozenset(paths)


# hadolint and the static checks -----------------------------------------------------------

def hadolint(*args, stdin=None):
    binary = os.path.join(os.path.dirname(sys.executable), 'hadolint')
    assert os.path.isfile(binary), ('hadolint not next to %s: install the test pins '
                                    '(./setup.sh requirements-test.txt)' % sys.executable)
    return subprocess.run([binary, '--no-color', '-c', HADOLINT_CONFIG] + list(args),
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)


def test_every_dockerfile_is_checked_here():
    found = set()
    for pattern in ('**/Dockerfile', '**/Dockerfile.*', '**/*.Dockerfile', '**/*.dockerfile'):
        found.update(glob.glob(os.path.join(ROOT, pattern), recursive=True))
    skip = (os.sep + '.venv' + os.sep, os.sep + '.git' + os.sep, os.sep + 'logs' + os.sep)
    assert sorted(f for f in found if not any(s in f for s in skip)) == sorted(DOCKERFILES.values())


@both
def test_hadolint_passes_at_the_strictest_threshold(which):
    result = hadolint(DOCKERFILES[which])
    assert result.returncode == 0 and result.stdout.strip() == '', result.stdout


def test_hadolint_config_is_in_force_and_its_ignored_rules_have_reasons():
    # A Dockerfile with known faults must fail under the same config, inline pragma or not:
    # proves the config is read, the threshold bites and ignore pragmas are refused.
    bad = ('FROM ubuntu:latest\n# hadolint ignore=DL3008\nRUN apt-get update && apt-get install '
           '-y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n')
    result = hadolint('-', stdin=bad)
    assert result.returncode != 0
    assert 'DL3007' in result.stdout and 'DL3008' in result.stdout, result.stdout
    config = yaml.safe_load(read('.hadolint.yaml'))
    assert config['failure-threshold'] == 'style' and config['disable-ignore-pragma'] is True
    lines = read('.hadolint.yaml').splitlines()
    for rule in config.get('ignored') or []:
        at = next(n for n, line in enumerate(lines) if re.match(r'\s*-\s*%s\b' % rule, line))
        reason = lines[at - 1].strip()
        assert reason.startswith('#') and len(reason.split()) >= 5, (
            'ignored rule %s needs a comment line above it saying why' % rule)


def test_scripts_parse():
    for shell, script in (('sh', 'install-requirements.sh'), ('bash', 'rehearse_image.sh'),
                          ('bash', 'build_image.sh')):
        result = subprocess.run([shell, '-n', os.path.join(ROOT, 'docker', script)],
                                stderr=subprocess.PIPE, universal_newlines=True)
        assert result.returncode == 0, (script, result.stderr)


@both
def test_dockerignore_sends_only_what_the_dockerfile_copies(which):
    rules = [line.strip() for line in read('.dockerignore').splitlines()
             if line.strip() and not line.startswith('#')]

    def ignored(path):
        result, parts = False, path.split('/')
        for rule in rules:
            pattern = rule.lstrip('!').rstrip('/')
            if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace('**/', ''))
                   for p in ('/'.join(parts[:n]) for n in range(1, len(parts) + 1))):
                result = not rule.startswith('!')
        return result

    sources = [s for stage in stages(parse(which)) for srcs, _ in copies(stage[1]) for s in srcs]
    assert REFERENCE_SET + '/' in sources
    for source in sources:
        if source != REFERENCE_SET + '/':
            assert not ignored(source + ('x.py' if source.endswith('/') else '')), source
    # The reference set: its README and each seed's text files, which exist, and no plots or
    # weights that a run left beside them.
    seeds = sorted(glob.glob(os.path.join(ROOT, REFERENCE_SET, 'seed-*')))
    assert len(seeds) >= 5 and not ignored(REFERENCE_SET + '/README.md'), seeds
    for path in (os.path.join(seed, name) for seed in seeds
                 for name in ('history.csv', 'run.json', 'command.txt')):
        assert os.path.isfile(path) and not ignored(os.path.relpath(path, ROOT)), path
    for path in ('seed-1/curves.png', 'seed-1/model.h5', 'seed-1/weights.best.hdf5', 'curves.png'):
        assert ignored(REFERENCE_SET + '/' + path), path
    for path in ('.venv/bin/python', 'logs/run/history.csv', '.git/HEAD', 'tests/conftest.py',
                 'docs/docker.md', 'tools/blog_diff.py', 'runkit/__pycache__/cli.cpython-37.pyc',
                 'logs/reference/upstream-50k/history.csv', 'docker/build_image.sh'):
        assert ignored(path), path


def test_docs_build_arguments_are_ones_the_images_declare():
    # Guards a pasted command that fails: docker build rejects nothing, it warns and ignores an
    # undeclared --build-arg, so a misspelt one in the docs silently builds the wrong image.
    declared = set(defaults(parse('main'))) | set(defaults(parse('ngc'))) | {'USER_UID',
                                                                             'USER_GID'}
    for name in re.findall(r'--build-arg ([A-Z0-9_]+)=', read('docs', 'docker.md')):
        assert name in declared, name


# The base images ----------------------------------------------------------------------------

def tagged(image):
    name, _, tag = image.partition('@')[0].rpartition(':')
    return bool(name and tag) and tag != 'latest' and '/' not in tag


@both
def test_default_base_is_tagged_and_the_documented_one(which):
    dfp = parse(which)
    names = [name for name, _ in stages(dfp)]
    parents = dict(zip(names, dfp.parent_images))  # with the ARG defaults resolved
    base = dfp.parent_images[-1]
    while base in parents:
        base = parents[base]
    docs = read('docs', 'docker.md')
    assert tagged(base) and '`%s`' % base in docs, base
    for position, parent in enumerate(dfp.parent_images):  # the other stages' too
        assert tagged(parent) or parent in names[:position], parent
    if which == 'main':  # the CUDA libraries of requirements.txt's TensorFlow
        tensorflow = dict(ir.parse_pins(read('requirements.txt')))['tensorflow']
        assert base.rpartition(':')[2].startswith(tensorflow + '-gpu'), base
        for other in re.findall(r'--build-arg BASE_IMAGE=(\S+)', docs):
            assert other.strip('\'"') in names or tagged(other.strip('\'"')), other
    else:  # never built here: it says so where `docker inspect` and the docs show it
        assert dfp.labels['org.opencontainers.image.description'].startswith('UNVERIFIED')
        section = docs[docs.index('## Ampere and Hopper'):].split('\n## ')[0]
        assert 'unverified' in section.lower() and base in section


def test_no_default_base_is_a_deleted_nvidia_cuda_tag():
    for deleted in ('nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04', 'nvidia/cuda:9.2-base',
                    'docker.io/nvidia/cuda:10.2-devel-ubuntu18.04'):
        assert DELETED_BASE.match(deleted), deleted
    assert not DELETED_BASE.match('nvidia/cuda:11.8.0-base-ubuntu22.04')
    for dfp in (parse('main'), parse('ngc')):
        for image in list(dfp.parent_images) + [v for vs in defaults(dfp).values() for v in vs]:
            assert not DELETED_BASE.match(image), (dfp.dockerfile_path, image)


def test_nvidias_apt_lists_go_before_apt_get_update():
    # Every base lists NVIDIA's repositories under a key apt can no longer check; the runtime
    # stage's one apt-get update fails unless they go first, the ones cuda10-apt writes too.
    named = dict(stages(parse('main')))
    (run,) = [i['value'].split('&&') for i in values(named['runtime'], 'RUN')
              if 'apt-get update' in i['value']]
    update = next(n for n, step in enumerate(run) if 'apt-get update' in step)
    removed = [p for step in run[:update] if step.split()[0] == 'rm' for p in step.split()[1:]]
    written = re.findall(r'> (/etc/apt/sources\.list\.d/\S+)', ' '.join(
        i['value'] for i in values(named['cuda10-apt'], 'RUN')))
    assert written, 'cuda10-apt writes the machine-learning repository\'s list'
    for path in written + ['/etc/apt/sources.list.d/cuda.list',  # the tensorflow image's
                           '/etc/apt/sources.list.d/cuda-ubuntu1804-x86_64.list']:  # cuda-keyring's
        assert any(fnmatch.fnmatch(path, pattern) for pattern in removed), path


# Python packages: one source of truth -------------------------------------------------------

def test_image_pins_are_requirements_txt_with_tensorflow_gpu():
    requirements = read('requirements.txt')
    expected = ir.gpu_pins(requirements)
    lock = read('docker', 'requirements-gpu.lock')
    assert ir.disagreements(expected, ir.parse_pins(lock, 'lock')) == []
    cpu = dict((ir.canonical(n), v) for n, v in ir.parse_pins(requirements))
    gpu = dict((ir.canonical(n), v) for n, v in expected)
    assert 'tensorflow' not in gpu and gpu.pop('tensorflow-gpu') == cpu.pop('tensorflow')
    assert gpu == cpu
    hashes = ir.parse_hashes(lock)
    assert set(hashes) == set(gpu) | {'tensorflow-gpu'} and all(hashes.values())
    lock = read('docker', 'requirements-bootstrap.lock')
    assert ir.parse_pins(lock, 'bootstrap') == ir.BOOTSTRAP and all(ir.parse_hashes(lock).values())


def test_every_pip_install_is_the_shared_scripts_pinned_hashed_and_uncached():
    # The main image's one RUN that installs Python packages runs docker/install-requirements.sh
    # into the ENTRYPOINT's Python, after copying the script and every file it reads.
    chain = lineage(parse('main'))
    (run,) = [i for i in values(chain, 'RUN') if re.search('pip|install-requirements', i['value'])]
    words = shlex.split(run['value'])
    at = next(n for n, w in enumerate(words) if w.endswith('/install-requirements.sh'))
    script, python, folder = words[at:at + 3]
    text = read('docker', 'install-requirements.sh')
    reads = set(re.findall(r'"\$dir/([\w.-]+)"', text))
    assert {'requirements.txt', 'image_requirements.py', 'requirements-gpu.lock'} <= reads
    assert {script} | {os.path.join(folder, r) for r in reads} <= \
        copied_to(chain[:chain.index(run)])
    assert python == exec_form(parse('main'), 'ENTRYPOINT')[0]
    # pip's index: the venv's first pip (9.0.1) defaults to the retired pypi.python.org.
    assert 'https://pypi.org/simple' in defaults(parse('main'))['PIP_INDEX_URL']
    # The script's pip commands.
    commands = re.sub(r'\\\n\s*', ' ', text)
    installs = [line for line in commands.splitlines() if 'pip install' in line]
    assert len(installs) == 2
    for line in installs:
        assert '--no-cache-dir' in line and '--require-hashes' in line, line
        assert re.search(r'-r "\$dir/requirements-(bootstrap|gpu)\.lock"', line), line
    check = commands.index('image_requirements.py" check')
    assert check < commands.index('pip install'), 'the lock must be checked before pip runs'


def test_image_requirements_refuses_drift(tmp_path):
    pins = ir.gpu_pins('keras==1.2.2\ntensorflow==1.15.5\nsix==1.16.0\n')
    assert pins == [('keras', '1.2.2'), ('tensorflow-gpu', '1.15.5'), ('six', '1.16.0')]
    lock = ('keras==1.2.2 \\\n    --hash=sha256:%s\ntensorflow-gpu==1.15.4 \\\n'
            '    --hash=sha256:%s\n' % ('a' * 64, 'b' * 64))
    problems = ir.disagreements(pins, ir.parse_pins(lock))
    assert any('1.15.4' in p for p in problems) and any('six' in p for p in problems)
    for bad in ('keras==1.2.2\n', 'tensorflow==1.15.5\ntensorflow-gpu==1.15.5\n',
                'tensorflow>=1.15\n'):
        with pytest.raises(ir.PinError):
            ir.gpu_pins(bad)
    # The command the install runs first.
    drifted = tmp_path / 'requirements.txt'
    drifted.write_text(read('requirements.txt').replace('six==1.16.0', 'six==1.15.0'))
    for requirements, code in ((os.path.join(ROOT, 'requirements.txt'), 0), (str(drifted), 1)):
        run = subprocess.run([sys.executable, os.path.join(ROOT, 'docker', 'image_requirements.py'),
                              'check', requirements, os.path.join(ROOT, 'docker',
                                                                  'requirements-gpu.lock')],
                             stderr=subprocess.PIPE, universal_newlines=True)
        assert run.returncode == code, run.stderr
    assert 'six' in run.stderr and 'lock_image_requirements' in run.stderr


def test_ngc_keeps_tensorflow_and_all_it_needs():
    # The venv's tensorflow distribution stands in for the NGC image's; the oneDNN build's venv
    # (make test TF_BUILD=mkl) has intel-tensorflow instead, and no stand-in.
    import pkg_resources
    try:
        pkg_resources.get_distribution('tensorflow')
    except pkg_resources.DistributionNotFound:
        pytest.skip('no tensorflow distribution to stand in for the NGC image\'s')
    closure, todo = set(), ['tensorflow']  # tensorflow 1.15.5's requirements (venv metadata)
    while todo:
        dist = pkg_resources.get_distribution(todo.pop())
        if ir.canonical(dist.project_name) not in closure:
            closure.add(ir.canonical(dist.project_name))
            todo += [r.project_name for r in dist.requires()]
    pinned = ir.parse_pins(read('requirements.txt'))
    needed = (closure & set(ir.canonical(n) for n, _ in pinned)) - {'h5py'}
    assert 'numpy' in needed and 'protobuf' in needed and 'gast' in needed
    assert needed <= ir.NGC_KEEPS, sorted(needed - ir.NGC_KEEPS)
    assert 'scipy' in ir.NGC_KEEPS and 'h5py' not in ir.NGC_KEEPS and 'keras' not in ir.NGC_KEEPS
    # The command the image runs: requirements.txt's pins less what the image keeps.
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'docker', 'image_requirements.py'),
                          'ngc', os.path.join(ROOT, 'requirements.txt')], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    install = ir.parse_pins(run.stdout, 'ngc')
    assert ('keras', '1.2.2') in install and set(install) <= set(pinned)
    assert 'keeping the image\'s tensorflow 1.15.5' in run.stderr  # here: the venv's


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
    assert set(install) <= set(pinned) and len(install) + len(kept) == len(pinned)
    assert ('tensorflow', '1.15.5', '1.15.5+nv23.03') in kept
    # NVIDIA's wheel under its PyPI name is kept as well; an image without TensorFlow is refused.
    image['nvidia-tensorflow'] = image.pop('tensorflow')
    install, _ = ir.ngc_pins(requirements, lambda name: image.get(ir.canonical(name)))
    assert 'tensorflow' not in [ir.canonical(n) for n, _ in install]
    del image['nvidia-tensorflow']
    with pytest.raises(ir.PinError):
        ir.ngc_pins(requirements, lambda name: image.get(ir.canonical(name)))


def test_ngc_image_installs_the_derived_pins_and_nothing_else():
    chain = lineage(parse('ngc'))
    (run,) = [i for i in values(chain, 'RUN') if 'pip' in i['value']]
    words = shlex.split(run['value'])
    # image_requirements.py ngc writes the pins that pip then installs, uncached and without
    # dependencies, which could replace NVIDIA's TensorFlow or numpy.
    derive = words.index('ngc')
    assert words[derive - 1].endswith('/image_requirements.py') and words[derive + 2] == '>'
    assert {words[derive - 1], words[derive + 1]} <= copied_to(chain[:chain.index(run)])
    install = words[words.index('pip') + 1:]
    install = install[:install.index('&&')]
    assert install[0] == 'install' and install[-2:] == ['-r', words[derive + 3]], install
    assert {'--no-deps', '--no-cache-dir'} <= set(install), install
    assert not [w for w in words if 'tensorflow' in w.lower()], words
    assert 'https://pypi.org/simple' in defaults(parse('ngc'))['PIP_INDEX_URL']


# How the container runs ---------------------------------------------------------------------

@both
def test_entrypoint_is_allconvnet_in_exec_form_with_the_code_it_imports(which):
    dfp = parse(which)
    entrypoint = exec_form(dfp, 'ENTRYPOINT')  # exec form: `docker run` arguments reach it
    assert entrypoint[1:] == ['allconvnet.py'] and os.path.basename(entrypoint[0]) == 'python'
    assert exec_form(dfp, 'CMD') == ['--gpus', 'all']
    assert values(final_stage(dfp), 'WORKDIR')[-1]['value'] == '/app'
    assert module_closure('allconvnet') <= image_files(dfp), sorted(
        module_closure('allconvnet') - image_files(dfp))
    if which == 'main':  # NVIDIA's own image sets it; older toolkits give `utility` alone,
        # and TensorFlow then finds no CUDA driver
        assert 'compute' in env_of(dfp)['NVIDIA_DRIVER_CAPABILITIES'].split(',')


@both
def test_final_user_is_not_root(which):
    dfp = parse(which)
    uid, _, gid = resolved_user(final_stage(dfp)).partition(':')
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, (uid, gid)
    # The user exists with that number and a home.
    run, made = useradd(dfp)
    words = shlex.split(next(s for s in made if s.startswith('useradd ')))
    assert expand(words[words.index('--uid') + 1], run['args']) == uid
    assert '--create-home' in words


@both
def test_a_fresh_dataset_volume_is_the_users_to_write(which, tmp_path, monkeypatch):
    # Docker fills a new named volume with the mount point's owner and mode; the dataset
    # folder must leave the build owned by the user and writable for any --user.
    dfp = parse(which)
    datadir = image_datadir(dfp, tmp_path, monkeypatch)
    run, made = useradd(dfp)
    mkdir, chown, chmod = (next(s for s in made if s.startswith(start)) for start in (
        'mkdir -p ', 'chown -R allconv:allconv ', 'chmod 1777 '))
    assert datadir in mkdir.split() and datadir in chmod.split()
    assert any((datadir + '/').startswith(p + '/') for p in chown.split()[3:]), chown
    assert made.index(mkdir) < made.index(chown) < made.index(chmod)
    # Nothing later touches the folder itself: the bake's COPY brings its contents only, into
    # the folder made above (whose owner and mode a COPY into an existing folder keeps).
    chain = lineage(dfp)
    for instr in chain[chain.index(run) + 1:]:
        words = instr['value'].split()
        if instr['instruction'] == 'COPY' and words[0].startswith('--from='):
            assert words[-2] == datadir + '/' and words[-1] == datadir + '/', words
        elif instr['instruction'] in ('RUN', 'COPY'):
            assert datadir not in instr['value'], instr['value']


@both
def test_the_logs_volume_is_where_allconvnet_writes_and_hides_not_the_reference_set(which):
    from runkit.cli import default_logdir
    dfp = parse(which)
    workdir = values(final_stage(dfp), 'WORKDIR')[-1]['value']
    volumes = exec_form(dfp, 'VOLUME')
    assert volumes == [os.path.join(workdir, default_logdir().split(os.sep)[0])]
    # The self-check's reference set, which it finds through ALLCONVNET_REFERENCE_SET
    # (tools/selfcheck.py, issue 20): where the image copies it, outside any volume.
    (dest,) = [dest for sources, dest in code_copies(dfp) if sources == [REFERENCE_SET + '/']]
    inside = os.path.normpath(os.path.join(workdir, dest))
    assert env_of(dfp)['ALLCONVNET_REFERENCE_SET'] == inside
    assert not [v for v in volumes if (inside + '/').startswith(v.rstrip('/') + '/')], volumes
    assert 'ALLCONVNET_REFERENCE_SET' in read('tools', 'selfcheck.py')


@both
def test_installs_come_before_the_code_for_the_layer_cache(which):
    # Guards a slow image: if the code were copied before the packages were installed, every
    # edit to allconvnet.py would rerun apt and pip (about 2 GB) on the next build.
    chain = lineage(parse(which))
    installs = [n for n, i in enumerate(chain) if i['instruction'] == 'RUN'
                and re.search(r'apt-get install|pip|install-requirements', i['value'])]
    code = min(n for n, i in enumerate(chain) if i['instruction'] == 'COPY'
               and 'allconvnet.py' in i['value'].split())
    assert installs and max(installs) < code


# The run lines of the docs and headers, against the images -----------------------------------

def docker_commands(text, verb):
    """Every `docker <verb> ...` command line in `text` (README and docs code blocks, a
    Dockerfile's header), its backslash continuations joined, as shlex words."""
    text = re.sub(r'\\\n[#\s]*', ' ', text)
    return [shlex.split(line.lstrip('# ').split('  #')[0]) for line in text.splitlines()
            if line.lstrip('# ').startswith('docker %s ' % verb)]


def mounts(words):
    """{container path: source} of a docker run's read-write -v options."""
    return dict(reversed(words[i + 1].split(':')[:2]) for i, w in enumerate(words)
                if w == '-v' and not words[i + 1].endswith(':ro'))


def header(which):
    return read(DOCKERFILES[which]).split('\n\n')[0]  # the comments before the first ARG


@both
def test_each_header_builds_its_own_dockerfile_and_mounts_the_volumes(which, tmp_path,
                                                                      monkeypatch):
    dfp = parse(which)
    (build,) = docker_commands(header(which), 'build')
    named = build[build.index('-f') + 1] if '-f' in build else 'Dockerfile'
    assert os.path.join(ROOT, named) == DOCKERFILES[which] and build[-1] == '.', build
    (run,) = docker_commands(header(which), 'run')
    assert '--gpus' in run and run[-1] == build[build.index('-t') + 1], run
    wanted = set(exec_form(dfp, 'VOLUME')) | {image_datadir(dfp, tmp_path, monkeypatch)}
    assert wanted <= set(mounts(run)), run
    if which == 'ngc':  # the command allconvnet.py's newer-GPU refusal gives, and the README's
        from runkit import session
        assert build == shlex.split(session.NGC_BUILD)
        assert '`%s`' % session.NGC_BUILD in read('README.md')


@both
def test_every_documented_run_line_fits_the_image(which):
    # The README's, the docs' and the headers' `docker run` lines, the self-check's among them:
    # they mount only what the image makes for mounting, and an --entrypoint of python is the
    # image's Python, whose -m module is copied with every project module it imports.
    dfp = parse(which)
    lines = [words for text in (read('README.md'), read('docs', 'docker.md'), header('main'),
                                header('ngc')) for words in docker_commands(text, 'run')]
    assert any('tools.selfcheck' in words for words in lines), lines
    image_python, files = exec_form(dfp, 'ENTRYPOINT')[0], image_files(dfp)
    for words in lines:
        assert set(mounts(words)) <= mount_points(dfp), words
        if '--entrypoint' in words:
            python = words[words.index('--entrypoint') + 1]
            first_on_path = env_of(dfp).get('PATH', '').split(':')[0]
            assert image_python in (python, os.path.join(first_on_path, python)), words
            image = next(n for n, w in enumerate(words) if w.split(':')[0] == 'allconvnet')
            assert words[image + 1] == '-m', words
            missing = module_closure(words[image + 2]) - files
            assert not missing, (words, sorted(missing))


# CIFAR-10 in the image: the bake stage and its script ----------------------------------------

def test_the_bake_stage_by_default_only_makes_the_cache_folder(tmp_path):
    # Its RUN with its default build arguments, on only what its COPY lines bring (so the runkit
    # modules they name must suffice). No URL of its own: empty is runkit.dataset's default.
    import shutil
    bake = dict(stages(parse('main')))['cifar10']
    root = str(tmp_path / 'image')
    for sources, dest in copies(bake):
        dest = os.path.join(root, dest.lstrip('/'))
        os.makedirs(dest, exist_ok=True)
        for source in (os.path.join(ROOT, s) for s in sources):
            for path in glob.glob(os.path.join(source, '*')) if os.path.isdir(source) else [source]:
                shutil.copy(path, dest)
    run = values(bake, 'RUN')[-1]
    assert run['args']['CIFAR10_URL'] == ''
    _, script, flag, context, url = [root + w if w.startswith('/') else expand(w, run['args'])
                                     for w in shlex.split(run['value'])]
    datadir = tmp_path / 'home' / '.keras' / 'datasets'
    datadir.parent.mkdir(parents=True)
    env = dict(os.environ, HOME=str(tmp_path / 'home'))
    for name in ('PYTHONPATH', 'ALLCONVNET_CIFAR10_URL', 'ALLCONVNET_CIFAR10_MD5'):
        env.pop(name, None)

    def bake_cifar10(*argv):
        return subprocess.run([sys.executable, script] + list(argv), env=env, cwd=str(tmp_path),
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    result = bake_cifar10(flag, context, url)
    assert result.returncode == 0 and os.listdir(str(datadir)) == [], result.stderr
    # Baking a local archive that is not CIFAR-10 fails the build, and leaves nothing behind.
    with open(os.path.join(context, 'cifar-10-python.tar.gz'), 'wb') as f:
        f.write(b'not the archive')
    result = bake_cifar10('1', context, 'http://invalid.invalid/x')
    assert result.returncode != 0 and 'MD5' in result.stderr, result.stderr
    assert os.listdir(str(datadir)) == []
    # As the image's user; runkit/dataset.py and what it imports, nothing else of runkit/: a
    # change elsewhere in it must not re-download the archive.
    assert resolved_user(bake) == resolved_user(final_stage(parse('main')))
    copied = [s for sources, _ in copies(bake) for s in sources if s.startswith('runkit/')]
    assert sorted(copied) == sorted(module_closure('runkit.dataset')), copied


def test_bake_script_bakes_the_cache_as_keras_reads_it(cifar_home, mirror, tmp_path, monkeypatch):
    # The synthetic archive has the real one's layout; only its MD5 differs, given the way a
    # mirror's would be.
    import shutil
    bake_cifar10 = docker_module('bake_cifar10')
    from runkit import dataset
    url, md5 = mirror
    monkeypatch.setenv(dataset.MD5_VARIABLE, md5)
    monkeypatch.delenv(dataset.URL_VARIABLE, raising=False)
    # From a local archive in the build context (docker/cifar10/), or the build argument's URL.
    context, empty = tmp_path / 'context', tmp_path / 'empty'
    context.mkdir()
    empty.mkdir()
    shutil.copyfile(os.path.join(cifar_home, '.keras', 'datasets', dataset.NAME + '.tar.gz'),
                    str(context / 'cifar-10-python.tar.gz'))
    for home, argv in (('local', [str(context), 'http://invalid.invalid/x']),
                       ('download', [str(empty), url + '/cifar-10-python.tar.gz'])):
        (tmp_path / home / '.keras').mkdir(parents=True)
        monkeypatch.setenv('HOME', str(tmp_path / home))
        assert bake_cifar10.main(['1'] + argv) == 0
        datadir = tmp_path / home / '.keras' / 'datasets'
        assert sorted(os.listdir(str(datadir))) == [dataset.NAME, dataset.NAME + '.tar.gz']
        # What a first run finds: the cache is complete, so nothing is downloaded.
        assert dataset.ensure('http://127.0.0.1:1/never-asked') == str(datadir / dataset.NAME)
        assert dataset.check_batch(str(datadir / dataset.NAME / 'test_batch')) is None
    # A failed download fails the build in one line naming the way round it.
    monkeypatch.setenv('HOME', str(tmp_path / 'other'))
    with pytest.raises(SystemExit) as e:
        bake_cifar10.main(['1', str(empty), url + '/missing.tar.gz'])
    assert 'HTTP 404' in str(e.value) and 'docker/cifar10/' in str(e.value)
    assert '\n' not in str(e.value)


# make image ---------------------------------------------------------------------------------

def build_image(tmp_path, smi=None, gpus=None):
    """docker/build_image.sh with DRY_RUN=1 on a host whose nvidia-smi prints `smi` (None: one
    too old for compute_cap, as drivers before 510) and whose libcuda.so.1 shows `gpus`
    ("name=major.minor;...", the stand-in; None: no driver); (exit code, stdout)."""
    import standin_cuda
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / 'nvidia-smi').write_text(
        '#!/bin/sh\nprintf "%s"\n' % smi if smi is not None else
        '#!/bin/sh\necho \'Field "compute_cap" is not a valid field to query.\'\nexit 2\n')
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
