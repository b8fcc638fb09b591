# Two commands set up a fresh machine and run: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt

.PHONY: venv demo test lint bench clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: on these machines torch==2.13.0 resolves to a local CPU wheel;
	# anything else would pull gigabytes of CUDA packages.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/optuna-llm demo

test: venv
	$(PY) -m ruff check optuna_llm tests examples optunahub
	$(PY) -m mypy optuna_llm
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q -ra tests optunahub

lint: venv
	$(PY) -m ruff check optuna_llm tests examples optunahub
	$(PY) -m mypy optuna_llm

clean:
	rm -rf $(VENV)
