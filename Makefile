# Development tasks. `make` alone lists them.
#   make demo   the example project with demo data on http://127.0.0.1:8000
#   make test   the package suite and the example project's tests

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
DEMO_ADDR ?= 127.0.0.1:8000
DEMO_DATABASE_URL ?= sqlite:///$(CURDIR)/example_project/db.sqlite3
SCALE ?= 1
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install demo test test-package test-example lint format docs bench clean distclean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is needed; try: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the package metadata changed.
# Not -q: the first install downloads ~80 packages (a couple of minutes), so show them.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	@echo "==> Installing django-engagement (editable) with the [dev] extras into $(VENV)"
	@echo "    (first run: about 2 minutes; later runs reinstall only when setup.cfg changes)"
	$(BIN)/pip install -e '.[dev]'
	@echo "==> $(VENV) is ready"
	@touch $@

install: $(STAMP) ## Create .venv and install the package (editable) with the dev extras

demo: $(STAMP) ## Migrate and seed the example project (SQLite), then run it on 127.0.0.1:8000
	cd example_project && DATABASE_URL=$(DEMO_DATABASE_URL) ../$(BIN)/python manage.py migrate --noinput -v0
	cd example_project && DATABASE_URL=$(DEMO_DATABASE_URL) ../$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Log in:        admin / admin   (demo users: user001 ... / demo)"
	@echo "  Admin:         http://$(DEMO_ADDR)/admin/"
	@echo "  Dashboard:     http://$(DEMO_ADDR)/admin/django_engagement/dashboard/"
	@echo "  API root:      http://$(DEMO_ADDR)/api/engagement/activity-feed/"
	@echo "  OpenAPI:       http://$(DEMO_ADDR)/api/schema/"
	@echo
	cd example_project && DATABASE_URL=$(DEMO_DATABASE_URL) ../$(BIN)/python manage.py runserver $(DEMO_ADDR)

# Both suites run even when the first fails; the exit status reports either failure.
test: $(STAMP) ## Run the package suite and the example project's tests
	@status=0; \
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS) || status=$$?; \
	(cd example_project && ../$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)) || status=$$?; \
	exit $$status

test-package: $(STAMP) ## Run the package suite (SQLite unless DATABASE_URL is set)
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-example: $(STAMP) ## Run the example project's tests (example_project/tests)
	cd example_project && ../$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP) ## Check lint and formatting with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Fix lint and formatting with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP) ## Build the HTML docs into docs/_build (warnings are errors)
	$(BIN)/sphinx-build -W -q -b html docs docs/_build

bench: $(STAMP) ## Run the benchmarks (SCALE=0.1 for a quick look; DATABASE_URL for PostgreSQL)
	$(BIN)/python benchmarks/run.py --scale $(SCALE)

clean: ## Remove build output, caches, the demo database and benchmark files
	rm -rf build dist *.egg-info docs/_build .pytest_cache .ruff_cache .coverage htmlcov
	rm -rf example_project/db.sqlite3 example_project/staticfiles benchmarks/results benchmarks/bench.sqlite3
	find . -path ./$(VENV) -prune -o -path ./.tox -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean ## Also remove .venv and .tox
	rm -rf $(VENV) .tox
