# The two commands of the README: `make demo` and `make test` do all the set-up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.driftline-installed

.PHONY: demo test lint typecheck pytest system-deps kafka kafka-stop dashboards clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./sdk -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftline demo

system-deps:
	bash deploy/install-system-deps.sh

test: $(STAMP) system-deps lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -ra

kafka: system-deps
	bash deploy/kafka/kafka.sh start

kafka-stop:
	bash deploy/kafka/kafka.sh stop

dashboards: $(STAMP)
	$(BIN)/driftline dashboards build

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
