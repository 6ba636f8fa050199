"""Where a run ran: the git commit, the package versions and the machine, for run.json and
tools/bench.py's records."""
import os
import platform
import subprocess

import numpy as np
import pandas


def git_commit():
    """HEAD (with -dirty for local changes), or $ALLCONVNET_GIT_COMMIT where there is no git
    (the Docker image sets it from its VCS_REF build argument)."""
    if os.environ.get('ALLCONVNET_GIT_COMMIT'):
        return os.environ['ALLCONVNET_GIT_COMMIT']
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.check_output(['git', 'rev-parse', 'HEAD'], cwd=here,
                                      stderr=subprocess.DEVNULL)
        dirty = subprocess.check_output(['git', 'status', '--porcelain', '--untracked-files=no'],
                                        cwd=here, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode().strip() + ('-dirty' if dirty.strip() else '')


def versions():
    import h5py
    import keras
    import tensorflow as tf
    return {'python': platform.python_version(), 'tensorflow': tf.__version__,
            'keras': keras.__version__, 'numpy': np.__version__,
            'pandas': pandas.__version__, 'h5py': h5py.__version__}


def cpuinfo(path='/proc/cpuinfo'):
    """The first processor's fields in /proc/cpuinfo; {} where there is none."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def machine(details=False):
    """The CPU's model name, the cores this process may use and the platform; with `details`,
    also the CPU's MHz and instruction-set flags, which a peak FLOP/s needs and run.json not."""
    fields = cpuinfo()
    # The affinity mask, not the machine's count: TensorFlow sizes its thread pools from it.
    cores = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else range(os.cpu_count())
    info = {'cpu': fields.get('model name', platform.processor()), 'cores': len(cores),
            'platform': platform.platform()}
    if details:
        info['mhz'] = float(fields['cpu MHz']) if 'cpu MHz' in fields else None
        info['flags'] = fields.get('flags', '').split()
    return info
