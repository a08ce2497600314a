# The two commands a newcomer runs: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test soak scale deploy-check smoke-qbo lint format bench bench-quick bench-ducklake ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/qbo-backup demo

test: install
	$(VENV)/bin/ruff check qbo_pipeline tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -n auto --dist loadfile  # a worker per core; a test file stays on one

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Long random histories of the whole lifecycle (tests/trust): backups, kills, prunes, restores and
# people at work, with every invariant checked after each step; prints a table. SOAK_ARGS to change
# the seeds or length, e.g. make soak SOAK_ARGS="--seeds 2 --steps 100".
SOAK_ARGS ?= --seeds 5 --steps 400 --history 40
soak: install
	$(PY) -m tests.trust.soak $(SOAK_ARGS)

# Read-only smoke test against a real Intuit sandbox company (README: "Smoke test against real
# QBO"); needs QBO_SMOKE_CLIENT_ID, QBO_SMOKE_CLIENT_SECRET, QBO_SMOKE_REFRESH_TOKEN, QBO_SMOKE_REALM_ID.
smoke-qbo: install
	$(PY) -m pytest -m realqbo -s tests/contract

# Minutes-long tests (marker scale): fifty companies' nightly through a real dagster-daemon with
# the lake on a loopback S3 server, and the restore-into drill on a 3,000-transaction company.
scale: install
	$(PY) -m pytest -m scale

# deploy/'s Kubernetes and Celery examples validated against the config schemas of the Dagster
# integrations they name (the extra `deploy`, about 110 MB, so not in make test): no cluster needed.
deploy-check: install
	$(PY) -m pip install --quiet -e '.[deploy]'
	$(PY) -m pytest -m deploy tests/deploy

bench: install scale
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

# DuckLake against the published warehouse file (issue #19, bench/README.md), in a venv of its own:
# the DuckLake and SQLite extension wheels are built for DuckDB 1.5.5, the project runs 1.5.6.
# DUCKLAKE_WAREHOUSE names the warehouse to copy; by default the bench's 10k company is backed up
# and its warehouse built first (about a minute; DUCKLAKE_WAREHOUSE=... to measure another).
# DUCKLAKE_ARGS=--postgres adds a PostgreSQL catalog (a throwaway server from the machine's
# PostgreSQL binaries, e.g. Debian's postgresql package).
DUCKLAKE_VENV      ?= .venv-ducklake
DUCKLAKE_INPUT     ?= /tmp/qbo-bench/ducklake-input
DUCKLAKE_WAREHOUSE ?= $(DUCKLAKE_INPUT)/size-10000/data/bench-warehouse.duckdb
DUCKLAKE_ARGS      ?=
$(DUCKLAKE_VENV)/.installed:
	$(PYTHON) -m venv $(DUCKLAKE_VENV)
	$(DUCKLAKE_VENV)/bin/python -m pip install --quiet duckdb==1.5.5 \
		duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite-scanner==1.5.5 \
		duckdb-extension-postgres-scanner==1.5.5 pyarrow
	touch $@

bench-ducklake: install $(DUCKLAKE_VENV)/.installed
	test -f $(DUCKLAKE_WAREHOUSE) || $(PY) -m bench --sizes 10k --nightlies 1 --latency-ms 0 \
		--skip export,restore,s3,warehouse_growth --work-dir $(DUCKLAKE_INPUT) \
		--results-dir $(DUCKLAKE_INPUT)/results
	$(DUCKLAKE_VENV)/bin/python bench/ducklake.py $(DUCKLAKE_WAREHOUSE) $(DUCKLAKE_ARGS)

# The Dagster UI on the same data as the CLI (QBO_DATA_DIR, default data/) at
# http://127.0.0.1:$(UI_PORT) (make ui UI_PORT=3001 for another port); run history is kept in
# $(DAGSTER_HOME), which a rerun of `make demo` keeps too. QBO_ENVIRONMENT says which QBO it uses;
# on the demo's data (a folder `qbo-backup demo` made) it is the embedded sandbox unless
# QBO_ENVIRONMENT says otherwise.
UI_PORT      ?= 3000
UI_DATA      := $(or $(QBO_DATA_DIR),data)
DAGSTER_HOME ?= $(abspath $(UI_DATA)/dagster)
UI_ENV       := $(if $(wildcard $(UI_DATA)/.qbo-demo),QBO_ENVIRONMENT=$(or $(QBO_ENVIRONMENT),embedded))
ui: install
	mkdir -p $(DAGSTER_HOME)
	cp qbo_pipeline/defs/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(UI_ENV) DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

clean:
	rm -rf $(VENV) $(DUCKLAKE_VENV) .pytest_cache .ruff_cache
