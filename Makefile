# Two entry points: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test readme lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/percalign demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not readme" $(PYTEST_ARGS)

# README.md's commands, run as written and in order (tests/test_readme.py); CI runs it too
readme: $(STAMP)
	$(BIN)/python -m pytest -m readme tests/test_readme.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_inversion.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
