# metricstore: `make demo` and `make test` work on a fresh clone with only Python 3.11+ and make.
# Each target installs what it needs into .venv, once per version of pyproject.toml (a stamp per set of
# extras): `make demo` the core dependencies only, `make test` adds the test, serve and notify extras,
# `make test-scale` the S3 and Spark extras, `make bench` the peer systems.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum < pyproject.toml | cut -d' ' -f1)
SIZE   ?= all
ONLY   ?=
PYTEST_ARGS ?=
PIP    := $(BIN)/python -m pip install --quiet --quiet --disable-pip-version-check

.PHONY: setup demo test test-slow test-scale torture bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-core-$(HASH): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test-$(HASH): $(VENV)/.installed-core-$(HASH)
	$(PIP) -e ".[test,serve,notify]"
	@touch $@

$(VENV)/.installed-scale-$(HASH): $(VENV)/.installed-test-$(HASH)
	$(PIP) -e ".[test,test-s3,s3,spark]"
	@touch $@

$(VENV)/.installed-bench-$(HASH): $(VENV)/.installed-test-$(HASH)
	$(PIP) -e ".[test,bench]"
	@touch $@

setup: $(VENV)/.installed-test-$(HASH)

demo: $(VENV)/.installed-core-$(HASH)
	$(BIN)/metricstore demo

# Every test but the scale-out suites (S3 through a local moto server, Spark), which have their own
# target: CI runs both.
test: $(VENV)/.installed-test-$(HASH)
	$(BIN)/python -m pytest -q -n 2 --ignore=tests/scale -m "not slow" $(PYTEST_ARGS)

# The tests marked slow (metricstore serve under load: 32 clients x 200 queries, 200 connections past its cap; the
# projections and the growth versions against the reference over random stores, random commit sequences, real
# filings and a concurrent writer): minutes, so apart; CI runs them.
test-slow: $(VENV)/.installed-test-$(HASH)
	$(BIN)/python -m pytest -q -n 2 --ignore=tests/scale -m slow $(PYTEST_ARGS)

test-scale: $(VENV)/.installed-scale-$(HASH)
	$(BIN)/python -m pytest -q -n 2 tests/scale $(PYTEST_ARGS)

# The full crash/fuzz campaign (>= 200 SIGKILLs of writers, compactions and scheduled ingests; 8 writers
# + compactor + readers; 1,000 fuzzed inputs per property). TORTURE_ARGS=--json torture.json keeps the figures.
TORTURE_ARGS ?=
torture: $(VENV)/.installed-test-$(HASH)
	METRICSTORE_FUZZ_EXAMPLES=1000 $(BIN)/python -m pytest -q -n 2 -p no:cacheprovider tests/reliability/test_bad_input.py -k fuzz
	$(BIN)/python -m tests.reliability.torture --trials 200 --scheduled 30 --compactions 40 $(TORTURE_ARGS)

bench: $(VENV)/.installed-bench-$(HASH)
	$(BIN)/python -m benchmarks --size $(SIZE) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) data/store data/*.png .pytest_cache .hypothesis
