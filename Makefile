# Two commands for a fresh machine (Python 3.11 and make): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint ui bench bench-quick bench-scale screenshots clean

$(BIN)/python:
	$(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The benchmark's peers (dlt, pandas) are an optional extra, never runtime dependencies.
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/loyalty demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: $(STAMP)
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.loyalty/dagster_home} $(BIN)/dagster dev -w workspace.yaml

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py --scale 1.0

bench-quick: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py --scale 0.1

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/upload_scale.py --burst 200 1000 --single 3 --idle 100000 1000000

screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .loyalty
