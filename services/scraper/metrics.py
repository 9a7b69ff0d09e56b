"""Prometheus metrics of the scraper service's jobs (RPC counts come from the shared interceptor)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SCRAPE_JOBS = Counter(
    "jenkins_assistant_scraper_jobs_total",
    "Scrape jobs finished, by result: written (new dataset version), unchanged, failed.",
    ["result"],
)
DROPPED_ROWS = Counter(
    "jenkins_assistant_scraper_dropped_rows_total",
    "Q&A rows dropped by the cleaning step, by reason.",
    ["reason"],
)
LATEST_DOCUMENTS = Gauge("jenkins_assistant_scraper_latest_documents", "Documents in the latest dataset a job wrote.")
LATEST_QA_PAIRS = Gauge("jenkins_assistant_scraper_latest_qa_pairs", "Q&A pairs in the latest dataset a job wrote.")
JOB_SECONDS = Gauge("jenkins_assistant_scraper_last_job_seconds", "Wall time of the last finished scrape job.")
