# snnx — `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision pinned to the releases this machine's pip serves from disk.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: help install run test test-full clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install snnx with its test tools

run: $(STAMP)  ## run the embedded default: train, convert, simulate, print a table
	$(BIN)/snnx run

test: $(STAMP)  ## the default test suite (no `slow` tests), < 10 min on 2 cores
	$(BIN)/python -m pytest -q

test-full: $(STAMP)  ## every test, including the slow ones
	$(BIN)/python -m pytest -q -m ''

clean:  ## remove outputs (the artifact cache too)
	rm -rf outputs multirun
