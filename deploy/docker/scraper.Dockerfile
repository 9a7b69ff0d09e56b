# Scraper image: batch CLI (Kubernetes CronJob) and the gRPC scraper service. Build from the repo root:
#   docker build -f deploy/docker/scraper.Dockerfile -t jenkins-assistant/scraper .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos protos
COPY services services
COPY training-job/trainer training-job/trainer
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[scraper]"

FROM python:3.11-slim
# No apt version pins: Debian's archive keeps only the current build of a package, so a pin breaks the build at
# the next security update; the versions follow the base image's Debian release.
# /var/lib/assistant exists and belongs to the service user: Docker gives a new named volume its mount point's
# owner, so compose's assistant-data volume is writable by uid 10001.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 assistant \
    && mkdir -p /var/lib/assistant && chown 10001:10001 /var/lib/assistant
COPY --from=build /wheels /wheels
# No version pin: with --no-index the only candidates are the wheels the build stage resolved into /wheels, so
# this installs exactly those versions.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "jenkins-assistant[scraper]" && rm -rf /wheels
USER 10001
ENV SCRAPER_HOST=0.0.0.0 SCRAPER_PORT=50071 SCRAPER_METRICS_PORT=9471
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
  CMD ["python", "-m", "jenkins_assistant.common.healthcheck", "127.0.0.1:50071", "--timeout", "3"]
EXPOSE 50071 9471
ENTRYPOINT ["python", "-m", "jenkins_assistant.scraper.server"]
