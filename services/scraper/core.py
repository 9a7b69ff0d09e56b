"""The scrape pipeline and the job manager behind the gRPC service. No gRPC imports here.

`run_scrape(settings, ...)` does one batch run: local sources (cached by a fingerprint of their
files), the forum and Q&A APIs (resumable, conditional requests), the CSV imports, then cleaning,
the deterministic split and an atomic, versioned dataset. `ScrapeJobs` runs scrapes in background
threads for the gRPC service and keeps their progress.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from jenkins_assistant.common.errors import InvalidInput, NotFound, Overloaded, Unavailable
from jenkins_assistant.common.files import atomic_write_text
from jenkins_assistant.common.records import SOURCE_KINDS, CorpusDocument
from jenkins_assistant.scraper import local_sources, metrics
from jenkins_assistant.scraper.config import ScrapeSettings
from jenkins_assistant.scraper.dataset import DatasetInfo, list_datasets, remove_stale_staging, write_dataset
from jenkins_assistant.scraper.discourse import DiscourseCrawler
from jenkins_assistant.scraper.http import HttpCache, PoliteClient, SourceError
from jenkins_assistant.scraper.processing import DROP_REASONS, clean_qa_rows, split_rows
from jenkins_assistant.scraper.qa import QARow, import_qa_csv
from jenkins_assistant.scraper.remote_docs import PluginDocsFetcher, sync_git_checkout
from jenkins_assistant.scraper.stackexchange import StackExchangeCrawler
from jenkins_assistant.scraper.state import StateFile

log = logging.getLogger(__name__)

LOCAL_SOURCES = ("jenkins_docs", "jenkins_blog", "plugin_docs")
REMOTE_SOURCES = ("discourse", "stackexchange")
# Bump when the converters change output: cached local documents are then rebuilt.
CONVERTER_VERSION = "1"


class ProgressSink(Protocol):
    def update(self, source: str, done: int, total: int, kept: int, dropped: int) -> None: ...


class _NoProgress:
    def update(self, source: str, done: int, total: int, kept: int, dropped: int) -> None:
        pass


@dataclass
class RunResult:
    dataset: DatasetInfo
    written: bool
    report: dict


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def configured_sources(settings: ScrapeSettings) -> list[str]:
    sources = []
    if settings.docs_root or settings.docs_git_url:
        sources.append("jenkins_docs")
    if settings.blog_root or settings.blog_git_url:
        sources.append("jenkins_blog")
    if settings.plugins_root or settings.plugins_update_center_url:
        sources.append("plugin_docs")
    if settings.discourse_url and settings.discourse_categories:
        sources.append("discourse")
    if settings.stackexchange_url:
        sources.append("stackexchange")
    if settings.qa_csv_files:
        sources.append("qa_file")
    return sources


def resolve_sources(settings: ScrapeSettings, requested: Iterable[str] | None) -> list[str]:
    """The sources to run: the requested ones (each must be configured) or all configured ones."""
    available = configured_sources(settings)
    wanted = [source for source in (requested or []) if source]
    if not wanted:
        if not available:
            raise InvalidInput("no source is configured (set SCRAPER_DOCS_ROOT, SCRAPER_DISCOURSE_URL, ...)")
        return available
    unknown = [source for source in wanted if source not in SOURCE_KINDS]
    if unknown:
        raise InvalidInput(f"unknown source(s) {unknown}; known: {list(SOURCE_KINDS)}")
    missing = [source for source in wanted if source not in available]
    if missing:
        raise InvalidInput(f"source(s) {missing} are not configured; configured: {available}")
    return list(dict.fromkeys(wanted))


def _root_for(settings: ScrapeSettings, source: str, force: bool, progress: ProgressSink) -> Path:
    """The folder a local source is read from: the configured one, or a synced production copy."""
    root = {"jenkins_docs": settings.docs_root, "jenkins_blog": settings.blog_root,
            "plugin_docs": settings.plugins_root}[source]
    if root is not None:
        return Path(root)
    synced = Path(settings.state_dir) / "sources"
    if source == "jenkins_docs":
        sync_git_checkout(settings.docs_git_url, synced / "docs.jenkins.io", ref=settings.docs_git_ref)
        return synced / "docs.jenkins.io"
    if source == "jenkins_blog":
        sync_git_checkout(settings.blog_git_url, synced / "jenkins.io", ref=settings.blog_git_ref,
                          sparse_paths=["content/blog"])
        return synced / "jenkins.io"
    headers = {"Authorization": f"Bearer {settings.github_token.get_secret_value()}"} if settings.github_token else {}
    with _client(settings, force, {**headers, "Accept": "application/vnd.github+json"}) as client:
        fetcher = PluginDocsFetcher(
            client, synced / "plugin-docs", update_center_url=settings.plugins_update_center_url,
            github_api_url=settings.github_api_url, top_n=settings.plugins_top_n,
            progress=lambda done, total: progress.update("plugin_docs", done, total, 0, 0),
        )
        return fetcher.sync()


def _fingerprint(root: Path, settings: ScrapeSettings) -> str:
    """Changes whenever a file under root is added, removed, resized or touched."""
    digest = hashlib.sha256(f"{CONVERTER_VERSION}|{settings.jenkins_stable}|{root.resolve()}".encode())
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))  # .git changes on every fetch
        for name in sorted(filenames):
            path = os.path.join(directory, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _iter_local(source: str, root: Path, settings: ScrapeSettings) -> Iterable[CorpusDocument]:
    attributes = {"jenkins-stable": settings.jenkins_stable}
    if source == "jenkins_docs":
        return local_sources.iter_docs(root, attributes)
    if source == "jenkins_blog":
        return local_sources.iter_blog(root, attributes)
    return local_sources.iter_plugin_docs(root)


def local_document_lines(source: str, settings: ScrapeSettings, *, force: bool, progress: ProgressSink) -> list[str]:
    """JSONL lines of one local source, from the cache when its files have not changed."""
    try:
        root = _root_for(settings, source, force, progress)
    except SourceError as exc:
        raise Unavailable(f"{source}: {exc}") from exc
    if not root.is_dir():
        raise InvalidInput(f"{source}: {root} is not a folder")
    cache_dir = Path(settings.state_dir) / "local"
    cache_file = cache_dir / f"{source}.jsonl"
    stamp_file = cache_dir / f"{source}.fingerprint"
    fingerprint = _fingerprint(root, settings)
    if not force and cache_file.is_file() and stamp_file.is_file() and stamp_file.read_text() == fingerprint:
        lines = cache_file.read_text(encoding="utf-8").splitlines()
        progress.update(source, len(lines), len(lines), len(lines), 0)
        return lines
    lines = []
    for document in _iter_local(source, root, settings):
        lines.append(document.to_json_line())
        progress.update(source, len(lines), 0, len(lines), 0)
    progress.update(source, len(lines), len(lines), len(lines), 0)
    atomic_write_text(cache_file, "".join(line + "\n" for line in lines))
    atomic_write_text(stamp_file, fingerprint)
    return lines


def _client(settings: ScrapeSettings, force: bool, extra_headers: dict[str, str] | None = None) -> PoliteClient:
    client = PoliteClient.from_settings(settings, HttpCache(Path(settings.state_dir) / "http"), extra_headers)
    client.conditional = not force  # a forced run asks for full answers (and refreshes the cache)
    return client


def _crawl_state(settings: ScrapeSettings, source: str, force: bool) -> StateFile:
    state = StateFile(Path(settings.state_dir) / f"{source}.json")
    if force:
        state.reset()
    return state


def discourse_rows(settings: ScrapeSettings, *, force: bool, progress: ProgressSink) -> tuple[list[QARow], dict]:
    headers = {}
    if settings.discourse_api_key:
        headers["Api-Key"] = settings.discourse_api_key.get_secret_value()
        if settings.discourse_api_username:
            headers["Api-Username"] = settings.discourse_api_username
    state = _crawl_state(settings, "discourse", force)
    with _client(settings, force, headers) as client:
        crawler = DiscourseCrawler(
            client, settings.discourse_url, settings.discourse_categories, state,
            max_pages=settings.discourse_max_pages, license=settings.discourse_license,
            progress=lambda done, total, kept: progress.update("discourse", done, total, kept, 0),
        )
        rows = crawler.crawl()
    return rows, {"requests": client.stats.requests, "not_modified": client.stats.not_modified,
                  "topics_fetched": crawler.topics_fetched}


def stackexchange_rows(settings: ScrapeSettings, *, force: bool, progress: ProgressSink) -> tuple[list[QARow], dict]:
    state = _crawl_state(settings, "stackexchange", force)
    with _client(settings, force) as client:
        crawler = StackExchangeCrawler(
            client, settings.stackexchange_url, state,
            site=settings.stackexchange_site, tag=settings.stackexchange_tag,
            min_score=settings.stackexchange_min_score, max_pages=settings.stackexchange_max_pages,
            api_key=settings.stackexchange_key.get_secret_value() if settings.stackexchange_key else None,
            body_filter=settings.stackexchange_filter, max_backoff_s=settings.max_retry_after_s,
            progress=lambda done, total, kept: progress.update("stackexchange", done, total, kept, 0),
        )
        rows = crawler.crawl()
    stats = {"requests": client.stats.requests, "not_modified": client.stats.not_modified,
             "quota_remaining": crawler.quota_remaining}
    if crawler.stopped_early:
        stats["stopped_early"] = crawler.stopped_early
    return rows, stats


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def run_scrape(
    settings: ScrapeSettings,
    *,
    sources: Iterable[str] | None = None,
    text_only: bool | None = None,
    force: bool = False,
    progress: ProgressSink | None = None,
) -> RunResult:
    """One batch run into a new dataset version (or none when nothing changed)."""
    started = time.perf_counter()
    progress = progress or _NoProgress()
    text_only = settings.text_only if text_only is None else text_only
    selected = resolve_sources(settings, sources)
    remove_stale_staging(Path(settings.output_dir))

    report_sources: dict[str, dict] = {}
    document_lines: list[str] = []
    for source in selected:
        if source in LOCAL_SOURCES:
            lines = local_document_lines(source, settings, force=force, progress=progress)
            document_lines.extend(lines)
            report_sources[source] = {"documents": len(lines)}

    raw_rows: list[QARow] = []
    http_stats: dict[str, dict] = {}
    for source, fetch in (("discourse", discourse_rows), ("stackexchange", stackexchange_rows)):
        if source not in selected:
            continue
        try:
            rows, stats = fetch(settings, force=force, progress=progress)
        except SourceError as exc:
            # The crawl state keeps what was done: the next run resumes from there.
            raise Unavailable(f"{source}: {exc}") from exc
        raw_rows.extend(rows)
        http_stats[source] = stats
    if "qa_file" in selected:
        for path in settings.qa_csv_files:
            rows = import_qa_csv(Path(path), license=settings.qa_csv_license)
            raw_rows.extend(rows)
            progress.update("qa_file", len(rows), len(rows), 0, 0)

    cleaned = clean_qa_rows(
        raw_rows,
        max_chars=settings.max_chars,
        min_answer_chars=settings.min_answer_chars,
        near_duplicate_threshold=settings.near_duplicate_threshold,
        text_only=text_only,
    )
    raw_by_source = Counter(row.source for row in raw_rows)
    kept_by_source = Counter(row.source for row in cleaned.kept)
    for source in sorted(set(raw_by_source) | {s for s in selected if s not in LOCAL_SOURCES}):
        dropped = dict(cleaned.dropped_by_source.get(source, Counter()))
        report_sources.setdefault(source, {}).update(
            qa_rows_in=raw_by_source[source], qa_pairs=kept_by_source[source], dropped=dropped)
        progress.update(source, raw_by_source[source], raw_by_source[source], kept_by_source[source],
                        sum(dropped.values()))

    # Real solved questions also serve retrieval; generated pairs (qa_file) only train.
    qa_documents = [row.to_document().to_json_line() for row in cleaned.kept if row.source in REMOTE_SOURCES]
    for source in REMOTE_SOURCES:
        if source in report_sources:
            report_sources[source]["documents"] = sum(
                1 for row in cleaned.kept if row.source == source)
    document_lines.extend(qa_documents)
    train, validation = split_rows(cleaned.kept, settings.validation_fraction, settings.split_seed)
    report = {
        "sources": report_sources,
        "dropped": {reason: cleaned.dropped.get(reason, 0) for reason in DROP_REASONS},
        "http": http_stats,
        "text_only": text_only,
        "validation_fraction": settings.validation_fraction,
        "duration_s": round(time.perf_counter() - started, 3),
        "counts": {"documents": len(document_lines), "qa_pairs": len(cleaned.kept), "qa_train": len(train),
                   "qa_validation": len(validation), "qa_rows_in": len(raw_rows)},
    }
    result = write_dataset(Path(settings.output_dir), document_lines, cleaned.kept, train, validation, report,
                           force=force)
    report["duration_s"] = round(time.perf_counter() - started, 3)
    report["written"] = result.written
    report["version"] = result.dataset.version
    log.info("scrape done in %.1fs: %d documents, %d Q&A pairs, dataset %s (%s)", report["duration_s"],
             len(document_lines), len(cleaned.kept), result.dataset.version,
             "written" if result.written else "unchanged, nothing written")
    return RunResult(dataset=result.dataset, written=result.written, report=report)


# --------------------------------------------------------------------------------------------
# Jobs (the gRPC service's view)
# --------------------------------------------------------------------------------------------

JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED = "queued", "running", "succeeded", "failed"


@dataclass
class SourceProgress:
    source: str
    done: int = 0
    total: int = 0
    kept: int = 0
    dropped: int = 0


@dataclass
class ScrapeJob:
    job_id: str
    sources: list[str]
    text_only: bool
    force: bool
    state: str = JOB_QUEUED
    progress: dict[str, SourceProgress] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""
    dataset_version: str = ""
    report: dict = field(default_factory=dict)


class _JobProgress:
    def __init__(self, job: ScrapeJob, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    def update(self, source: str, done: int, total: int, kept: int, dropped: int) -> None:
        with self._lock:
            entry = self._job.progress.setdefault(source, SourceProgress(source))
            entry.done, entry.total, entry.kept, entry.dropped = done, total, kept, dropped


class ScrapeJobs:
    """Background scrape jobs: at most `max_jobs` running, all kept in memory for status queries."""

    def __init__(self, settings: ScrapeSettings, *, max_jobs: int = 1, max_kept: int = 100) -> None:
        self.settings = settings
        self.max_jobs = max_jobs
        self.max_kept = max_kept
        self._jobs: dict[str, ScrapeJob] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, sources: Iterable[str], text_only: bool, force: bool) -> ScrapeJob:
        selected = resolve_sources(self.settings, list(sources))  # bad input fails now, not in the thread
        with self._lock:
            running = sum(job.state in (JOB_QUEUED, JOB_RUNNING) for job in self._jobs.values())
            if running >= self.max_jobs:
                raise Overloaded(f"{running} scrape job(s) already running (limit {self.max_jobs}); retry later")
            job = ScrapeJob(job_id=uuid.uuid4().hex, sources=selected, text_only=text_only, force=force)
            job.progress = {source: SourceProgress(source) for source in selected}
            self._jobs[job.job_id] = job
            self._forget_old_jobs()
        thread = threading.Thread(target=self._run, args=(job,), name=f"scrape-{job.job_id[:8]}", daemon=True)
        self._threads[job.job_id] = thread
        thread.start()
        return job

    def _forget_old_jobs(self) -> None:
        finished = [job for job in self._jobs.values() if job.state in (JOB_SUCCEEDED, JOB_FAILED)]
        for job in sorted(finished, key=lambda j: j.finished_at or datetime.min.replace(tzinfo=UTC))[
            : max(0, len(self._jobs) - self.max_kept)
        ]:
            self._jobs.pop(job.job_id, None)
            self._threads.pop(job.job_id, None)

    def _run(self, job: ScrapeJob) -> None:
        with self._lock:
            job.state = JOB_RUNNING
            job.started_at = datetime.now(UTC)
        try:
            result = run_scrape(self.settings, sources=job.sources, text_only=job.text_only, force=job.force,
                                progress=_JobProgress(job, self._lock))
        except Exception as exc:  # a job's failure is reported through its status, never crashes the service
            log.exception("scrape job %s failed", job.job_id)
            metrics.SCRAPE_JOBS.labels("failed").inc()
            with self._lock:
                job.state = JOB_FAILED
                job.error = f"{type(exc).__name__}: {exc}"
                job.finished_at = datetime.now(UTC)
            return
        metrics.SCRAPE_JOBS.labels("written" if result.written else "unchanged").inc()
        for reason, count in result.report["dropped"].items():
            metrics.DROPPED_ROWS.labels(reason).inc(count)
        metrics.LATEST_DOCUMENTS.set(result.dataset.documents)
        metrics.LATEST_QA_PAIRS.set(result.dataset.qa_pairs)
        metrics.JOB_SECONDS.set(result.report["duration_s"])
        with self._lock:
            job.state = JOB_SUCCEEDED
            job.dataset_version = result.dataset.version
            job.report = result.report
            job.finished_at = datetime.now(UTC)

    def get(self, job_id: str) -> ScrapeJob:
        if not job_id:
            raise InvalidInput("job_id is required")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no scrape job {job_id!r}")
            # A copy, so the caller reads a consistent snapshot while the job goes on.
            return ScrapeJob(
                job_id=job.job_id, sources=list(job.sources), text_only=job.text_only, force=job.force,
                state=job.state,
                progress={k: SourceProgress(**vars(v)) for k, v in job.progress.items()},
                started_at=job.started_at, finished_at=job.finished_at, error=job.error,
                dataset_version=job.dataset_version, report=dict(job.report),
            )

    def wait(self, job_id: str, timeout_s: float | None = None) -> ScrapeJob:
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout_s)
        return self.get(job_id)

    def datasets(self) -> list[DatasetInfo]:
        return list_datasets(Path(self.settings.output_dir))
