"""The images' Python pins: requirements.txt with tensorflow swapped for tensorflow-gpu, the hash
locks checked against them, and the subset that NVIDIA's TF1 image (docker/ngc.Dockerfile) adds.

requirements.txt stays the one place where a version is chosen. The image cannot install it as
it is (the `tensorflow` wheel is CPU-only from 1.15.2 on; the GPU kernels are in
`tensorflow-gpu` at the same version), so this module derives the image's list from it, and
refuses a hash lock (docker/requirements-gpu.lock) whose pins are not exactly that list. Its
callers share it, so that they cannot disagree: docker/install-requirements.sh at build time
(and in the rehearsal), docker/ngc.Dockerfile, docker/lock_image_requirements.py when it writes
the locks, and tests/test_dockerfile.py.

Standard library only, Python 3.5+: the image runs it with a bare venv, before pip installs
anything.

    python docker/image_requirements.py derive requirements.txt
    python docker/image_requirements.py check requirements.txt docker/requirements-gpu.lock
    python docker/image_requirements.py ngc requirements.txt      (inside NVIDIA's image)
"""
import re
import sys

# Installed into the venv before the requirements, from docker/requirements-bootstrap.lock.
# Ubuntu 18.04's venv comes with pip 9.0.1, which predates manylinux2010 (pip >= 19.0) and so
# cannot install tensorflow-gpu 1.15.5. These are the versions that Python 3.7.16's ensurepip
# gives setup.sh's .venv, the environment requirements.txt was resolved in.
BOOTSTRAP = [('pip', '22.0.4'), ('setuptools', '47.1.0')]

CPU_PACKAGE = 'tensorflow'
GPU_PACKAGE = 'tensorflow-gpu'

# NVIDIA's TF1 image brings TensorFlow 1.15.5 built against its own numpy (1.22.2 in public
# build notes for nv23.03; requirements.txt pins 1.18.5, which that build cannot load) and its
# own versions of TensorFlow's other requirements (NVIDIA's setup.py asks for gast 0.3.3, not
# 0.2.2). docker/ngc.Dockerfile keeps all of them as NVIDIA installed them: these are
# tensorflow 1.15.5's requirements, closed over (tests/test_dockerfile.py checks them against the
# venv's metadata), and scipy, built against that numpy too. h5py, which TensorFlow's
# keras-applications names, is not kept: Keras 1.2.2 needs requirements.txt's h5py < 3.
NGC_KEEPS = frozenset([
    'tensorflow', 'tensorflow-estimator', 'tensorboard', 'numpy', 'scipy', 'protobuf',
    'absl-py', 'astor', 'gast', 'google-pasta', 'grpcio', 'keras-applications',
    'keras-preprocessing', 'opt-einsum', 'six', 'termcolor', 'wheel', 'wrapt', 'markdown',
    'markupsafe', 'werkzeug', 'importlib-metadata', 'zipp', 'typing-extensions', 'setuptools'])
# What NVIDIA's TensorFlow may be called in its image.
NGC_TENSORFLOW = ('tensorflow', 'nvidia-tensorflow')

_PIN = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$')


class PinError(ValueError):
    """requirements.txt or a lock is not in the form this module vouches for."""


def canonical(name):
    """PEP 503 normalised name: the form pip compares names in."""
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_pins(text, source='requirements.txt'):
    """[(name, version)] of `name==version` lines; anything else but comments is refused.

    A lock's `\\`-continued `--hash=` lines are folded into their requirement first.
    """
    pins = []
    for number, line in _logical_lines(text):
        requirement = line.split(' --hash=')[0].strip()
        match = _PIN.match(requirement)
        if not match:
            raise PinError('%s line %d: %r is not a plain name==version pin' % (
                source, number, requirement))
        pins.append((match.group(1), match.group(2)))
    names = [canonical(n) for n, _ in pins]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise PinError('%s pins %s more than once' % (source, ', '.join(duplicates)))
    return pins


def parse_hashes(text, source='lock'):
    """{canonical name: [sha256 hex, ...]} of a lock."""
    hashes = {}
    for number, line in _logical_lines(text):
        name = canonical(line.split('==')[0].strip())
        found = re.findall(r'--hash=sha256:([0-9a-f]{64})\b', line)
        if not found:
            raise PinError('%s line %d: %s has no --hash=sha256:' % (source, number, name))
        hashes[name] = found
    return hashes


def _logical_lines(text):
    """(first line number, text) of each requirement; comments, blanks and `\\` joins undone."""
    parts, start = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r'(^|\s)#.*$', '', raw).rstrip()  # pip's comment rule
        start = number if start is None else start
        continued = line.endswith('\\')
        parts.append(line[:-1] if continued else line)
        if continued:
            continue
        joined = ' '.join(' '.join(parts).split())
        if joined:
            yield start, joined
        parts, start = [], None


def gpu_pins(requirements_text):
    """requirements.txt's pins, in its order, with tensorflow==V replaced by tensorflow-gpu==V."""
    pins = parse_pins(requirements_text)
    swapped = [(GPU_PACKAGE, version) if canonical(name) == CPU_PACKAGE else (name, version)
               for name, version in pins]
    if sum(1 for name, _ in pins if canonical(name) == CPU_PACKAGE) != 1:
        raise PinError('requirements.txt must pin %s exactly once' % CPU_PACKAGE)
    if any(canonical(name) == GPU_PACKAGE for name, _ in pins):
        raise PinError('requirements.txt pins %s itself; the image derives it from %s'
                       % (GPU_PACKAGE, CPU_PACKAGE))
    return swapped


def ngc_pins(requirements_text, installed):
    """(pins to install, [(name, pinned, installed version)] kept) for NVIDIA's TF1 image.

    requirements.txt's pins, less those of NGC_KEEPS that the image has (`installed(name)` is
    its version or None). One it lacks is installed at requirements.txt's pin; TensorFlow
    itself never is.
    """
    install, kept = [], []
    for name, version in parse_pins(requirements_text):
        key = canonical(name)
        if key in NGC_KEEPS:
            names = NGC_TENSORFLOW if key == CPU_PACKAGE else (name,)
            have = next((v for v in map(installed, names) if v), None)
            if have:
                kept.append((name, version, have))
                continue
            if key == CPU_PACKAGE:
                raise PinError('the base image has no TensorFlow: docker/ngc.Dockerfile expects '
                               'NVIDIA\'s TF1 image (nvcr.io/nvidia/tensorflow:*-tf1-py3)')
        install.append((name, version))
    return install, kept


def installed_version(name):
    """The installed version of distribution `name`, or None."""
    try:
        from importlib import metadata  # Python 3.8+, as in NVIDIA's image
    except ImportError:
        import importlib_metadata as metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def disagreements(expected, lock_pins):
    """Human-readable differences between two pin lists (order included); [] if equal."""
    want = [(canonical(n), v) for n, v in expected]
    have = [(canonical(n), v) for n, v in lock_pins]
    problems = []
    want_d, have_d = dict(want), dict(have)
    for name, version in want:
        if name not in have_d:
            problems.append('%s==%s is missing from the lock' % (name, version))
        elif have_d[name] != version:
            problems.append('%s: requirements.txt says %s, the lock says %s'
                            % (name, version, have_d[name]))
    for name, version in have:
        if name not in want_d:
            problems.append('%s==%s is in the lock but not in requirements.txt'
                            % (name, version))
    if not problems and [n for n, _ in want] != [n for n, _ in have]:
        problems.append('the lock lists the packages in another order than requirements.txt')
    return problems


def main(argv):
    if len(argv) == 2 and argv[0] == 'derive':
        with open(argv[1]) as f:
            for name, version in gpu_pins(f.read()):
                print('%s==%s' % (name, version))
        return 0
    if len(argv) == 3 and argv[0] == 'check':
        with open(argv[1]) as f:
            expected = gpu_pins(f.read())
        with open(argv[2]) as f:
            lock_text = f.read()
        lock = parse_pins(lock_text, argv[2])
        parse_hashes(lock_text, argv[2])
        problems = disagreements(expected, lock)
        if problems:
            sys.stderr.write('%s does not match %s (with %s swapped for %s):\n  %s\n'
                             'Regenerate it: make lock-image (docker/lock_image_requirements.py)\n'
                             % (argv[2], argv[1], CPU_PACKAGE, GPU_PACKAGE,
                                '\n  '.join(problems)))
            return 1
        print('%s: %d pins, all from %s' % (argv[2], len(lock), argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == 'ngc':
        with open(argv[1]) as f:
            install, kept = ngc_pins(f.read(), installed_version)
        for name, pinned, have in kept:
            sys.stderr.write('ngc: keeping the image\'s %s %s (requirements.txt: %s)\n'
                             % (name, have, pinned))
        for name, version in install:
            print('%s==%s' % (name, version))
        return 0
    sys.stderr.write(__doc__.split('\n\n')[-1])
    return 2


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except PinError as e:
        sys.stderr.write('image_requirements.py: %s\n' % e)
        sys.exit(1)
