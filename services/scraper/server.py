"""Scraper service entry point: `python -m jenkins_assistant.scraper.server` (settings: SCRAPER_*).

The service is ready as soon as it can write its output and state folders; scrapes run as
background jobs started over gRPC (the nightly batch uses the CLI instead).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from jenkins_assistant.common.grpc_server import GrpcServer, build_server, serve_until_signal
from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.scraper.config import ScraperServerSettings
from jenkins_assistant.scraper.core import ScrapeJobs, configured_sources
from jenkins_assistant.scraper.servicer import ScraperServicer
from jenkins_assistant.v1 import scraper_pb2, scraper_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = scraper_pb2.DESCRIPTOR.services_by_name["ScraperService"].full_name


def build_scraper_server(settings: ScraperServerSettings, jobs: ScrapeJobs) -> GrpcServer:
    def register(server) -> list[str]:
        scraper_pb2_grpc.add_ScraperServiceServicer_to_server(ScraperServicer(jobs), server)
        return [SERVICE_NAME]

    return build_server(settings, "scraper", register)


async def run(settings: ScraperServerSettings) -> None:
    for folder in (settings.output_dir, settings.state_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)  # fail fast on an unwritable volume
    jobs = ScrapeJobs(settings, max_jobs=settings.max_jobs)
    grpc_server = build_scraper_server(settings, jobs)

    async def on_start() -> None:
        await grpc_server.set_serving(True)

    await serve_until_signal(grpc_server, settings, on_start=on_start)


def main() -> None:
    settings = ScraperServerSettings()
    configure_logging(settings.log_level)
    log.info("scraper service: output=%s state=%s sources=%s", settings.output_dir, settings.state_dir,
             configured_sources(settings))
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
