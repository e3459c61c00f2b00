# daxsim: two commands do everything (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/daxsim run
	$(BIN)/daxsim compare

test: $(STAMP)
	$(BIN)/python -m pytest -q --nbmake tests notebooks

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks -q --benchmark-only

lint: $(STAMP)
	$(BIN)/ruff format --check sim workloads tests benchmarks
	$(BIN)/ruff check sim workloads tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
