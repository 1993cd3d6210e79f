# metricstore: `make demo` and `make test` work on a fresh clone with only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SIZE   ?= all
ONLY   ?=
PYTEST_ARGS ?=

.PHONY: setup demo test test-scale torture bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,spark,s3]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/metricstore demo

# Every test but the scale-out suites (S3 through a local moto server, Spark), which have their own
# target: CI runs both.
test: setup
	$(BIN)/python -m pytest -q -n 2 --ignore=tests/scale $(PYTEST_ARGS)

test-scale: setup
	$(BIN)/python -m pytest -q -n 2 tests/scale $(PYTEST_ARGS)

# The full crash/fuzz campaign (>= 200 SIGKILLs of writers, compactions and scheduled ingests; 8 writers
# + compactor + readers; 1,000 fuzzed inputs per property). TORTURE_ARGS=--json torture.json keeps the figures.
TORTURE_ARGS ?=
torture: setup
	METRICSTORE_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q -n 2 -p no:cacheprovider tests/reliability/test_bad_input.py -k fuzz
	$(BIN)/python -m tests.reliability.torture --trials 200 --scheduled 30 --compactions 40 $(TORTURE_ARGS)

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m benchmarks --size $(SIZE) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) data/store data/*.png .pytest_cache .hypothesis
