#!/usr/bin/env bash
# Rehearse the Docker image's build and first run on a machine without Docker: the Dockerfile's
# own install script, lock files and pip index, into a fresh Python 3.7 venv; then, laid out as
# the image lays out /app and the user's home, the entrypoint with --help and the first run's
# download path against a CIFAR-10 mirror on 127.0.0.1 serving a synthetic archive in the real
# format: the fetch-only command (python -m runkit.dataset), the CMD with an empty dataset
# folder (downloads, then trains one epoch), and the bake stage's step (BAKE_CIFAR10=1). Also
# docker/ngc.Dockerfile's pip step, resolved for Python 3.8 against the versions NVIDIA's
# TensorFlow keeps. It downloads about 550 MB from PyPI (tensorflow-gpu is 411 MB).
# tensorflow-gpu imports without CUDA and finds no GPU here, so what runs is the image's CPU
# path.
#
#   docker/rehearse_image.sh            (KEEP=1 keeps the work folder; PYTHON37=... picks Python)
#
# What it cannot rehearse: the base image, apt, Ubuntu's python3.7 and its pip 9 bootstrap,
# the user and file permissions, and anything on a GPU (docs/docker.md, "What was verified").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
start=$(date +%s)
step() { printf '\n[rehearse +%ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
expect() { "$@" || { echo "rehearse_image.sh: this check failed: $*" >&2; exit 1; }; }

py37=""
for c in "${PYTHON37:-}" python3.7 "$HOME"/.pyenv/versions/3.7*/bin/python3.7; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 &&
        "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 7))' 2>/dev/null &&
        { py37="$(command -v "$c")"; break; }
done
[ -n "$py37" ] || { echo "rehearse_image.sh: no Python 3.7 found (set PYTHON37)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/allconvnet-rehearsal.XXXXXX")"
server_pid=""
cleanup() {
    # The mirror must not outlive the rehearsal, however it ends.
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "rehearse_image.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The image's paths, under $work: /opt/venv, /tmp/install, /tmp/bake, /app, /home/allconv.
venv="$work/opt/venv" install="$work/tmp/install" bake="$work/tmp/bake" app="$work/app"
home="$work/home/allconv"

step "reading the Dockerfile: what it copies for the install and the bake, and its pip index"
# Taken from the Dockerfile itself, so that the rehearsal follows it when it changes.
eval "$("$py37" - "$repo/Dockerfile" <<'EOF'
import re, shlex, sys
text = re.sub(r'\\\n', ' ', open(sys.argv[1]).read())
copies = [l.split()[1:] for l in text.splitlines() if l.startswith('COPY ') and l.rstrip().endswith(' /tmp/install/')]
index = re.search(r'^ARG PIP_INDEX_URL=(\S+)', text, re.M)
assert len(copies) == 1 and index, 'Dockerfile: no single COPY ... /tmp/install/ or no ARG PIP_INDEX_URL'
print('install_files=(%s)' % ' '.join(shlex.quote(s) for s in copies[0][:-1]))
print('index_url=%s' % shlex.quote(index.group(1)))
# The bake stage's COPY lines into /tmp/bake/, as "source:destination" pairs.
bake = ['%s:%s' % (src, l.split()[-1]) for l in text.splitlines()
        if l.startswith('COPY ') and l.split()[-1].startswith('/tmp/bake/')
        for src in l.split()[1:-1]]
assert bake and re.search(r'^RUN python /tmp/bake/bake_cifar10\.py ', text, re.M), \
    'Dockerfile: no COPY ... /tmp/bake/ or no RUN python /tmp/bake/bake_cifar10.py'
print('bake_files=(%s)' % ' '.join(shlex.quote(p) for p in bake))
# The code the final stage copies into WORKDIR /app, as "source:destination" pairs.
tail = text[text.rindex('WORKDIR /app'):]
pairs = []
for l in tail.splitlines():
    words = l.split()
    if words[:1] == ['COPY'] and not any(w.startswith('--from') for w in words):
        pairs += ['%s:%s' % (src, words[-1]) for src in words[1:-1] if not src.startswith('--')]
print('app_files=(%s)' % ' '.join(shlex.quote(p) for p in pairs))
EOF
)"
echo "COPY ${install_files[*]} -> /tmp/install/; PIP_INDEX_URL=$index_url"
mkdir -p "$install" "$app/logs" "$home/.keras/datasets" "$home/.nv/ComputeCache"
for f in "${install_files[@]}"; do cp "$repo/$f" "$install/"; done
# Docker copies a directory's contents, and a file into a destination ending in /.
copy_into() {
    local src="$1" dest="$2"
    case "$dest" in */) mkdir -p "$dest" ;; esac
    if [ -d "$repo/$src" ]; then cp -r "$repo/${src%/}/." "$dest"; else cp "$repo/$src" "$dest"; fi
}

step "python3.7 -m venv /opt/venv  ($("$py37" --version 2>&1), $py37)"
"$py37" -m venv "$venv"

step "install-requirements.sh, as the Dockerfile runs it"
# As in the image build: PyPI only. This machine's pip settings (local wheel folders, extra
# indexes) are dropped; a TLS-inspecting proxy's CA (PIP_CERT) is kept.
pip_cert="${PIP_CERT:-}"
for v in $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export PIP_CONFIG_FILE=/dev/null PIP_INDEX_URL="$index_url"
[ -z "$pip_cert" ] || export PIP_CERT="$pip_cert"
sh "$install/install-requirements.sh" "$venv/bin/python" "$install"
"$venv/bin/python" -m pip list --disable-pip-version-check --format=freeze | grep -i '^tensorflow'

step "docker/ngc.Dockerfile's pip step, resolved for Python 3.8 against NVIDIA's kept versions"
# No TF 1.15 wheel exists for Python 3.8 outside NVIDIA's image, so that image cannot be
# rehearsed; what can: the list its pip step installs (image_requirements.py ngc, with every
# package of NGC_KEEPS present but scipy, so that its fallback pin is checked too) resolves on
# cp38 manylinux, dependencies included, together with what NVIDIA's TensorFlow requires (its
# setup.py at tag v1.15.5+nv23.03). The sdist-only pins (Keras, Theano) are built into
# pure-Python wheels first, so that their own requirements take part.
ngc="$work/ngc"
mkdir -p "$ngc/sdists" "$ngc/wheels" "$ngc/resolved"
"$venv/bin/python" - "$repo/docker/image_requirements.py" "$repo/requirements.txt" \
    >"$ngc/install.txt" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location('image_requirements', sys.argv[1])
ir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ir)
present = ir.NGC_KEEPS - {'scipy'}
install, kept = ir.ngc_pins(open(sys.argv[2]).read(),
                            lambda name: 'nvidia' if ir.canonical(name) in present else None)
for name, version in install:
    print('%s==%s' % (name, version))
EOF
printf '%s\n' 'numpy>=1.22,<1.24' 'h5py==2.10.0' 'protobuf<4' 'gast==0.3.3' \
    >"$ngc/nvidia-keeps.txt"
echo "installs: $(paste -sd' ' "$ngc/install.txt")"
echo "NVIDIA's TensorFlow keeps: $(paste -sd' ' "$ngc/nvidia-keeps.txt")"
cp38=(--python-version 3.8 --implementation cp --abi cp38 --platform manylinux2014_x86_64)
pip_quiet=("$venv/bin/python" -m pip --disable-pip-version-check -q)
while read -r pin; do
    if ! "${pip_quiet[@]}" download --no-deps --only-binary=:all: "${cp38[@]}" \
            -d "$ngc/resolved" "$pin" >/dev/null 2>&1; then
        "${pip_quiet[@]}" download --no-deps --no-binary=:all: -d "$ngc/sdists" "$pin"
    fi
done <"$ngc/install.txt"
for sdist in "$ngc"/sdists/*; do
    [ -e "$sdist" ] || continue
    # PEP 517 in isolation: the build needs setuptools and wheel, whatever the venv holds.
    "${pip_quiet[@]}" wheel --no-deps --use-pep517 -w "$ngc/wheels" "$sdist"
done
echo "built from sdists: $(ls "$ngc/wheels" | paste -sd' ' -)"
expect [ -z "$(ls "$ngc/wheels" | grep -v -- '-py3-none-any\.whl$' || true)" ]
if ! "$venv/bin/python" -m pip --disable-pip-version-check download --only-binary=:all: \
        "${cp38[@]}" --find-links "$ngc/wheels" -d "$ngc/resolved" \
        -r "$ngc/install.txt" -r "$ngc/nvidia-keeps.txt" >"$ngc/resolve.out" 2>&1; then
    tail -20 "$ngc/resolve.out" >&2
    echo "rehearse_image.sh: the NGC image's pins do not resolve on Python 3.8 with NVIDIA's" \
        "kept versions" >&2
    exit 1
fi
# name-version of every file resolved, names as pip compares them (PEP 503).
canonical() { awk '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "-" $2 }'; }
resolved="$(ls "$ngc/resolved" | sed -E 's/^([^-]+)-([^-]+)-.*/\1 \2/' | canonical | sort -u)"
echo "resolved: $(paste -sd' ' - <<<"$resolved")"
# Every pin resolved to itself, and numpy inside NVIDIA's range.
while read -r pin; do
    expect grep -qx -- "$(sed 's/==/ /' <<<"$pin" | canonical)" <<<"$resolved"
done <"$ngc/install.txt"
expect grep -qE '^numpy-1\.2[23]\.' <<<"$resolved"

step "the image's /app, as the Dockerfile's COPY lines fill it: ${app_files[*]}"
for pair in "${app_files[@]}"; do copy_into "${pair%%:*}" "$app/${pair#*:}"; done
step "the bake stage's /tmp/bake, as its COPY lines fill it: ${bake_files[*]}"
for pair in "${bake_files[@]}"; do copy_into "${pair%%:*}" "$work${pair#*:}"; done
find "$app" "$bake" -name __pycache__ -prune -exec rm -rf {} +

# The image's run-time environment (ENV in the Dockerfile), with its paths under $work.
export HOME="$home" CUDA_CACHE_PATH="$home/.nv/ComputeCache" CUDA_CACHE_MAXSIZE=4294967296 \
       PYTHONUNBUFFERED=1 PATH="$venv/bin:$PATH"
cd "$app"

step "ENTRYPOINT --help"
"$venv/bin/python" allconvnet.py --help >"$work/help.out"
head -3 "$work/help.out"

step "a CIFAR-10 mirror on 127.0.0.1: tests/synthetic_cifar.py's archive, in the real format"
"$venv/bin/python" "$repo/tests/synthetic_cifar.py" "$work/synthetic" >/dev/null
mkdir -p "$work/mirror"
mv "$work/synthetic/.keras/datasets/cifar-10-batches-py.tar.gz" \
    "$work/mirror/cifar-10-python.tar.gz"
rm -rf "$work/synthetic"
md5="$(md5sum "$work/mirror/cifar-10-python.tar.gz" | cut -d' ' -f1)"
# The log exists before the server starts, so that reading it never races the server's start.
: >"$work/mirror.log"
"$py37" -u -m http.server --bind 127.0.0.1 --directory "$work/mirror" 0 >>"$work/mirror.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$work/mirror.log")"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] ||
    { cat "$work/mirror.log" >&2; echo "rehearse_image.sh: the mirror did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/cifar-10-python.tar.gz"
# What a user sets for a mirror; no proxy may stand between this script and its own server.
export ALLCONVNET_CIFAR10_URL="$url" ALLCONVNET_CIFAR10_MD5="$md5"
export no_proxy="127.0.0.1${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1${NO_PROXY:+,$NO_PROXY}"
downloads() { grep -c '"GET /cifar-10-python.tar.gz HTTP/1.[01]" 200' "$work/mirror.log" || true; }
cache_is_complete() {
    [ "$(ls "$1/.keras/datasets" | tr '\n' ' ')" = "cifar-10-batches-py cifar-10-batches-py.tar.gz " ]
}
echo "$url (MD5 $md5, $(du -h "$work/mirror/cifar-10-python.tar.gz" | cut -f1))"

step "fetch only: python -m runkit.dataset into an empty volume (a wrong MD5 first: exit 2)"
volume="$work/volume-home"
mkdir -p "$volume/.keras/datasets"
set +e
HOME="$volume" ALLCONVNET_CIFAR10_MD5=0123456789abcdef0123456789abcdef \
    "$venv/bin/python" -m runkit.dataset >/dev/null 2>"$work/fetch.err"
code=$?
set -e
tail -1 "$work/fetch.err"
# Keras and TensorFlow log to stderr on import; the error itself is one line, the last.
expect [ "$code" = 2 ]
expect [ "$(grep -c '^python -m runkit.dataset: error: ' "$work/fetch.err")" = 1 ]
expect grep -q "^python -m runkit.dataset: error: download of $url has MD5 " <(tail -1 "$work/fetch.err")
expect [ -z "$(grep Traceback "$work/fetch.err")" ]
expect [ -z "$(ls -A "$volume/.keras/datasets")" ]
quietly() {
    "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    tail -1 "$work/out"
}
HOME="$volume" quietly "$venv/bin/python" -m runkit.dataset
expect cache_is_complete "$volume"
expect [ "$(downloads)" = 2 ]

step "the CMD (--gpus all) with an empty ~/.keras/datasets: downloads, then one epoch on 64 images"
if ! "$venv/bin/python" allconvnet.py --gpus all --epochs 1 --train-limit 64 --test-limit 32 \
        --quiet 2>"$work/run.err" | tee "$work/run.out"; then
    tail -20 "$work/run.err" >&2
    echo "rehearse_image.sh: the first run failed" >&2
    exit 1
fi
expect grep -q "Downloading CIFAR-10 from $url" "$work/run.out"
expect grep -q 'Training on the CPU, no make_parallel (0 GPUs visible)' "$work/run.out"
expect cache_is_complete "$home"
expect [ "$(downloads)" = 3 ]
run_dir="$(ls -d "$app"/logs/*/)"
"$venv/bin/python" - "$run_dir" <<'EOF'
import json, os, sys
run = json.load(open(os.path.join(sys.argv[1], 'run.json')))
assert run['status'] == 'finished', run['status']
assert run['versions']['tensorflow'] == '1.15.5', run['versions']
for name in ('history.csv', 'model.h5', 'weights.best.hdf5'):
    assert os.path.isfile(os.path.join(sys.argv[1], name)), name
print('run.json: finished, towers=%s, versions=%s' % (run['towers'], run['versions']))
EOF
echo "logs landed in app/logs/$(basename "$run_dir") (the image's /app/logs volume)"

step "--gpus 2 with no GPU visible: must refuse (exit 2), and download nothing again"
set +e
"$venv/bin/python" allconvnet.py --gpus 2 --epochs 1 --quiet --logdir "$work/refused" \
    2>"$work/refuse.err"
code=$?
set -e
grep 'allconvnet.py: error' "$work/refuse.err"
expect [ "$code" = 2 ]
expect [ "$(downloads)" = 3 ]

step "the bake stage's RUN (BAKE_CIFAR10=1, CIFAR10_URL=the mirror)"
mkdir -p "$work/bake-home/.keras"
HOME="$work/bake-home" quietly "$venv/bin/python" "$bake/bake_cifar10.py" 1 "$bake/context" "$url"
expect cache_is_complete "$work/bake-home"
expect [ "$(downloads)" = 4 ]

step "rehearsal passed"
