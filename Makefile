# Entry points. `make train`: the blog's run; `make test`: the suite (what CI runs). Both set up
# .venv first with setup.sh. Pass flags with ARGS, e.g. make train ARGS="--epochs 5".
ARGS ?=

.PHONY: setup data train test bench docs rehearse-image lock-image
setup:
	./setup.sh requirements.txt

# Download and verify CIFAR-10 without training (what the first `make train` does anyway).
data: setup
	.venv/bin/python -m runkit.dataset

train: setup
	.venv/bin/python allconvnet.py $(ARGS)

test:
	./setup.sh requirements-test.txt
	.venv/bin/python tools/blog_diff.py --check --strict
	.venv/bin/python -m pytest tests -q $(ARGS)

# What training costs on this machine (docs/performance.md); about 25 minutes on 2 cores.
bench: setup
	.venv/bin/python tools/bench.py $(ARGS)

# Regenerate docs/blog-vs-repo.md and the README's differences table after a code change.
docs:
	.venv/bin/python tools/blog_diff.py

# The Docker image's install steps, rehearsed in a fresh Python 3.7 venv (about 3 min, 450 MB).
rehearse-image:
	tools/rehearse_image.sh

# Regenerate the image's hash lock from requirements.txt (downloads about 450 MB).
lock-image:
	.venv/bin/python tools/lock_image_requirements.py
