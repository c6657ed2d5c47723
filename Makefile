# chainconsult: `make run` to start the platform, `make test` to run the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run test check static format lint typecheck lock migration clean api-guide
.PHONY: help install run test check static format lint typecheck lock migration clean bench-health
.PHONY: chaos multihost
.PHONY: bench soak
.PHONY: config-reference contract-tools

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the package with its pinned dependencies

run: $(STAMP) ## Start the platform on http://$(HOST):$(PORT) (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/chainconsult serve --host $(HOST) --port $(PORT)

AXE := tests/web/axe/node_modules/axe-core/axe.min.js
TEST_WORKERS ?= 3

$(AXE): tests/web/axe/package.json tests/web/axe/package-lock.json
	cd tests/web/axe && npm ci
	touch $(AXE)

# The escrow contract's compiler (solc-js), OpenZeppelin sources and the development chain.
CONTRACT_TOOLS := contracts/node_modules/.installed

$(CONTRACT_TOOLS): contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund
	touch $(CONTRACT_TOOLS)

contract-tools: $(CONTRACT_TOOLS) ## Install the escrow contract's compiler and development chain (npm, pinned)

# Every server, CLI and worker process the suite starts imports the app: with
# PYTHONDONTWRITEBYTECODE set (some shells set it), each compiled src/ again, about a
# quarter of its import's CPU.
test: $(STAMP) $(AXE) $(CONTRACT_TOOLS) ## Run the whole suite, random order, TEST_WORKERS processes (real PostgreSQL; Redis: TEST_REDIS_URL or redis-server)
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

static: $(STAMP) ## Format check, lint and strict types
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

check: static test ## Everything CI checks: format, lint, types, tests

format: $(STAMP) ## Rewrite files in the house format and apply safe lint fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

lock: ## Re-resolve dependencies into constraints.txt (newest versions that fit pyproject.toml)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev,bench]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .lock-venv

migration: $(STAMP) ## New Alembic migration from model changes: make migration m="what changed"
	$(BIN)/python -m chainconsult.infra.db.new_migration "$(m)"

api-guide: $(STAMP) ## Regenerate docs/api-versions.md (the v1 -> v2 migration guide) from the declared changes
	$(BIN)/chainconsult api-guide --output docs/api-versions.md

config-reference: $(STAMP) ## Regenerate docs/configuration.md (every setting, its default and meaning) from the settings
	$(BIN)/chainconsult config-reference --output docs/configuration.md

bench-health: $(STAMP) ## Health endpoint latency under wrk load (BENCH_DATABASE_URL, BENCH_REDIS_URL)
	$(BIN)/python bench/health_load.py

chaos: $(STAMP) ## Chaos scenarios on private PostgreSQL/Redis (Redis killed, connections terminated, job and server workers SIGKILLed)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

multihost: $(STAMP) ## Two API nodes and two job workers in network namespaces sharing PostgreSQL and Redis (needs root)
	$(BIN)/python -m bench.multihost

bench: $(STAMP) ## Load scenarios vs the peer stack and a bare route, 10,000 held connections (< 10 min; rewrites its section of bench/RESULTS.md)
	$(BIN)/python -m bench.load --output bench/RESULTS.md $(BENCH_ARGS)

soak: $(STAMP) ## 5 minutes of mixed traffic, worker RSS growth (rewrites its section of bench/RESULTS.md)
	$(BIN)/python -m bench.load --soak --output bench/RESULTS.md $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches (keeps ./var, the embedded database)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
