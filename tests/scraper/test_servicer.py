"""The scraper gRPC service as its own process: start a job, follow its progress, list datasets."""

from __future__ import annotations

import hashlib
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jenkins_assistant.v1 import common_pb2, scraper_pb2, scraper_pb2_grpc
from tests.conftest import ServiceProcess, free_port


def start_service(tmp_path: Path, shared_data: Path, **env: str) -> ServiceProcess:
    port = free_port()
    service = ServiceProcess(
        args=[sys.executable, "-m", "jenkins_assistant.scraper.server"],
        env={
            "SCRAPER_HOST": "127.0.0.1",
            "SCRAPER_PORT": str(port),
            "SCRAPER_OUTPUT_DIR": str(tmp_path / "datasets"),
            "SCRAPER_STATE_DIR": str(tmp_path / "state"),
            "SCRAPER_DOCS_ROOT": str(shared_data / "jenkins-docs"),
            "SCRAPER_PLUGINS_ROOT": str(shared_data / "jenkins-plugins"),
            "SCRAPER_DISCOURSE_URL": "",
            "SCRAPER_STACKEXCHANGE_URL": "",
            "SCRAPER_BLOG_GIT_URL": "",
            "SCRAPER_PLUGINS_UPDATE_CENTER_URL": "",
            **env,
        },
        port=port,
    )
    service.start()
    return service


@pytest.fixture
def scraper_service(tmp_path: Path, shared_data: Path) -> Iterator[ServiceProcess]:
    service = start_service(tmp_path, shared_data, SCRAPER_METRICS_PORT=str(free_port()))
    yield service
    service.stop()


@pytest.fixture
def stub(scraper_service) -> Iterator[scraper_pb2_grpc.ScraperServiceStub]:
    with grpc.insecure_channel(scraper_service.target) as channel:
        yield scraper_pb2_grpc.ScraperServiceStub(channel)


def wait_for(stub, job_id: str, timeout_s: float = 120) -> scraper_pb2.ScrapeJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = stub.GetScrapeJob(scraper_pb2.GetScrapeJobRequest(job_id=job_id), timeout=5).job
        if job.state in (scraper_pb2.JOB_STATE_SUCCEEDED, scraper_pb2.JOB_STATE_FAILED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s}s")


def test_job_runs_reports_progress_and_lists_its_dataset(stub, scraper_service):
    assert stub.ListDatasets(scraper_pb2.ListDatasetsRequest(), timeout=5).datasets == []
    started = stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(
        sources=[common_pb2.SOURCE_KIND_JENKINS_DOCS]), timeout=5)
    # A second job while the first runs is refused: the client should retry later.
    with pytest.raises(grpc.RpcError) as busy:
        stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(sources=[common_pb2.SOURCE_KIND_PLUGIN_DOCS]),
                            timeout=5)
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    job = wait_for(stub, started.job_id)
    assert job.state == scraper_pb2.JOB_STATE_SUCCEEDED, job.error
    [progress] = job.progress
    assert progress.source == common_pb2.SOURCE_KIND_JENKINS_DOCS
    assert progress.done == progress.total == progress.kept > 700
    assert job.started_at.seconds and job.finished_at.ToNanoseconds() >= job.started_at.ToNanoseconds()
    [dataset] = stub.ListDatasets(scraper_pb2.ListDatasetsRequest(), timeout=5).datasets
    assert dataset.version == job.dataset_version and dataset.documents == progress.kept
    assert dataset.qa_pairs == 0
    assert hashlib.sha256(Path(dataset.qa_csv_path).read_bytes()).hexdigest() == dataset.qa_csv_sha256
    assert Path(dataset.documents_path).stat().st_size > 1_000_000

    second = stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(
        sources=[common_pb2.SOURCE_KIND_PLUGIN_DOCS], text_only=True), timeout=5)
    assert wait_for(stub, second.job_id).state == scraper_pb2.JOB_STATE_SUCCEEDED
    versions = [d.version for d in stub.ListDatasets(scraper_pb2.ListDatasetsRequest(), timeout=5).datasets]
    assert len(versions) == 2 and versions[1] == dataset.version  # newest first

    metrics_port = scraper_service.env["SCRAPER_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        exposition = reply.read().decode()
    assert 'jenkins_assistant_scraper_jobs_total{result="written"} 2.0' in exposition
    assert 'jenkins_assistant_grpc_requests_total{code="RESOURCE_EXHAUSTED",method="StartScrapeJob"' in exposition


def test_bad_requests_get_clear_status_codes(stub):
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetScrapeJob(scraper_pb2.GetScrapeJobRequest(job_id="no-such-job"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        stub.GetScrapeJob(scraper_pb2.GetScrapeJobRequest(), timeout=5)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unconfigured:
        stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(sources=[common_pb2.SOURCE_KIND_DISCOURSE]),
                            timeout=5)
    assert unconfigured.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not configured" in unconfigured.value.details()
    with pytest.raises(grpc.RpcError) as unspecified:
        stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(sources=[common_pb2.SOURCE_KIND_UNSPECIFIED]),
                            timeout=5)
    assert unspecified.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_failing_source_fails_the_job_not_the_service(tmp_path, shared_data):
    closed_port = free_port()  # nothing listens there: connection refused
    service = start_service(tmp_path, shared_data, SCRAPER_DISCOURSE_URL=f"http://127.0.0.1:{closed_port}",
                            SCRAPER_MAX_RETRIES="1", SCRAPER_BACKOFF_FACTOR_S="0.01")
    try:
        with grpc.insecure_channel(service.target) as channel:
            stub = scraper_pb2_grpc.ScraperServiceStub(channel)
            started = stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(
                sources=[common_pb2.SOURCE_KIND_DISCOURSE]), timeout=5)
            job = wait_for(stub, started.job_id)
            assert job.state == scraper_pb2.JOB_STATE_FAILED
            assert "discourse" in job.error and not job.dataset_version
            # The service still answers, and a later job can run.
            again = stub.StartScrapeJob(scraper_pb2.StartScrapeJobRequest(
                sources=[common_pb2.SOURCE_KIND_PLUGIN_DOCS]), timeout=5)
            assert wait_for(stub, again.job_id).state == scraper_pb2.JOB_STATE_SUCCEEDED
    finally:
        service.stop()
