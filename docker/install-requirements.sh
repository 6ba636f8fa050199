#!/bin/sh
# Install the image's Python packages into a venv. The Dockerfile runs this file, and so does
# docker/rehearse_image.sh on a development machine, so that the rehearsal runs the build's own
# pip commands rather than a copy of them.
#
#   install-requirements.sh VENV_PYTHON DIR
#
# DIR holds requirements.txt, image_requirements.py and the two locks. Every pin comes from
# requirements.txt: the lock must list exactly its pins (tensorflow read as tensorflow-gpu),
# or the install stops before pip runs. pip's index is its default or PIP_INDEX_URL (a
# registry mirror works: --require-hashes still insists on PyPI's bytes).
set -eu
py="$1"
dir="$2"

"$py" "$dir/image_requirements.py" check "$dir/requirements.txt" "$dir/requirements-gpu.lock"

# No cache: nothing of pip's download cache should end up in an image layer.
# Step 1: the pip that reads manylinux2010 wheels (Ubuntu 18.04's venv brings pip 9.0.1).
"$py" -m pip install --no-cache-dir --disable-pip-version-check --require-hashes \
    -r "$dir/requirements-bootstrap.lock"
# Step 2: the runtime pins. Keras 1.2.2, Theano 1.0.5 and gast 0.2.2 are sdists without a
# pyproject.toml, so pip builds them with the setuptools pinned above and fetches no
# unhashed build dependencies.
"$py" -m pip install --no-cache-dir --disable-pip-version-check --require-hashes \
    -r "$dir/requirements-gpu.lock"
"$py" -m pip check
