# lightning_mad: the front door. `make help` lists the targets.
# Every target depends on `install`, so a fresh machine needs no other set-up step.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
export WANDB_MODE ?= offline

PROFILE   ?= budget
# empty (default): every table row trains the fixed optimiser steps of its registry entry (the same numbers on every
# machine); TABLE_BUDGET=<minutes at a GEMM peak of 220 GFLOP/s> trains each row for a wall-clock budget instead
TABLE_BUDGET ?=
DATA      ?= sample
DATA_ROOT ?=
SEEDS     ?= 0
ARGS      ?=

BUDGET    ?= 10
# the results files the docs quote (docs/results/<name>/): tables, csv, provenance, timing
TABLE_OUT ?= docs/results/poster-$(DATA)
MIR1K_OUT ?= docs/results/mir1k-benchmark

.PHONY: help install test test-full lint smoke reproduce-table mir1k-benchmark bench gpu-slim gpu-check clean

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then echo "installing ffmpeg (needed by musdb/stempeg)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null); \
	  else echo "ffmpeg is missing: install it (e.g. sudo apt-get install ffmpeg); musdb needs it"; exit 1; fi; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' $(TORCH)
	@touch $(STAMP)

install: $(STAMP)  ## create .venv, install torch (pinned) + the package + test extras, and ffmpeg if missing

test: install  ## fast test suite (under ~15 min on 2 CPU cores)
	$(BIN)/python -m pytest -m "not slow and not gpu" $(ARGS)

test-full: install  ## every test, slow ones included
	$(BIN)/python -m pytest -m "not gpu" $(ARGS)

lint: install  ## ruff over lightning_mad/ (rules in pyproject.toml)
	$(BIN)/ruff check lightning_mad

smoke: install  ## tiny CPU train (4 steps) + separate with the checkpoint it trained, through the CLI
	$(BIN)/lightning-mad train experiment=tiny profile=quick optim.max_steps=4 trainer.limit_val_batches=1 \
	  logger.wandb=false output_dir=runs/smoke run_name=tiny-4steps
	$(BIN)/lightning-mad separate "data/sample/musdb18/test/The Easton Ellises - Falcon 69.stem.mp4" \
	  --checkpoint runs/smoke/tiny-4steps/checkpoints/last.ckpt -o runs/smoke/separated --quiet

reproduce-table: install  ## train + evaluate every table row (default: bundled sample, each row's registry steps)
	$(BIN)/lightning-mad table profile=$(PROFILE) $(if $(TABLE_BUDGET),budget=$(TABLE_BUDGET),fixed_steps=true) \
	  data=$(DATA) $(if $(DATA_ROOT),data.root=$(DATA_ROOT)) seeds=$(SEEDS) out=$(TABLE_OUT) $(ARGS)

mir1k-benchmark: install  ## every row trained BUDGET minutes (at GEMM 220, scaled) on MIR-1K's training singers, scored on the others
	$(BIN)/lightning-mad mir1k-benchmark budget=$(BUDGET) $(if $(DATA_ROOT),data.root=$(DATA_ROOT)) out=$(MIR1K_OUT) \
	  $(ARGS)

bench: install  ## speed and memory benchmarks (prints figures and ratios)
	@# Open-Unmix's model class is the speed reference; --no-deps keeps torchaudio (and a CUDA torch) out
	$(BIN)/pip show -q openunmix >/dev/null 2>&1 || $(BIN)/pip install -q --disable-pip-version-check --no-deps openunmix==1.3.0
	$(BIN)/python -m benchmarks.run_all $(ARGS)

gpu-slim:  ## build .gpu-slim/, what the GPU check needs (code, 22 clips, audio wheels for Python 3.12; ~12 MiB)
	bash benchmarks/gpu_check.sh slim .gpu-slim

gpu-check:  ## the device check (docs/benchmarks.md "GPU"): on a GPU machine, from .gpu-slim/; DEVICE=cpu rehearses it here
	PYTHON=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) bash benchmarks/gpu_check.sh run

clean:  ## remove caches and run outputs (keeps .venv)
	rm -rf runs results wandb .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
