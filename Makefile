# The two quick-start commands: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: run test bench lock system-deps clean

LOCK   := requirements.lock
UV     := uv==0.13.9

# Every dependency at the version and with the hashes in requirements.lock (made by `make lock`),
# then this project itself without resolving anything again.
$(STAMP): pyproject.toml $(LOCK)
	@PYTHON=$(PYTHON) scripts/ensure-system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## lock: write requirements.lock from pyproject.toml (every Python 3.11+ platform, with hashes);
## pins already in it are kept unless asked: make lock UPGRADE=--upgrade
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(UV)'
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra korean --extra multilingual --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command 'make lock' --quiet $(UPGRADE) -o $(LOCK)

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
