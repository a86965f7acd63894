# The commands people type. Only Python 3.11 and make are needed: the rest is installed in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_ARGS ?=

.PHONY: run install install-dev test lint openapi-check format fuzz bench bench-quick migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## make install: the runtime packages in .venv (make install-dev: the test and lint tools too)
install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## make help: these targets, then the CLI's commands (src/cli.py --help; each takes --help too)
.PHONY: help
help:
	@grep -h '^## ' $(MAKEFILE_LIST) | sed 's/^## //'
	@echo
	@if [ -x $(BIN)/python ]; then $(BIN)/python src/cli.py --help | sed -n '/^commands:/,$$p'; \
	else echo "CLI commands: run make install first, then make help (or $(BIN)/python src/cli.py --help)"; fi

## make run: install, migrate, load the demo week (default database only; DEMO=1/0), serve on $(HOST):$(PORT)
run: install
	$(BIN)/python src/cli.py prepare
	AUTO_MIGRATE=0 $(BIN)/python src/serve.py \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

## make run also starts one queue worker beside the web server, stopped together (WORKER=0: none).
## make worker: migrate, then run a queue worker alone (to scale out; WORKER_THREADS threads each)
.PHONY: worker
worker: install
	$(BIN)/python src/cli.py migrate
	AUTO_MIGRATE=0 $(BIN)/python src/worker.py

## make dsmr-key NAME=home: make installation NAME's DSMR-reader API key, print it once (ROTATE=1 replaces it)
.PHONY: dsmr-key
dsmr-key: install
	$(BIN)/python src/cli.py dsmr-key $(if $(NAME),--installation $(NAME)) $(if $(ROTATE),--rotate)

## make admin ADMIN_USERNAME=name ADMIN_EMAIL=address: create the first admin (password from ADMIN_PASSWORD, or asked twice; PROMOTE=1 makes an existing user admin)
.PHONY: admin
admin: install
	$(BIN)/python src/cli.py create-admin --username "$(ADMIN_USERNAME)" --email "$(ADMIN_EMAIL)" $(if $(PROMOTE),--promote)

## make migrate: create or migrate the database (DATABASE_URL; default var/joi.sqlite3)
migrate: install
	$(BIN)/python src/cli.py migrate

## make test: install, run the whole suite (PostgreSQL too when TEST_DATABASE_URL is set)
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make lint: ruff check and ruff format --check (make format fixes what it can)
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make openapi-check: validate the served /openapi.json with openapi-spec-validator
openapi-check: install-dev
	$(BIN)/python -m pytest -q -p no:warnings tests/api/test_openapi_document.py -k sqlite

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make fuzz: schemathesis over every operation against a live server on a scratch database
fuzz: install-dev
	$(BIN)/python tests/fuzz.py

## make bench: every benchmark section beside its reference, written to bench/results.md (make bench-quick: shorter)
bench: install-dev
	$(BIN)/python bench/run.py

bench-quick: install-dev
	$(BIN)/python bench/run.py --quick

## make bench-scale: PostgreSQL with 10,000,000 readings across 10,000 meters (BENCH_SCALE_DATABASE_URL, rebuilt): build time, compare-all and one-day readings/read p50/p99
.PHONY: bench-scale
bench-scale: install-dev
	$(BIN)/python bench/scale.py

## make soak: 10 minutes of mixed load against src/serve.py: RSS per process, errors, p50/p99 per minute (not in make test)
.PHONY: soak
soak: install-dev
	$(BIN)/python bench/soak.py --output bench/results-soak.md

## make clean: remove .venv, var/ and the tool caches
clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
