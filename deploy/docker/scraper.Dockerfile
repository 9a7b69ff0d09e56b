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
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 assistant
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "jenkins-assistant[scraper]" && rm -rf /wheels
USER 10001
ENV SCRAPER_HOST=0.0.0.0 SCRAPER_PORT=50071 SCRAPER_METRICS_PORT=9471
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
  CMD ["python", "-m", "jenkins_assistant.common.healthcheck", "127.0.0.1:50071", "--timeout", "3"]
EXPOSE 50071 9471
ENTRYPOINT ["python", "-m", "jenkins_assistant.scraper.server"]
