# Two entry points (see README): `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# botocore needs python-dateutil<3; without the pin pip backtracks for a very long time.
PIP_PINS := "python-dateutil<3"
# Where the npm registry's certificate chain is only trusted through the system bundle
# (as on our CI machines), jlpm needs to be pointed at it; elsewhere this stays empty.
export NODE_EXTRA_CA_CERTS ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
# package.json scripts call jlpm (shipped by jupyterlab in the venv) by name.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test setup lint typecheck pytest bench clean runner-image e2e-cluster

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]" $(PIP_PINS)
	touch $@

setup: $(VENV)/.installed

demo: setup
	cd binder && ../$(BIN)/jupyter mlk graph iris.ipynb
	cd binder && ../$(BIN)/jupyter mlk run iris.ipynb
	cd binder && ../$(BIN)/jupyter mlk runs --limit 3
	cd binder && ../$(BIN)/jupyter mlk compile iris.ipynb -o iris.yaml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/jlpm install --immutable
	$(BIN)/jlpm lint:check
	$(BIN)/jlpm test

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/bench_steps.py
	$(BIN)/python bench/bench_values.py
	$(BIN)/python bench/bench_compile.py

# The runner image for clusters (needs a Docker engine): see docker/Dockerfile.
RUNNER_IMAGE ?= jupyter-mlk-runner:0.1.0
runner-image: setup
	$(BIN)/python -m pip wheel --no-deps -w dist .
	docker build -f docker/Dockerfile -t $(RUNNER_IMAGE) .

# The end-to-end check on a real cluster; says why and skips without one.
e2e-cluster: setup
	scripts/e2e-cluster

clean:
	rm -rf $(VENV) binder/.mlk binder/model binder/iris.yaml
