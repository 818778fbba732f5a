# The two quick-start commands: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: run test bench system-deps clean

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) scripts/ensure-system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,korean]'
	@touch $(STAMP)

system-deps:
	@PYTHON=$(PYTHON) scripts/ensure-system-deps

## run: start web server and worker with embedded defaults (SQLite, embedded Redis, sandbox carrier)
run: $(STAMP)
	@scripts/dev-run

## test: the whole suite, on SQLite and also on PostgreSQL when one answers on 127.0.0.1:5432
## (IVR_TEST_REQUIRE_POSTGRES=1, as CI sets it: fail instead when none answers)
test: $(STAMP)
	@if [ -z "$$IVR_TEST_DATABASE_URL" ] && $(BIN)/python scripts/postgres-answers "$(PG_URL)"; then \
		export IVR_TEST_DATABASE_URL="$(PG_URL)"; \
	fi; \
	if [ -n "$$IVR_TEST_DATABASE_URL" ]; then echo "databases: SQLite and PostgreSQL"; \
	elif [ -n "$$IVR_TEST_REQUIRE_POSTGRES" ] && [ "$$IVR_TEST_REQUIRE_POSTGRES" != 0 ]; then \
		echo "error: IVR_TEST_REQUIRE_POSTGRES is set but no PostgreSQL answered at $(PG_URL)" >&2; exit 1; \
	else echo "WARNING: databases: SQLite only (no PostgreSQL answered on 127.0.0.1:5432)"; fi; \
	$(BIN)/python -m pytest

## bench: webhook latency through gunicorn beside a bare endpoint, then speech recognition
bench: $(STAMP)
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/speech.py

clean:
	rm -rf $(VENV) instance .pytest_cache
