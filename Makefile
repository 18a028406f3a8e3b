# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit venv lock clean help docs docs-serve
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml requirements.lock examples/spiky/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The image's exact dependencies first (hash-checked), so the tests run what the image runs.
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q -e '.[dev]' -e examples/spiky
	touch $@

venv: $(STAMP)  ## create .venv with the simulator, dev tools and the example plugin

run: $(STAMP)  ## run the simulator with every built-in plugin on :9123
	$(BIN)/simulator serve

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict on simulator/ and plugins/
	$(BIN)/mypy simulator plugins

unit: $(STAMP)  ## pytest without the container and terraform tests
	$(BIN)/pytest -m 'not container and not terraform'

test: lint typecheck terraform-tools $(STAMP)  ## the whole suite: lint, types, unit, real-server, container and terraform tests
	$(BIN)/pytest

docs: $(STAMP)  ## build the docs site into site/ (mkdocs build --strict)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)  ## preview the docs site on http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

lock: $(STAMP)  ## re-resolve requirements.lock (the image's pinned, hashed dependencies) from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' --quiet -o requirements.lock

clean:  ## remove the virtualenvs and caches
	rm -rf $(VENV) .venv-tools .mypy_cache .ruff_cache .pytest_cache

include terraform/terraform.mk

bench/.tools/node_modules/wiremock:
	-npm install --silent --prefix bench/.tools wiremock

.PHONY: bench bench-smoke bench-fargate
bench: $(STAMP) bench/.tools/node_modules/wiremock  ## benchmark against nginx and WireMock (~6 min): bench/results/
	$(BIN)/python -m pip install -q matplotlib
	$(BIN)/python bench/run.py

bench-smoke: $(STAMP)  ## a short run of the benchmark harness (numbers mean nothing)
	$(BIN)/python bench/run.py --smoke --servers simulator --out bench/results/smoke

bench-fargate: $(STAMP)  ## the image and nginx under Fargate's CPU/memory limits (~15 min): bench/results/fargate.md
	$(BIN)/python bench/fargate.py $(BENCH_FARGATE_ARGS)
