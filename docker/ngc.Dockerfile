# UNVERIFIED: never built or run by this project (no Docker engine, no GPU where it was written).
#
# The image for Ampere, Ada and Hopper GPUs (compute capability 8.0 and up): the tutorial on
# NVIDIA's maintained TensorFlow 1 container, TensorFlow 1.15.5 built for CUDA 12.1 with kernels
# for those GPUs, Python 3.8. The main Dockerfile's tensorflow-gpu wheel has kernels only up to
# compute capability 7.0, and allconvnet.py refuses newer GPUs there. Same user, paths, volumes
# and arguments as the main image (docs/docker.md, "Ampere and Hopper"); no JIT-cache volume
# is needed, the build has these GPUs' kernels.
#
#   docker build -f docker/ngc.Dockerfile -t allconvnet .
#   docker run --rm --gpus all -v "$PWD/logs:/app/logs" -v allconvnet-data:/home/allconv/.keras/datasets allconvnet

# NVIDIA's last TF1 release ("After the current 23.03 release, TF1 will no longer release
# monthly"): Ubuntu 20.04, CUDA 12.1, cuDNN 8.8, NVIDIA driver 530 or newer.
ARG NGC_IMAGE=nvcr.io/nvidia/tensorflow:23.03-tf1-py3
ARG USER_UID=1000
ARG USER_GID=1000

FROM ${NGC_IMAGE}
ARG USER_UID
ARG USER_GID
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="allconvnet-ngc" \
      org.opencontainers.image.description="UNVERIFIED, never built by the project: All-CNN-C on CIFAR-10 as in the 2017 Keras 1 tutorial; Keras 1.2.2 on NVIDIA's TensorFlow 1.15.5 (CUDA 12.1, Python 3.8) for Ampere and Hopper" \
      org.opencontainers.image.revision="${VCS_REF}"

# As in the main Dockerfile: Docker fills a new named volume with the mount point's owner and
# mode, so the user can download CIFAR-10 into a fresh dataset volume; world-writable for
# `docker run --user`.
RUN groupadd --gid "${USER_GID}" allconv \
    && useradd --no-log-init --uid "${USER_UID}" --gid allconv --create-home \
        --home-dir /home/allconv --shell /bin/bash allconv \
    && mkdir -p /home/allconv/.keras/datasets /home/allconv/.nv/ComputeCache /app/logs \
    && chown -R allconv:allconv /home/allconv /app/logs \
    && chmod 1777 /home/allconv/.keras /home/allconv/.keras/datasets \
        /home/allconv/.nv /home/allconv/.nv/ComputeCache /app/logs
# The JIT cache matters less here (the build has kernels for these GPUs) but still serves GPUs
# newer than the build; the same mount point as the main image.
ENV HOME=/home/allconv \
    CUDA_CACHE_PATH=/home/allconv/.nv/ComputeCache \
    CUDA_CACHE_MAXSIZE=4294967296 \
    PYTHONUNBUFFERED=1

# requirements.txt's pins on top of the image's Python, less TensorFlow, numpy, scipy and the
# rest of what TensorFlow needs, which stay as NVIDIA built them (docker/image_requirements.py,
# NGC_KEEPS; the build log lists what was kept). --no-deps, so that pip cannot replace any of
# them; --no-build-isolation builds the Keras and Theano sdists with the image's setuptools.
# Versions are pinned, but unhashed: the hash lock holds Python 3.7's files. The import proves
# Keras 1.2.2 loads on NVIDIA's TensorFlow (HOME=/tmp: its keras.json stays out of the image).
COPY requirements.txt docker/image_requirements.py /tmp/install/
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN python /tmp/install/image_requirements.py ngc /tmp/install/requirements.txt \
        > /tmp/install/ngc-requirements.txt \
    && python -m pip install --no-cache-dir --disable-pip-version-check --no-deps \
        --no-build-isolation -r /tmp/install/ngc-requirements.txt \
    && HOME=/tmp python -c "import keras, h5py, matplotlib, pandas, PIL, yaml" \
    && rm -rf /tmp/install

# Last: the code changes most often. Owned by root, so the training user cannot alter it.
WORKDIR /app
COPY allconvnet.py make_parallel.py predict.py ./
COPY runkit/ runkit/
COPY tools/__init__.py tools/curves.py tools/runs.py tools/band.py tools/report.py \
     tools/multirun.py tools/bench.py tools/selfcheck.py tools/
# Outside the /app/logs VOLUME, as in the main image.
COPY logs/reference/upstream-10k/ reference/upstream-10k/
# A message that suggests a command writes it as a `docker run` of ALLCONVNET_IMAGE.
ENV ALLCONVNET_GIT_COMMIT=${VCS_REF} \
    ALLCONVNET_REFERENCE_SET=/app/reference/upstream-10k \
    ALLCONVNET_IMAGE=allconvnet

USER ${USER_UID}:${USER_GID}
VOLUME ["/app/logs"]

# Replaces NVIDIA's entrypoint script (its banner, driver check and CUDA forward compatibility
# for data-center drivers older than 530), so that arguments work as with the main image.
ENTRYPOINT ["python", "allconvnet.py"]
CMD ["--gpus", "all"]
