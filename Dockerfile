# The image behind `docker run --gpus all allconvnet` for GPUs up to Volta and Turing (compute
# capability 3.5 to 7.5): the tutorial (allconvnet.py) with Keras 1.2.2 and tensorflow-gpu
# 1.15.5 on CUDA 10.0 + cuDNN 7, Python 3.7, training with make_parallel on every GPU the
# container sees. On Ampere, Ada and Hopper (8.0 and newer), which this build has no kernels
# for, allconvnet.py refuses at start-up: build docker/ngc.Dockerfile instead. docs/docker.md
# explains building, running, the volumes, the other bases and what was verified.
#
#   docker build -t allconvnet .
#   docker run --rm --gpus all -v "$PWD/logs:/app/logs" -v allconvnet-data:/home/allconv/.keras/datasets -v allconvnet-cuda-cache:/home/allconv/.nv/ComputeCache allconvnet

# TF 1.15 loads CUDA 10.0 and cuDNN 7 at run time, so the base must carry them. NVIDIA deleted its
# nvidia/cuda 10.x tags from Docker Hub in 2023; the TensorFlow project's own 1.15.5 GPU image
# (Ubuntu 18.04 on nvidia/cuda:10.0-base, CUDA 10.0, cuDNN 7.6) is still published. The other
# way, --build-arg BASE_IMAGE=cuda10-apt, rebuilds NVIDIA's base from its apt repositories
# (the stage below); a mirror's copy pinned by digest works as well (docs/docker.md).
ARG BASE_IMAGE=tensorflow/tensorflow:1.15.5-gpu-py3
# The container's user, by number (Kubernetes' runAsNonRoot can only vouch for a numeric USER).
# 1000 is the first user of most Linux hosts, so files written to a bind-mounted logs/ are
# theirs; rebuild with --build-arg USER_UID=$(id -u) --build-arg USER_GID=$(id -g) otherwise.
ARG USER_UID=1000
ARG USER_GID=1000


# nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04 as NVIDIA's published recipe built it
# (gitlab.com/nvidia/container-images/cuda, dist/ubuntu18.04/10.0: base, runtime,
# runtime/cudnn7), package for package. BuildKit builds it only when BASE_IMAGE names it.
FROM ubuntu:18.04 AS cuda10-apt
ARG DEBIAN_FRONTEND=noninteractive
ARG VCS_REF=unknown
# hadolint requires the labels on every stage no other stage names in FROM; the final stage's
# replace them.
LABEL org.opencontainers.image.title="allconvnet-cuda10-apt" \
      org.opencontainers.image.description="CUDA 10.0 runtime and cuDNN 7.6.5 on Ubuntu 18.04 from NVIDIA's apt repositories (nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04's recipe)" \
      org.opencontainers.image.revision="${VCS_REF}"
# cuda-keyring carries the CUDA repository's key since NVIDIA rotated it in 2022; cuDNN 7 and
# NCCL are in the machine-learning repository, which stayed on the old key 7fa2af80. Both come
# over HTTPS from NVIDIA (no published checksum to pin); apt then checks every package by them.
ADD https://developer.download.nvidia.com/compute/cuda/repos/ubuntu1804/x86_64/cuda-keyring_1.0-1_all.deb /tmp/cuda-keyring.deb
ADD https://developer.download.nvidia.com/compute/machine-learning/repos/ubuntu1804/x86_64/7fa2af80.pub /usr/share/keyrings/nvidia-ml-7fa2af80.asc
# ca-certificates first, from Ubuntu alone: NVIDIA's repositories are HTTPS. The old key stays
# armored (apt reads *.asc keyrings since 1.4, so no gnupg), readable by apt's unprivileged
# _apt user (ADD writes mode 600).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311ubuntu0.18.04.1 \
    && dpkg -i /tmp/cuda-keyring.deb \
    && rm /tmp/cuda-keyring.deb \
    && chmod 644 /usr/share/keyrings/nvidia-ml-7fa2af80.asc \
    && echo "deb [signed-by=/usr/share/keyrings/nvidia-ml-7fa2af80.asc] https://developer.download.nvidia.com/compute/machine-learning/repos/ubuntu1804/x86_64 /" \
        > /etc/apt/sources.list.d/nvidia-ml.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        cuda-cudart-10-0=10.0.130-1 \
        cuda-compat-10-0=410.48-1 \
        cuda-libraries-10-0=10.0.130-1 \
        cuda-nvtx-10-0=10.0.130-1 \
        libnccl2=2.4.8-1+cuda10.0 \
        libcudnn7=7.6.5.32-1+cuda10.0 \
    && apt-mark hold libnccl2 libcudnn7 \
    && ln -s cuda-10.0 /usr/local/cuda \
    && echo /usr/local/nvidia/lib >> /etc/ld.so.conf.d/nvidia.conf \
    && echo /usr/local/nvidia/lib64 >> /etc/ld.so.conf.d/nvidia.conf \
    && rm -rf /var/lib/apt/lists/*
# NVIDIA's values: the container toolkit reads NVIDIA_*; the driver mounts into /usr/local/nvidia.
# NVIDIA_REQUIRE_CUDA admits a driver of 410.48 or newer, or on a Tesla GPU an R384 one through
# cuda-compat-10-0's forward compatibility (docs/docker.md, "Host requirements").
ENV CUDA_VERSION=10.0.130 \
    CUDNN_VERSION=7.6.5.32 \
    PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=10.0 brand=tesla,driver>=384,driver<385 brand=tesla,driver>=410,driver<411"


FROM ${BASE_IMAGE} AS runtime

# Ubuntu 18.04's last public builds (bionic-updates is frozen since standard support ended in
# May 2023); build arguments, so that a base whose archive differs can still be served.
ARG PYTHON37_VERSION=3.7.5-2ubuntu1~18.04.2
ARG DISTUTILS_VERSION=3.6.9-1~18.04
# Set to e.g. http://old-releases.ubuntu.com/ubuntu once bionic leaves archive.ubuntu.com.
ARG UBUNTU_MIRROR=
ARG DEBIAN_FRONTEND=noninteractive

# Every base lists NVIDIA's apt repositories. The tensorflow image's cuda.list predates NVIDIA's
# April 2022 key rotation, so apt-get update fails with NO_PUBKEY A4B469963BF863CC
# (tensorflow/tensorflow#56085), and the published repairs fail too: deleting the old key
# 7fa2af80 leaves nvidia-ml.list's repository, still signed with it, failing with NO_PUBKEY
# F60F4B3D7FA2AF80, and installing cuda-keyring beside the old cuda.list fails with
# "Conflicting values set for option Signed-By" (NVIDIA/cuda-repo-management#4,
# NVIDIA/nvidia-docker#1631). The lists go: the CUDA libraries are already installed and
# nothing else comes from NVIDIA. python3-distutils carries distutils for 3.7 too on bionic
# (there is no python3.7-distutils); pip and venv need it.
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list \
    && if [ -n "$UBUNTU_MIRROR" ]; then \
           sed -i -E "s#https?://(archive|security)\.ubuntu\.com/ubuntu/?#${UBUNTU_MIRROR}#" /etc/apt/sources.list; \
       fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.7="${PYTHON37_VERSION}" \
        python3.7-venv="${PYTHON37_VERSION}" \
        python3-distutils="${DISTUTILS_VERSION}" \
    && rm -rf /var/lib/apt/lists/*

# A venv, so that the base image's own Python (3.6 and TensorFlow in the tensorflow image) and
# its packages stay out of the way.
RUN python3.7 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

# Only what the install reads, so that editing the code does not re-run this 1.7 GB layer.
# requirements.txt is the one source of the pins; the script checks the hash lock against it.
COPY requirements.txt docker/image_requirements.py docker/install-requirements.sh \
     docker/requirements-bootstrap.lock docker/requirements-gpu.lock /tmp/install/
# pip reads PIP_INDEX_URL: a registry mirror can go here (the hashes still insist on PyPI's
# bytes). Explicit, because the venv's first pip (9.0.1) defaults to the old pypi.python.org.
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN sh /tmp/install/install-requirements.sh /opt/venv/bin/python /tmp/install \
    && rm -rf /tmp/install

# Docker fills a new named volume with the mount point's content, owner and mode, so the user
# owns the first run's empty dataset volume and downloads CIFAR-10 into it. World-writable
# (sticky) as well, so that `docker run --user ...` works too: allconvnet.py (like Keras) falls
# back to /tmp/.keras when ~/.keras is not writable, which would bypass the dataset volume.
ARG USER_UID
ARG USER_GID
RUN groupadd --gid "${USER_GID}" allconv \
    && useradd --no-log-init --uid "${USER_UID}" --gid allconv --create-home \
        --home-dir /home/allconv --shell /bin/bash allconv \
    && mkdir -p /home/allconv/.keras/datasets /home/allconv/.nv/ComputeCache /app/logs \
    && chown -R allconv:allconv /home/allconv /app/logs \
    && chmod 1777 /home/allconv/.keras /home/allconv/.keras/datasets \
        /home/allconv/.nv /home/allconv/.nv/ComputeCache /app/logs
# HOME fixed, so that the cache paths hold under `docker run --user` as well.
# CUDA_CACHE_*: the wheel's kernels are SASS for compute capability 3.5, 3.7, 5.2, 6.0, 6.1 and
# 7.0 (7.5 runs 7.0's), so on a GPU without them (Maxwell 5.0; 8.0 and newer, refused unless
# ALLCONVNET_ALLOW_NEWER_GPU is set) the driver JIT-compiles its PTX at first start, 30 minutes
# or more. Mount a volume at CUDA_CACHE_PATH to keep the result; 4 GiB is the driver's maximum
# (default 256 MiB-1 GiB).
# NVIDIA_DRIVER_CAPABILITIES whatever the base says: older container toolkits default to
# `utility` alone, without which TensorFlow finds no CUDA driver.
ENV HOME=/home/allconv \
    CUDA_CACHE_PATH=/home/allconv/.nv/ComputeCache \
    CUDA_CACHE_MAXSIZE=4294967296 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility


# Optional: CIFAR-10 inside the image (--build-arg BAKE_CIFAR10=1), for runs without network.
# A stage of its own, so that with the default 0 neither the archive nor a copy of
# docker/cifar10/ reaches a layer of the final image.
FROM runtime AS cifar10
ARG USER_UID
ARG USER_GID
ARG BAKE_CIFAR10=0
# Empty: runkit.dataset's own default, the CIFAR-10 page. Unused when docker/cifar10/ holds the
# archive.
ARG CIFAR10_URL=
# Only the dataset module, which a first run uses too, and the runkit modules it imports: a
# change elsewhere in runkit/ must not re-download the archive.
COPY runkit/__init__.py runkit/argtypes.py runkit/dataset.py runkit/errors.py runkit/files.py /tmp/bake/runkit/
COPY docker/bake_cifar10.py /tmp/bake/
COPY docker/cifar10/ /tmp/bake/context/
USER ${USER_UID}:${USER_GID}
RUN python /tmp/bake/bake_cifar10.py "${BAKE_CIFAR10}" /tmp/bake/context "${CIFAR10_URL}"


FROM runtime
ARG USER_UID
ARG USER_GID
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="allconvnet" \
      org.opencontainers.image.description="All-CNN-C on CIFAR-10 as in the 2017 Keras 1 tutorial; Keras 1.2.2, tensorflow-gpu 1.15.5, CUDA 10.0, cuDNN 7, Python 3.7" \
      org.opencontainers.image.revision="${VCS_REF}"

# The folder's contents only: the mount point made above keeps its owner and mode.
COPY --from=cifar10 --chown=allconv:allconv /home/allconv/.keras/datasets/ /home/allconv/.keras/datasets/

# Last: the code changes most often. Owned by root, so the training user cannot alter it.
WORKDIR /app
COPY allconvnet.py make_parallel.py predict.py ./
COPY runkit/ runkit/
# tools/curves.py compares a run with a reference curve (with runs.py, band.py, report.py and
# multirun.py, its rooms); tools/bench.py measures a GPU box;
# tools/selfcheck.py trains the reference configuration and judges it against the set below.
COPY tools/__init__.py tools/curves.py tools/runs.py tools/band.py tools/report.py \
     tools/multirun.py tools/bench.py tools/selfcheck.py tools/
# The self-check's reference set (.dockerignore sends its CSV, JSON, text and README only),
# outside /app/logs: a bind mount on that VOLUME would hide whatever the image put there.
COPY logs/reference/upstream-10k/ reference/upstream-10k/
# No git in the image: run.json's git_commit comes from here (runkit/provenance.py). The
# self-check reads its default reference set from ALLCONVNET_REFERENCE_SET. A message that
# suggests a command (--resume ...) writes it as a `docker run` of ALLCONVNET_IMAGE, the tag
# the README builds (runkit/records.py).
ENV ALLCONVNET_GIT_COMMIT=${VCS_REF} \
    ALLCONVNET_REFERENCE_SET=/app/reference/upstream-10k \
    ALLCONVNET_IMAGE=allconvnet

USER ${USER_UID}:${USER_GID}
# logs/<UTC timestamp>, allconvnet.py's default --logdir, resolves to /app/logs/... here. The
# dataset and JIT caches are documented mount points, not VOLUMEs: an anonymous volume would
# copy a baked CIFAR-10 on every run and vanish with --rm. Use named volumes (docs/docker.md).
VOLUME ["/app/logs"]

ENTRYPOINT ["/opt/venv/bin/python", "allconvnet.py"]
# Train on every visible GPU (allconvnet.py counts them at start-up). Arguments given to
# `docker run` replace these; --gpus still defaults to all.
CMD ["--gpus", "all"]
