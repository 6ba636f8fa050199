# Entry points. `make train`: the blog's run; `make test`: the suite (what CI runs). Each sets up
# its venv first with setup.sh, which finds Python 3.7 on PATH, under ~/.pyenv or at
# PYTHON37=/path/to/python3.7; TF_BUILD=stock, mkl or auto picks the TensorFlow build (see there).
# Pass flags with ARGS, e.g. make train ARGS="--epochs 5".
ARGS ?=

.PHONY: setup data train check test kill-matrix surroundings bench docs image rehearse-image lock-image
setup:
	./setup.sh requirements.txt

# Download and verify CIFAR-10 without training (what the first `make train` does anyway).
data: setup
	.venv/bin/python -m runkit.dataset

train: setup
	.venv/bin/python allconvnet.py $(ARGS)

# The self-check (docs/curves.md): train the reference configuration once with a fresh seed and
# judge it against the band of logs/reference/upstream-10k; 7-12 minutes on 2 CPU cores.
# Exit 0 inside the band, 1 outside, 2 no run to judge, 3 undecided (still at chance). E.g. make check ARGS="--gpus 2".
check: setup
	.venv/bin/python -m tools.selfcheck $(ARGS)

# The suite runs on the stock TensorFlow build in its own venv, .venv-test-stock, so that it
# and `make train`'s .venv (the oneDNN build on AVX-512 CPUs) never reinstall each other;
# TF_BUILD=mkl make test runs it on the oneDNN build in .venv-test-mkl (each build's tiny
# reference is its own, docs/curves.md). CI keeps the stock build.
TEST_BUILD = $(if $(filter mkl,$(TF_BUILD)),mkl,stock)
TEST_VENV = .venv-test-$(TEST_BUILD)
# Some of the suite: make test TESTS=tests/test_logdir.py
TESTS ?= tests
test:
	VENV=$(TEST_VENV) TF_BUILD=$(TEST_BUILD) ./setup.sh requirements-test.txt
	$(TEST_VENV)/bin/python -m tools.blog_diff --check
	$(TEST_VENV)/bin/python -m pytest $(TESTS) -q -n 2 $(ARGS)

# SIGKILL at every file write of a run, then resume (docs/failures.md); about 15 minutes.
kill-matrix:
	VENV=$(TEST_VENV) TF_BUILD=$(TEST_BUILD) ./setup.sh requirements-test.txt
	cd tests && ../$(TEST_VENV)/bin/python kill_matrix.py

# Every entry point under closed streams, limits, odd ~/.keras, neighbours and planted links
# (docs/failures.md); about 5 minutes on 2 cores, the fast cases are in `make test`.
surroundings:
	VENV=$(TEST_VENV) TF_BUILD=$(TEST_BUILD) ./setup.sh requirements-test.txt
	cd tests && ../$(TEST_VENV)/bin/python surroundings.py

# What training costs on this machine (docs/performance.md); about 2 minutes on 2 cores.
bench: setup
	.venv/bin/python -m tools.bench $(ARGS)

# Regenerate docs/blog-vs-repo.md and docs/differences-at-a-glance.md after a code change.
docs: setup
	.venv/bin/python -m tools.blog_diff

# Build the image for this host's GPUs: docker/ngc.Dockerfile if one has compute capability 8.0
# or more, else the Dockerfile (also without a GPU); it prints which and why. DRY_RUN=1 only
# prints, ARGS go to docker build.
image:
	docker/build_image.sh $(ARGS)

# The Docker image's install steps and first run (download from a loopback mirror), rehearsed
# in a fresh Python 3.7 venv, and the NGC image's pip step resolved for Python 3.8 against
# NVIDIA's kept versions (about 3 min, 550 MB).
rehearse-image:
	docker/rehearse_image.sh

# Regenerate the image's hash lock from requirements.txt (downloads about 450 MB).
lock-image:
	.venv/bin/python docker/lock_image_requirements.py
