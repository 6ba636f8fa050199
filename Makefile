# Entry points. `make train`: the blog's run; `make test`: the suite (what CI runs). Both set up
# .venv first with setup.sh (TF_BUILD=stock|mkl|auto picks the TensorFlow build, see there).
# Pass flags with ARGS, e.g. make train ARGS="--epochs 5".
ARGS ?=

.PHONY: setup data train test bench docs rehearse-image lock-image
setup:
	./setup.sh requirements.txt

# Download and verify CIFAR-10 without training (what the first `make train` does anyway).
data: setup
	.venv/bin/python -m runkit.dataset

train: setup
	.venv/bin/python allconvnet.py $(ARGS)

# The suite pins the stock TensorFlow build: the tiny reference curve was made with it and is
# compared within 1e-6 (docs/curves.md).
test:
	TF_BUILD=stock ./setup.sh requirements-test.txt
	.venv/bin/python -m tools.blog_diff --check
	.venv/bin/python -m pytest tests -q $(ARGS)

# What training costs on this machine (docs/performance.md); about 25 minutes on 2 cores.
bench: setup
	.venv/bin/python -m tools.bench $(ARGS)

# Regenerate docs/blog-vs-repo.md and the README's differences table after a code change.
docs:
	.venv/bin/python -m tools.blog_diff

# The Docker image's install steps and first run (download from a loopback mirror), rehearsed
# in a fresh Python 3.7 venv (about 2 min, 450 MB).
rehearse-image:
	tools/rehearse_image.sh

# Regenerate the image's hash lock from requirements.txt (downloads about 450 MB).
lock-image:
	.venv/bin/python tools/lock_image_requirements.py
