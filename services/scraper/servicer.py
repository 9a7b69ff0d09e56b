"""gRPC transport of the scraper service: protobuf <-> domain objects, nothing else.

Scrapes are long, blocking batch work: the servicer only starts a job (a background thread in
`ScrapeJobs`) and reads its state; dataset listing reads small report files in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.common.records import source_kind_from_pb, source_kind_to_pb
from jenkins_assistant.scraper.core import (
    JOB_FAILED,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    ScrapeJob,
    ScrapeJobs,
)
from jenkins_assistant.scraper.dataset import DatasetInfo
from jenkins_assistant.v1 import common_pb2, scraper_pb2, scraper_pb2_grpc

JOB_STATES = {
    JOB_QUEUED: scraper_pb2.JOB_STATE_QUEUED,
    JOB_RUNNING: scraper_pb2.JOB_STATE_RUNNING,
    JOB_SUCCEEDED: scraper_pb2.JOB_STATE_SUCCEEDED,
    JOB_FAILED: scraper_pb2.JOB_STATE_FAILED,
}


def _timestamp(moment: datetime | str | None) -> Timestamp | None:
    if not moment:
        return None
    stamp = Timestamp()
    if isinstance(moment, str):
        stamp.FromJsonString(moment)
    else:
        stamp.FromDatetime(moment)
    return stamp


def sources_from_pb(values) -> list[str]:
    sources = []
    for value in values:
        if value == common_pb2.SOURCE_KIND_UNSPECIFIED or value not in common_pb2.SourceKind.values():
            raise InvalidInput(f"invalid source kind {value}")
        sources.append(source_kind_from_pb(value))
    return sources


def job_to_pb(job: ScrapeJob) -> scraper_pb2.ScrapeJob:
    message = scraper_pb2.ScrapeJob(
        job_id=job.job_id,
        state=JOB_STATES[job.state],
        error=job.error,
        dataset_version=job.dataset_version,
        progress=[
            scraper_pb2.SourceProgress(source=source_kind_to_pb(p.source), done=p.done, total=p.total,
                                       kept=p.kept, dropped=p.dropped)
            for p in job.progress.values()
        ],
    )
    if job.started_at:
        message.started_at.CopyFrom(_timestamp(job.started_at))
    if job.finished_at:
        message.finished_at.CopyFrom(_timestamp(job.finished_at))
    return message


def dataset_to_pb(info: DatasetInfo) -> scraper_pb2.Dataset:
    message = scraper_pb2.Dataset(
        version=info.version,
        documents_path=str(info.documents_path),
        qa_csv_path=str(info.qa_csv_path),
        documents=info.documents,
        qa_pairs=info.qa_pairs,
        qa_csv_sha256=info.qa_csv_sha256,
    )
    message.created_at.CopyFrom(_timestamp(info.created_at))
    return message


class ScraperServicer(scraper_pb2_grpc.ScraperServiceServicer):
    def __init__(self, jobs: ScrapeJobs) -> None:
        self.jobs = jobs

    async def StartScrapeJob(self, request, context):
        job = self.jobs.start(sources_from_pb(request.sources), request.text_only, request.force)
        return scraper_pb2.StartScrapeJobResponse(job_id=job.job_id)

    async def GetScrapeJob(self, request, context):
        return scraper_pb2.GetScrapeJobResponse(job=job_to_pb(self.jobs.get(request.job_id)))

    async def ListDatasets(self, request, context):
        datasets = await asyncio.to_thread(self.jobs.datasets)
        return scraper_pb2.ListDatasetsResponse(datasets=[dataset_to_pb(info) for info in datasets])
