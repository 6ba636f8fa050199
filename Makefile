# Two entry points: `make train` (the blog's run) and `make test` (the suite). Both set up
# .venv first with setup.sh. Pass flags to training with ARGS, e.g. make train ARGS="--epochs 5".
ARGS ?=

.PHONY: setup train test
setup:
	./setup.sh requirements.txt

train: setup
	.venv/bin/python allconvnet.py $(ARGS)

test:
	./setup.sh requirements-test.txt
	.venv/bin/python -m pytest tests -q $(ARGS)
