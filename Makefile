# Fulfil: event-driven order fulfilment. `make up` runs it, `make test` proves it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install up down status test unit integration e2e browser lint check-deploy audit lock bench chaos fuzz clean

help:
	@echo "make up           start Kafka, PostgreSQL and every service (no Docker needed)"
	@echo "make down         stop everything 'make up' started"
	@echo "make test         install, start a fresh Kafka and PostgreSQL, run all three tiers below"
	@echo "make unit         the fast tests that need nothing running"
	@echo "make integration  tests on a fresh Kafka and PostgreSQL, without the services running"
	@echo "make e2e          the whole platform on a fresh Kafka and PostgreSQL (tests/e2e, fuzz, chaos)"
	@echo "make browser      Debian's Chromium for the console's browser tests (apt-get when missing)"
	@echo "make fuzz         schemathesis over the public API, longer than in make test (FUZZ_* settings)"
	@echo "make lint         ruff, the architecture contracts, the docs' links, check-deploy"
	@echo "make check-deploy compose file, Dockerfile and Kubernetes manifests, offline (needs Go once)"
	@echo "make audit        pip-audit over the locked dependencies"
	@echo "make lock         re-lock requirements*.txt (with hashes) from requirements*.in"
	@echo "make bench        the benchmarks in bench/ (not part of make test)"
	@echo "make chaos        infrastructure faults under load, full outages (not part of make test)"

$(STAMP): requirements.txt requirements-dev.txt deploy/install_paths.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(PY) deploy/install_paths.py
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(PY) -m deploy.local up

down: $(STAMP)
	$(PY) -m deploy.local down

status: $(STAMP)
	$(PY) -m deploy.local status

test: $(STAMP) browser
	$(PY) -m deploy.local infra -- $(PY) -m pytest --durations=15 $(PYTEST_ARGS)

# Debian's Chromium for the console's browser tests (apt-get when /usr/bin/chromium is missing)
browser:
	$(PYTHON) deploy/install_browser.py

# The tiers by marker: `e2e` is set by path and `integration` by the `infrastructure`
# fixture (root conftest.py); e2e tests may carry `integration` as well.
unit: $(STAMP)
	$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

integration: $(STAMP)
	$(PY) -m deploy.local infra -- $(PY) -m pytest -m "integration and not e2e" $(PYTEST_ARGS)

e2e: $(STAMP) browser
	$(PY) -m deploy.local infra -- $(PY) -m pytest -m e2e $(PYTEST_ARGS)

# The run inside `make test` is short and seeded; this one is longer and picks a new seed.
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-100} FUZZ_STATEFUL_EXAMPLES=$${FUZZ_STATEFUL_EXAMPLES:-200} \
	FUZZ_STATEFUL_STEPS=$${FUZZ_STATEFUL_STEPS:-10} FUZZ_SEED=$${FUZZ_SEED:-random} \
	$(PY) -m deploy.local infra -- $(PY) -m pytest tests/fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) deploy/check_docs.py
	$(PY) deploy/check_deploy.py

# kustomize and the compose schema are fetched once through Go's module proxy (.cache/tools)
check-deploy: $(STAMP)
	$(PY) deploy/check_deploy.py

audit: $(STAMP)
	$(PY) deploy/audit.py requirements-dev.txt

# Needs PyPI; pip-tools runs from a throwaway environment so the lock does not lock itself.
lock:
	$(PYTHON) -m venv .cache/lockenv
	.cache/lockenv/bin/pip install -q pip-tools==7.6.2
	.cache/lockenv/bin/pip-compile -q --generate-hashes --allow-unsafe --no-emit-find-links --strip-extras -o requirements.txt requirements.in
	.cache/lockenv/bin/pip-compile -q --generate-hashes --allow-unsafe --no-emit-find-links --strip-extras -o requirements-dev.txt requirements-dev.in

bench: $(STAMP)
	$(PY) bench/run_all.py

chaos: $(STAMP)
	$(PY) -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
