#!/usr/bin/env bash
# setup.sh: find Python 3.7, create .venv, install the pinned requirements. Safe to rerun.
#   ./setup.sh                         runtime pins (requirements.txt)
#   ./setup.sh requirements-test.txt   runtime + test pins
#   TF_BUILD=stock|mkl|auto ./setup.sh which TensorFlow 1.15 build (default auto)
#   VENV=.venv-test-stock ./setup.sh   another folder than .venv (make test keeps one per build)
#
# TF_BUILD: `stock` is requirements.txt as written (tensorflow==1.15.5); `mkl` swaps that one
# line for Intel's oneDNN build of the same TensorFlow, intel-tensorflow==1.15.2, and keeps
# every other pin; `auto` takes mkl where the CPU has AVX-512, where it measured about 30%
# faster, and stock elsewhere, where it was not (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")"
req="${1:-requirements.txt}"
venv="${VENV:-.venv}"
STOCK_PIN='tensorflow==1.15.5'
MKL_PIN='intel-tensorflow==1.15.2'

build="${TF_BUILD:-auto}"
if [ "$build" = auto ]; then
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then build=mkl; else build=stock; fi
fi
case "$build" in
    stock|mkl) ;;
    *) echo "setup.sh: TF_BUILD must be stock, mkl or auto, not '$build'" >&2; exit 2 ;;
esac
grep -qx "$STOCK_PIN" requirements.txt ||
    { echo "setup.sh: requirements.txt no longer pins $STOCK_PIN; update setup.sh" >&2; exit 1; }

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

if [ ! -x "$venv/bin/python" ]; then
    if ! py=$(find_python37); then
        echo "setup.sh: no Python 3.7 found (looked at \$PYTHON37, on PATH and in ~/.pyenv/versions/3.7*); name one with PYTHON37=/path/to/python3.7 (e.g. PYTHON37=/usr/bin/python3.7 make test), install it (pyenv install 3.7.16) or use the Docker image (README)" >&2
        exit 1
    fi
    echo "setup.sh: creating $venv with $py"
    "$py" -m venv "$venv"
fi

# Reinstall only when the requirement files or the build change.
stamp="$venv/.installed-$(cat requirements*.txt "$req" | sha256sum | cut -c1-16)-$(basename "$req")-$build"
if [ ! -f "$stamp" ]; then
    pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
    # requirements.txt with the build's TensorFlow line, and the file asked for reading it.
    sed "s/^$STOCK_PIN\$/$( [ "$build" = mkl ] && echo "$MKL_PIN" || echo "$STOCK_PIN" )/" \
        requirements.txt > "$venv/requirements.txt"
    if [ "$req" = requirements.txt ]; then
        cp "$venv/requirements.txt" "$venv/requested.txt"
    else
        sed "s#^-r requirements.txt\$#-r $PWD/$venv/requirements.txt#" "$req" > "$venv/requested.txt"
    fi
    # Both builds install the same `tensorflow` package directory: take the other one out first.
    other=$( [ "$build" = mkl ] && echo tensorflow || echo intel-tensorflow )
    if "$venv/bin/python" -m pip show -q "$other" >/dev/null 2>&1; then
        echo "setup.sh: replacing $other with the $build build"
        "${pip[@]}" uninstall -y "$other"
    fi
    "${pip[@]}" install -r "$venv/requested.txt"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
echo "setup.sh: $venv ready ($("$venv/bin/python" --version 2>&1), $req, TF_BUILD=$build)"
