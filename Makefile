# One-command set-up: every target installs what it needs into .venv from the lockfile.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup tools browser test lint format demo lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Real npm-ecosystem tools for the tests (verdaccio, yarn 1, yarn berry, pnpm 10, bun), pinned by
# tests/registry/package-lock.json; reinstalled only when that lockfile changes. The private userconfig
# keeps the machine user's ~/.npmrc out; npm_config_* variables (a CI mirror or proxy) still apply.
TOOLS_DIR := tests/registry
TOOLS_STAMP := $(TOOLS_DIR)/node_modules/.installed

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(TOOLS_DIR)/package-lock.json
	cd $(TOOLS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --userconfig tools.npmrc
	touch $(TOOLS_STAMP)

# A real browser for the HTML report tests: Debian's chromium (no browser download works here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	     (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null)); \
	  else \
	    echo "the tests need chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	  fi; }

# pytest-xdist: one worker per core, at most 4; a test file stays on one worker (its registry,
# moto server and other module fixtures are started once). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(STAMP) $(TOOLS_STAMP) browser
	$(BIN)/ruff check runbook steps tests
	$(BIN)/ruff format --check runbook steps tests
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check runbook steps tests bench

format: $(STAMP)
	$(BIN)/ruff format runbook steps tests bench
	$(BIN)/ruff check --fix runbook steps tests bench

demo: $(STAMP)
	$(BIN)/python -m runbook.demo

# Re-pin every dependency (needs pip-tools; not part of the normal set-up).
lock:
	pip-compile --quiet --extra dev --extra fleet --extra exercise --generate-hashes --allow-unsafe --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
