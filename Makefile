# Two commands for a new user: `make run` starts the stack, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run stop status test test-fast lint bench clean

setup: $(STAMP) .env var/run

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
		|| $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)
	@echo "installed: $(VENV) (pinned by requirements.lock)"

# .env names the account: private to you (the stack refuses to start while others may read it)
.env:
	@(umask 077 && cp .env.example .env) && chmod 600 .env
	@echo "created .env from .env.example, mode 600 (edit it to change settings)"

# the default VAR_DIR; bin/stack start makes any VAR_DIR private (and group-readable logs with FILE_GROUP)
var/run:
	@(umask 077 && mkdir -p var/run var/log var/data) && chmod 700 var var/run var/log var/data

run: setup
	@$(PY) bin/stack start

stop:
	@test -x $(PY) && $(PY) bin/stack stop || echo "nothing to stop (no .venv)"

status: setup
	@$(PY) bin/stack status

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --scripts-are-modules $(wildcard bin/*)

# two workers, one test file each at a time: most integration tests wait on real processes, so two at once keep
# the whole suite under five minutes on two cores (tests/conftest.py: every file's sockets and homes are its own)
test: lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

# the developer's loop: every test that starts no process and opens no socket to one (tests/conftest.py marks them)
test-fast: setup
	$(VENV)/bin/pytest -q -m "not integration"

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: stop
	rm -rf var
