# The two quick-start commands: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
UV     := uv==0.13.9
# What a clinic's server runs (requirements.lock), and that plus what tests and benchmarks need:
# pytest and the optional Korean model (requirements-dev.lock). Both are written by `make lock`.
RUN_LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench lock system-deps clean

# Every dependency at the version and with the hashes of a lock file, then this project itself
# without resolving anything again (and with the lock's setuptools, so nothing unhashed is fetched).
define install
	@PYTHON=$(PYTHON) scripts/ensure-system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@
endef

$(RUN_STAMP): pyproject.toml $(RUN_LOCK)
	$(call install,$(RUN_LOCK))

$(DEV_STAMP): pyproject.toml $(DEV_LOCK)
	$(call install,$(DEV_LOCK))
	@touch $(RUN_STAMP)

## lock: write both lock files from pyproject.toml (every Python 3.11+ platform, with hashes);
## pins already in them are kept unless asked: make lock UPGRADE=--upgrade
COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' --quiet $(UPGRADE)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(UV)'
	$(COMPILE) -o $(RUN_LOCK)
	$(COMPILE) --extra dev --extra korean --extra multilingual -o $(DEV_LOCK)

system-deps:
	@PYTHON=$(PYTHON) scripts/ensure-system-deps

## run: start web server and worker with embedded defaults (SQLite, embedded Redis, sandbox carrier)
run: $(RUN_STAMP)
	@scripts/dev-run

# Test processes at once (pytest-xdist): one per core, at most four. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

## test: the whole suite, on SQLite and also on PostgreSQL when one answers on 127.0.0.1:5432
## (IVR_TEST_REQUIRE_POSTGRES=1, as CI sets it: fail instead when none answers)
test: $(DEV_STAMP)
	@if [ -z "$$IVR_TEST_DATABASE_URL" ] && $(BIN)/python scripts/postgres-answers "$(PG_URL)"; then \
		export IVR_TEST_DATABASE_URL="$(PG_URL)"; \
	fi; \
	if [ -n "$$IVR_TEST_DATABASE_URL" ]; then echo "databases: SQLite and PostgreSQL"; \
	elif [ -n "$$IVR_TEST_REQUIRE_POSTGRES" ] && [ "$$IVR_TEST_REQUIRE_POSTGRES" != 0 ]; then \
		echo "error: IVR_TEST_REQUIRE_POSTGRES is set but no PostgreSQL answered at $(PG_URL)" >&2; exit 1; \
	else echo "WARNING: databases: SQLite only (no PostgreSQL answered on 127.0.0.1:5432)"; fi; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

## bench: webhook latency through gunicorn beside a bare endpoint, campaign planning and pace, then speech
bench: $(DEV_STAMP)
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/outreach.py
	$(BIN)/python bench/speech.py

clean:
	rm -rf $(VENV) instance .pytest_cache
