# The two commands of the README:
#   make notebooks   install, then execute every notebook headless (PROFILE=cpu by default) into figures/
#   make test        install with the dev tools, lint code and notebooks, run the unit tests and
#                    every notebook in the smoke profile
PYTHON ?= python3
PROFILE ?= cpu

.PHONY: install install-dev notebooks test lint bench

install:
	$(PYTHON) -m pip install -q -e .

install-dev:
	$(PYTHON) -m pip install -q -e ".[dev]"

notebooks: install
	$(PYTHON) -m resonance_lib.notebooks --profile $(PROFILE)

lint:
	$(PYTHON) -m ruff check .

test: install-dev lint
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) -m benchmarks.bench_train
