# The two commands of the README, each working from a fresh clone with nothing but python3 (>= 3.10) and make:
#   make notebooks   install, then execute every notebook headless (PROFILE=quick by default: all five in about 30 minutes on 2 cores) into figures/
#   make test        install with the dev tools, lint code and notebooks, run the unit tests and
#                    every notebook in the smoke profile
#
# Where they install: an active environment (a virtualenv, conda, Colab) is used as it is; otherwise a
# virtual environment .venv is created in the repository and used. An already-installed torch is kept;
# otherwise TORCH is installed, from TORCH_INDEX when given, e.g.
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu     (the CPU build: no CUDA downloads)
#   make test TORCH=torch==2.13.0 CONSTRAINTS=constraints.txt      (the exact versions of the committed results)

PYTHON3 ?= python3
VENV ?= .venv
TORCH ?= torch
TORCH_INDEX ?=
CONSTRAINTS ?=
PROFILE ?= quick

# 1 when PYTHON3 runs inside an environment of the user's own (venv/virtualenv, conda, Colab).
IN_ENV := $(shell $(PYTHON3) -c 'import os, sys; print(int(sys.prefix != sys.base_prefix or bool(os.environ.get("CONDA_PREFIX")) or bool(os.environ.get("COLAB_RELEASE_TAG"))))' 2>/dev/null)
ifeq ($(IN_ENV),1)
PYTHON ?= $(PYTHON3)
ENV_TARGET :=
else
PYTHON ?= $(VENV)/bin/python
ENV_TARGET := $(VENV)/bin/python
endif
PIP_OPTIONS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.PHONY: check-python env install install-dev notebooks test lint bench

check-python:
	@command -v $(PYTHON3) >/dev/null 2>&1 || { echo "error: $(PYTHON3) not found. Install Python >= 3.10 (Debian/Ubuntu: sudo apt install python3 python3-venv) or pass PYTHON3=/path/to/python3."; exit 1; }
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: $$($(PYTHON3) --version 2>&1) is too old: this project needs Python >= 3.10. Pass PYTHON3=python3.11 (or newer)."; exit 1; }

$(VENV)/bin/python: | check-python
	@echo "no active environment: creating $(VENV) with $$($(PYTHON3) --version 2>&1)"
	@$(PYTHON3) -m venv $(VENV) || { rm -rf $(VENV); echo "error: could not create $(VENV). On Debian/Ubuntu install the venv module (sudo apt install python3-venv), or activate an environment of your own and run make again."; exit 1; }

env: check-python $(ENV_TARGET)
	@if $(PYTHON) -c 'import torch' 2>/dev/null; then \
	  echo "torch $$($(PYTHON) -c 'import torch; print(torch.__version__)') is installed: kept"; \
	else \
	  echo "installing $(TORCH)$(if $(TORCH_INDEX), from $(TORCH_INDEX))"; \
	  $(PYTHON) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"; \
	fi

install: env
	$(PYTHON) -m pip install -q -e . $(PIP_OPTIONS)

install-dev: env
	$(PYTHON) -m pip install -q -e ".[dev]" $(PIP_OPTIONS)

notebooks: install
	$(PYTHON) -m resonance_lib.notebooks --profile $(PROFILE)

lint:
	$(PYTHON) -m ruff check .

test: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) -m benchmarks.bench_train
