#!/usr/bin/env bash
# setup.sh: find Python 3.7, create .venv, install the pinned requirements. Safe to rerun.
#   ./setup.sh                      runtime pins (requirements.txt)
#   ./setup.sh requirements-test.txt   runtime + test pins
set -euo pipefail
cd "$(dirname "$0")"
req="${1:-requirements.txt}"

# TensorFlow 1.15 ships wheels for Python 3.5-3.7 only; 3.7 is the newest it supports.
find_python37() {
    local c
    for c in "${PYTHON37:-}" python3.7 "$HOME"/.pyenv/versions/3.7*/bin/python3.7; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 &&
           "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 7))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    if ! py=$(find_python37); then
        echo "setup.sh: no Python 3.7 found (looked on PATH and in ~/.pyenv/versions/3.7*); install it (e.g. pyenv install 3.7.16) or use the Docker image (README, Docker)" >&2
        exit 1
    fi
    echo "setup.sh: creating .venv with $py"
    "$py" -m venv .venv
fi

# Reinstall only when the requirement files change.
stamp=".venv/.installed-$(cat requirements*.txt "$req" | sha256sum | cut -c1-16)-$(basename "$req")"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -r "$req"
    touch "$stamp"
fi
echo "setup.sh: .venv ready ($(.venv/bin/python --version 2>&1), $req)"
