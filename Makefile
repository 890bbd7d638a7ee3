# Two entry points: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse .venv and install what they need (every robot extra: the demo's emulated
# condition drives the Dynamixel driver, the tests cover every driver). torch is pinned to the CPU
# build (TORCH_SPEC) so CI never pulls CUDA wheels; pyproject.toml keeps a normal range.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[all,test,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sim2real demo

test: $(STAMP)
	$(PY) -m pytest tests

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache site
