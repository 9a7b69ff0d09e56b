# Browser chat UI: the HTTP gateway (FastAPI + Server-Sent Events) over the inference service's gRPC API.
# Build from the repo root:
#   docker build -f deploy/docker/gateway.Dockerfile -t jenkins-assistant/gateway .
# No model here: it needs only GATEWAY_INFERENCE_TARGET (and GATEWAY_INFERENCE_TOKEN when inference has one).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos protos
COPY services services
COPY training-job/trainer training-job/trainer
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[gateway]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 assistant
COPY --from=build /wheels /wheels
# No version pin: with --no-index the only candidates are the wheels the build stage resolved into /wheels, so
# this installs exactly those versions.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "jenkins-assistant[gateway]" && rm -rf /wheels
USER 10001
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8080
# Liveness of the gateway itself (/readyz tells whether the inference service answers).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
EXPOSE 8080
ENTRYPOINT ["jenkins-assistant-gateway"]
