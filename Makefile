# Two commands set up a fresh machine and run: `make demo` and `make test`.
# `make test` is also what CI runs (.ci/run), so CI proves the README's procedure.
PYTHON ?= python3
VENV ?= .venv
OLDEST ?= .venv-oldest
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
LINTED := optuna_llm tests examples scripts optunahub
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# llama-cpp-python compiles llama.cpp for this CPU (-march=native), but without Intel AMX: on a
# virtual machine whose CPU lists AMX (amx_tile in /proc/cpuinfo), ggml's AMX matrix product
# faults on its first instruction (general protection in ldtilecfg) and the embedded model
# dies with a segmentation fault at its first token. AVX-512 and VNNI stay. (A wheel that pip
# built earlier and cached is reused as it is: `pip cache remove llama_cpp_python` first.)
NO_AMX := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
LLAMA_BUILD := CMAKE_ARGS="-DGGML_NATIVE=ON" CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)"

# The fast subset that runs again on the oldest Optuna pyproject.toml claims (requirements/oldest.txt).
OLDEST_TESTS := tests/samplers tests/worker tests/test_compat.py tests/test_imports.py

.PHONY: venv demo test lint test-suite test-oldest services clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: on these machines torch==2.13.0 resolves to a local CPU wheel;
	# anything else would pull gigabytes of CUDA packages.
	$(PIP) install -q torch==2.13.0
	$(LLAMA_BUILD) $(PIP) install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/optuna-llm demo

# Everything CI checks: lint and types, the whole suite and the docstring examples on the
# pinned (newest) Optuna, then the fast subset on the oldest Optuna claimed.
test: lint test-suite test-oldest

lint: venv
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)
	$(PY) -m mypy optuna_llm

test-suite: venv services
	$(OFFLINE) $(PY) -m pytest -q -ra tests optunahub
	$(OFFLINE) $(PY) -m pytest -q -ra --doctest-modules optuna_llm

$(OLDEST)/.installed: pyproject.toml requirements/oldest.txt
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q --upgrade pip
	$(OLDEST)/bin/python -m pip install -q torch==2.13.0
	$(OLDEST)/bin/python -m pip install -q -c requirements/oldest.txt -e '.[postgres]' \
		optuna cmaes pytest pytest-timeout
	touch $@

test-oldest: $(OLDEST)/.installed services
	$(OFFLINE) $(OLDEST)/bin/python -m pytest -q -ra -p no:cacheprovider \
		-m "not slow and not llama" $(OLDEST_TESTS)

# What the tests need from the machine: PostgreSQL up at 127.0.0.1:$(PG_PORT) (started when it
# is installed but down) and Debian's Chromium for the dashboard test (installed when this runs
# as root with apt-get; otherwise one line says what to run).
PG_PORT ?= 5432
CHROMIUM ?= /usr/bin/chromium
PG_START := pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
services:
	@if ! pg_isready -h 127.0.0.1 -p $(PG_PORT) -q 2>/dev/null; then \
	  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then \
	    echo "make test: starting PostgreSQL: $(PG_START)"; \
	    if $(PG_START); then \
	      for _ in $$(seq 60); do pg_isready -h 127.0.0.1 -p $(PG_PORT) -q && break; sleep 1; done; \
	    fi; \
	  fi; \
	fi; \
	pg_isready -h 127.0.0.1 -p $(PG_PORT) -q 2>/dev/null || { \
	  echo "make test: PostgreSQL is not running at 127.0.0.1:$(PG_PORT); install and start it: apt-get install -y postgresql && $(PG_START)"; \
	  exit 1; }
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing Debian's chromium for the dashboard test (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	      || { echo "make test: apt-get could not install chromium; run: sudo apt-get install -y chromium"; exit 1; }; \
	  else \
	    echo "make test: $(CHROMIUM) is missing (the dashboard test needs it); run: sudo apt-get install -y chromium"; \
	    exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) $(OLDEST)
