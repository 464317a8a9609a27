# Tuneboard: `make run` runs it, `make test` tests it. Both bootstrap everything they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.requirements-run
DEV_STAMP := $(VENV)/.requirements-dev
TRAIN_STAMP := $(VENV)/.requirements-train

.PHONY: run test lint typecheck format browser e2e

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Tuneboard needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	$(PYTHON) -m venv $(VENV)

# pip runs only when a requirements file is newer than the stamp, so this is a no-op when
# everything is up to date.
$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(RUN_STAMP) $@

# The training stack for the self-hosted tests (torch, transformers) and the client package.
$(TRAIN_STAMP): requirements-train.txt client/pyproject.toml | $(DEV_STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-train.txt
	@touch $@

run: $(RUN_STAMP)
	@exec $(PY) -m runtime run

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

# mypy (strict, django-stubs) over the packages listed in pyproject.toml [tool.mypy] files.
# django-stubs loads the settings, which need secrets: DEBUG=true lets them use (or generate)
# the development ones under var/.
typecheck: $(DEV_STAMP)
	DEBUG=true $(PY) -m mypy

format: $(DEV_STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Chromium for tests/e2e: apt-get installs it when missing (as root); only CI (CI=true) fails
# without it, elsewhere the browser tests are skipped with a message.
browser: $(DEV_STAMP)
	@$(PY) -m runtime.browser

test: lint typecheck browser $(TRAIN_STAMP)
	@exec $(PY) -m runtime test $(PYTEST_ARGS)

e2e: browser
	@exec $(PY) -m runtime test tests/e2e -m e2e $(PYTEST_ARGS)
