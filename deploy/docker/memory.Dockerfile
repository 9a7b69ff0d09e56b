# Memory service image: gRPC over Redis. Build from the repo root:
#   docker build -f deploy/docker/memory.Dockerfile -t jenkins-assistant/memory .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos protos
COPY services services
COPY training-job/trainer training-job/trainer
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[memory]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 assistant
COPY --from=build /wheels /wheels
# No version pin: with --no-index the only candidates are the wheels the build stage resolved into /wheels, so
# this installs exactly those versions.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "jenkins-assistant[memory]" && rm -rf /wheels
USER 10001
ENV MEMORY_HOST=0.0.0.0 MEMORY_PORT=50061 MEMORY_METRICS_PORT=9461
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
  CMD ["python", "-m", "jenkins_assistant.common.healthcheck", "127.0.0.1:50061", "--timeout", "3"]
EXPOSE 50061 9461
ENTRYPOINT ["jenkins-assistant-memory"]
