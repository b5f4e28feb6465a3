# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   create .venv, install clapkit, run the main job on the embedded data
#   make test   create/update .venv and run the whole test suite
#
# TORCH_SPEC installs PyTorch before the project, so that the loose torch range in
# pyproject.toml is already satisfied: the default is the CPU build 2.13.0 (a local
# wheel on the development machines). GPU users: make TORCH_SPEC="torch==2.13.0" with
# their CUDA index, or any build in the range.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
STAMP := $(VENV)/.installed-$(EXTRAS)
PYTEST_ARGS ?=
# The suite runs on this many pytest-xdist workers (a module's tests run in one worker:
# tests/conftest.py); each worker keeps to one thread of PyTorch and numba, so that
# two workers on two cores do not fight over them. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint format benchmark screenshots notebooks clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

# Builds (or reuses) the demo run, prints its table, then serves the app on
# http://localhost:5006 until Ctrl-C.
demo: $(STAMP)
	$(BIN)/clapkit demo

test: $(STAMP)
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmark: $(STAMP)
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/sim_speed.py
	$(BIN)/python benchmarks/sim_realism.py --quick

# The README's pictures: the browser tests driven on the demo run, screenshots kept.
screenshots: $(STAMP)
	$(BIN)/clapkit demo --no-serve --quiet
	CLAPKIT_UI_RUN=data/runs/demo CLAPKIT_SCREENSHOTS=docs/screenshots \
		$(BIN)/python -m pytest -p no:cacheprovider -q tests/ui

# The executed notebooks a reader sees on the repository page (docs/notebooks/), each run
# in a scratch folder in its quick setting; tests/test_rendered_notebooks.py fails when a
# notebook changes and its copy is not rendered again.
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/python notebooks/render.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
