# The two commands of the README: `make demo` and `make test` do all the set-up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.driftline-installed

.PHONY: demo test lint typecheck pytest system-deps kafka kafka-stop dashboards bench clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./sdk -e '.[dev,confluent]'
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

# Every benchmark at its quick sizes (BENCH_OPTIONS=--full for those of docs/benchmarks.md);
# each prints baseline, result and ratio and writes bench/results/NAME.json.
BENCHES := sdk_client sdk_backfill decode_cost exporters_cost http_scrapes report_index drift_vs_evidently \
	multivariate_cost embedding_cost all_detectors_budget cbpe_vs_nannyml dle_vs_nannyml performance_false_alarms \
	performance_threshold_fit reference_batch \
	pipeline_throughput pipeline_ab scaling window_append calibration_latency \
	kafka_throughput soak false_alarms checkpoint_cost join_store_memory
BENCH_OPTIONS ?=
NANNYML_VENV ?= /tmp/nanny-venv

$(NANNYML_VENV)/bin/python:
	$(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/pip install --quiet nannyml "pandas<3" statsmodels

bench: $(STAMP) system-deps $(NANNYML_VENV)/bin/python
	@all=$$(date +%s); for name in $(BENCHES); do \
		options="$(BENCH_OPTIONS)"; \
		case $$name in *_nannyml) options="$$options --nannyml-python $(NANNYML_VENV)/bin/python";; esac; \
		echo "== bench/$$name.py $$options"; start=$$(date +%s); \
		PYTHONPATH=$(CURDIR):$(CURDIR)/sdk $(BIN)/python bench/$$name.py $$options || exit 1; \
		echo "== bench/$$name.py: $$(( $$(date +%s) - start )) s of wall time"; \
	done; echo "== make bench: $$(( $$(date +%s) - all )) s of wall time"

dashboards: $(STAMP)
	$(BIN)/driftline dashboards build

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
