# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes: one per core of the 2-core machines the suite is sized for (pytest-xdist);
# each starts its own throwaway PostgreSQL.
PYTEST_WORKERS ?= 2

.PHONY: run test migrate schema check format bench soak clean postgres messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP) migrate
	$(BIN)/integration-api serve

migrate: $(STAMP)
	$(BIN)/integration-api migrate

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Schema fuzzing at length (tests/fuzz; `make test` sends 2,000): 20,000 generated operations,
# 12,000 on SQLite then 8,000 on PostgreSQL; prints the figures. FUZZ_SEED=<n> replays a run.
FUZZ_OPERATIONS ?= 20000
fuzz: $(STAMP)
	bash scripts/ensure-postgres.sh
	FUZZ_OPERATIONS=$(FUZZ_OPERATIONS) $(BIN)/python -m pytest tests/fuzz -p no:xdist -q -rP \
		--show-capture=stdout

schema: $(STAMP)
	$(BIN)/integration-api export-schema --output schema.graphql

# Messages (gql_api.i18n): extract _("…") texts into the template, merge it into the Korean
# catalog (new texts arrive untranslated: tests/test_i18n.py fails until they are), compile.
LOCALE_DIR := gql_api/locale
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F $(LOCALE_DIR)/babel.cfg -k _n:1,2 --no-location \
		--sort-output --project integration-api -o $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel -q update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l ko \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel -q compile -d $(LOCALE_DIR) -l ko

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Performance targets, side by side (bench/README.md); BENCH_DB=postgresql for PostgreSQL.
# A quick check: BENCH_ONLY=api|workers|delivery, or fewer BENCH_ROUNDS / shorter BENCH_DURATION or
# BENCH_WARMUP than the defaults (5 / 5 s / 2 s); written to bench/out/, not bench/results.md.
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Soak (bench/soak.py): 60 s of mixed load at 32 clients against `serve --workers 2` and a
# delivery worker on a throwaway PostgreSQL; checks 5xx, lost writes and events, memory.
# SOAK_SECONDS=10 for a quick look (written to bench/out/, not bench/soak-results.md).
soak: $(STAMP)
	$(BIN)/python bench/soak.py

# A throwaway PostgreSQL as `make test` starts one; prints its DATABASE_URL, Ctrl-C stops it.
postgres: $(STAMP)
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m tests.pg_server

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
