#!/usr/bin/env bash
# Rehearse the Docker image's build and first run on a machine without Docker: the Dockerfile's
# own install script, lock files and pip index, into a fresh Python 3.7 venv, then the image's
# entrypoint with --help, and a one-epoch run on synthetic data laid out as the image lays out
# /app and the user's home. It downloads about 450 MB from PyPI (tensorflow-gpu is 411 MB) and
# takes 2-4 minutes on 2 cores. tensorflow-gpu imports without CUDA and finds no GPU here, so
# what runs is the image's CPU path.
#
#   tools/rehearse_image.sh            (KEEP=1 keeps the work folder; PYTHON37=... picks Python)
#
# What it cannot rehearse: the base image, apt, Ubuntu's python3.7 and its pip 9 bootstrap,
# the user and file permissions, and anything on a GPU (docs/docker.md, "What was verified").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
start=$(date +%s)
step() { printf '\n[rehearse +%ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

py37=""
for c in "${PYTHON37:-}" python3.7 "$HOME"/.pyenv/versions/3.7*/bin/python3.7; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 &&
        "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 7))' 2>/dev/null &&
        { py37="$(command -v "$c")"; break; }
done
[ -n "$py37" ] || { echo "rehearse_image.sh: no Python 3.7 found (set PYTHON37)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/allconvnet-rehearsal.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    echo "rehearse_image.sh: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
# The image's paths, under $work: /opt/venv, /tmp/install, /app, /home/allconv.
venv="$work/opt/venv" install="$work/tmp/install" app="$work/app" home="$work/home/allconv"

step "reading the Dockerfile: what it copies for the install, and its pip index"
# Taken from the Dockerfile itself, so that the rehearsal follows it when it changes.
eval "$("$py37" - "$repo/Dockerfile" <<'EOF'
import re, shlex, sys
text = re.sub(r'\\\n', ' ', open(sys.argv[1]).read())
copies = [l.split()[1:] for l in text.splitlines() if l.startswith('COPY ') and l.rstrip().endswith(' /tmp/install/')]
index = re.search(r'^ARG PIP_INDEX_URL=(\S+)', text, re.M)
assert len(copies) == 1 and index, 'Dockerfile: no single COPY ... /tmp/install/ or no ARG PIP_INDEX_URL'
print('install_files=(%s)' % ' '.join(shlex.quote(s) for s in copies[0][:-1]))
print('index_url=%s' % shlex.quote(index.group(1)))
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

step "the image's /app, as the Dockerfile's COPY lines fill it: ${app_files[*]}"
for pair in "${app_files[@]}"; do
    src="${pair%%:*}" dest="$app/${pair#*:}"
    # Docker copies a directory's contents, and a file into a destination ending in /.
    case "$dest" in */) mkdir -p "$dest" ;; esac
    if [ -d "$repo/$src" ]; then cp -r "$repo/${src%/}/." "$dest"; else cp "$repo/$src" "$dest"; fi
done
find "$app" -name __pycache__ -prune -exec rm -rf {} +

# The image's run-time environment (ENV in the Dockerfile), with its paths under $work.
export HOME="$home" CUDA_CACHE_PATH="$home/.nv/ComputeCache" CUDA_CACHE_MAXSIZE=4294967296 \
       PYTHONUNBUFFERED=1 PATH="$venv/bin:$PATH"
cd "$app"

step "ENTRYPOINT --help"
"$venv/bin/python" allconvnet.py --help >"$work/help.out"
head -3 "$work/help.out"

step "synthetic CIFAR-10 cache in ~/.keras/datasets (tests/synthetic_cifar.py)"
"$venv/bin/python" "$repo/tests/synthetic_cifar.py" "$home"

step "--gpus 2 with no GPU visible: must refuse (exit 2)"
set +e
"$venv/bin/python" allconvnet.py --gpus 2 --epochs 1 --quiet --logdir "$work/refused" \
    2>"$work/refuse.err"
code=$?
set -e
grep 'allconvnet.py: error' "$work/refuse.err"
[ "$code" = 2 ] || { echo "rehearse_image.sh: expected exit 2, got $code" >&2; exit 1; }

step "the CMD (--gpus all), one epoch on 64 images, default --logdir (logs/<UTC timestamp>)"
"$venv/bin/python" allconvnet.py --gpus all --epochs 1 --train-limit 64 --test-limit 32 --quiet \
    2>"$work/run.err" | tee "$work/run.out"
grep -q 'Training on the CPU, no make_parallel (0 GPUs visible)' "$work/run.out"
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

step "rehearsal passed"
