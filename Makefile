# mp3mesh: `make up` runs the whole mesh on this machine, `make test` runs every test.
# Both set themselves up on a fresh machine (venv, pinned packages, system services).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help up demo test lint gen lock vendor-protos baseline install system clean images

help:
	@echo "make up    - run the whole mesh locally (Ctrl-C stops it)"
	@echo "make test  - run every test"
	@echo "make demo  - convert a sample against the running mesh"
	@echo "make gen   - regenerate gen/ from proto/"
	@echo "make lint  - ruff, mypy, buf lint"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/uv pip install -q -p $(BIN)/python -r requirements.lock
	@$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

system:
	@scripts/ensure-system.sh

up: install
	@NEED_FFMPEG=0 scripts/ensure-system.sh
	@$(BIN)/python -m devmesh up

demo: install
	@$(BIN)/python -m devmesh demo

test: install system
	@$(BIN)/python -m pytest

lint: install
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy . && $(BIN)/buf lint

gen: install
	@$(BIN)/buf generate

baseline: install
	@$(BIN)/buf build proto --exclude-source-info -o buf.baseline.json

lock: install
	@$(BIN)/uv pip compile requirements.in -p 3.11 --no-emit-package mp3mesh --custom-compile-command 'make lock' -o requirements.lock

vendor-protos: install
	@cp $(VENV)/lib/python3.11/site-packages/google/api/{annotations,http,field_behavior}.proto third_party/googleapis/google/api/

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

-include mk/images.mk
