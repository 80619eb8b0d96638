# Argo CD Portal: `make demo` runs everything locally, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
DEMO_INSTANCES ?= 3
DEMO_APPS ?= 60
DEMO_PORT ?= 8000
DEMO_SIM_PORT ?= 8081
DEMO_OIDC_PORT ?= 8090
TEST_PROCESSES ?= 3

.PHONY: help venv install install-dev services lint format migrate test demo clean

help:
	@echo "make demo   - install, migrate, seed, and run the portal with simulated Argo CD instances"
	@echo "make test   - lint and run the whole test suite on PostgreSQL, Redis and a real Celery worker"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(PY)

install: $(PY)
	$(PIP) install --quiet -r requirements.txt

install-dev: $(PY)
	$(PIP) install --quiet -r requirements-dev.txt

services:
	./.ci/services.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

test: install-dev services lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -n $(TEST_PROCESSES) --dist loadfile

demo: migrate
	$(PY) manage.py demo --instances $(DEMO_INSTANCES) --apps $(DEMO_APPS) --port $(DEMO_PORT) --sim-port $(DEMO_SIM_PORT) --oidc-port $(DEMO_OIDC_PORT)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
