# RefusalLab developer commands. `make` alone lists them.
VENV   ?= .venv
PYTHON ?= python3.11
CELERY := $(VENV)/bin/celery

.DEFAULT_GOAL := help
.PHONY: help demo test lint format audit worker gpu-worker clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-11s %s\n", $$1, $$2}'

demo: ## run the platform locally with the demo studies (PostgreSQL/Redis if reachable, else SQLite + in-process tasks)
	@bash scripts/demo.sh

test: ## install everything (incl. Debian chromium), lint, run the whole suite; pytest args via ARGS="..."
	@bash scripts/test.sh $(ARGS)

lint: $(VENV)/bin/ruff ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

audit: $(VENV)/bin/ruff ## pip-audit the pinned requirements (fails on a known vulnerability; warns when the advisory service is unreachable)
	$(VENV)/bin/python scripts/audit.py

format: $(VENV)/bin/ruff ## ruff fix + format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

worker: $(CELERY) ## Celery worker for the default queue (needs DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY or DEBUG=1)
	$(CELERY) -A config worker -Q default -l info

gpu-worker: $(VENV)/.gpu-extra ## Celery worker for the gpu queue: one process, one batch at a time (one per GPU: docs/gpu-hosts.md)
	$(CELERY) -A config worker -Q gpu --concurrency 1 --prefetch-multiplier 1 -n gpu@%h -l info

clean: ## remove the virtualenv, local data (var/) and collected static files
	rm -rf $(VENV) var staticfiles

$(CELERY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e .

# The `gpu` extra (torch + transformers) on top of the base install.
$(VENV)/.gpu-extra: $(CELERY)
	$(VENV)/bin/python -m pip install -q -e '.[gpu]'
	touch $@

$(VENV)/bin/ruff:
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
