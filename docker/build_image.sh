#!/usr/bin/env bash
# `make image`: build the image whose TensorFlow has kernels for this host's GPUs, and say which
# Dockerfile it chose and why. The official tensorflow-gpu 1.15.5 of the Dockerfile stops at
# compute capability 7.0 and allconvnet.py refuses 8.0 and newer there, so any GPU of 8.0 or
# more picks docker/ngc.Dockerfile (NVIDIA's TF1 build); older GPUs, or none seen, the
# Dockerfile (docs/docker.md, "GPUs: what to expect").
#
#   docker/build_image.sh [docker build arguments...]   (DRY_RUN=1 prints only; IMAGE=tag)
set -euo pipefail
cd "$(dirname "$0")/.."

# "major.minor" lines, one per GPU, and where they came from.
caps="" source=""
if command -v nvidia-smi >/dev/null 2>&1; then
    # compute_cap needs driver 510 or newer; an older one answers with an error instead.
    if out="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null)" &&
       [ -n "$out" ] && ! printf '%s\n' "$out" | grep -qvE '^ *[0-9]+\.[0-9]+ *$'; then
        caps="$(printf '%s\n' "$out" | tr -d ' ')" source="nvidia-smi"
    fi
fi
if [ -z "$caps" ] && command -v python3 >/dev/null 2>&1; then
    # The driver's own answer, as runkit/session.py reads it (cuInit makes no context).
    caps="$(python3 - <<'EOF' 2>/dev/null || true
import ctypes
cuda = ctypes.CDLL('libcuda.so.1')
count = ctypes.c_int()
if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0:
    for i in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76 (cuda.h).
        if (cuda.cuDeviceGet(ctypes.byref(device), i) == 0
                and cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device) == 0
                and cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) == 0):
            print('%d.%d' % (major.value, minor.value))
EOF
)"
    [ -z "$caps" ] || source="libcuda.so.1"
fi

listed="$(printf '%s\n' "$caps" | paste -sd, - | sed 's/,/, /g')"
if [ -z "$caps" ]; then
    dockerfile=Dockerfile
    why="no GPU seen (neither nvidia-smi nor libcuda.so.1 named one): the CUDA 10.0 image, for GPUs up to compute capability 7.5"
elif printf '%s\n' "$caps" | awk -F. '$1 >= 8 { found = 1 } END { exit !found }'; then
    dockerfile=docker/ngc.Dockerfile
    why="compute capability $listed ($source): 8.0 or newer, which the CUDA 10.0 build has no kernels for; NVIDIA's TF1 image has them"
else
    dockerfile=Dockerfile
    why="compute capability $listed ($source): all 7.5 or older, which the CUDA 10.0 image serves"
fi
echo "make image: $dockerfile: $why"

image="${IMAGE:-allconvnet}"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
command=(docker build -f "$dockerfile" -t "$image" --build-arg "VCS_REF=$revision" "$@" .)
echo "make image: ${command[*]}"
[ "${DRY_RUN:-0}" = 1 ] && exit 0
command -v docker >/dev/null 2>&1 ||
    { echo "build_image.sh: docker is not installed here; run the command above where it is" >&2; exit 1; }
exec "${command[@]}"
