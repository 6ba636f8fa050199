"""setup.sh's TensorFlow build choice, refused before anything is installed."""
import os
import subprocess

from helpers import ROOT


def test_unknown_tf_build_is_refused_in_one_line():
    proc = subprocess.run(['bash', os.path.join(ROOT, 'setup.sh')], cwd=ROOT,
                          env=dict(os.environ, TF_BUILD='fast'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "setup.sh: TF_BUILD must be stock, mkl or auto, not 'fast'\n"

