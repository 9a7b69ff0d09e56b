"""Discourse and StackExchange crawls through the whole pipeline, against the replay server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from jenkins_assistant.common.errors import Unavailable
from jenkins_assistant.common.records import read_documents_jsonl
from jenkins_assistant.scraper.core import run_scrape
from jenkins_assistant.scraper.http import HttpCache, PoliteClient
from jenkins_assistant.scraper.qa import QA_COLUMNS
from jenkins_assistant.scraper.stackexchange import StackExchangeCrawler
from jenkins_assistant.scraper.state import StateFile
from tests.scraper.conftest import CATEGORY
from tests.scraper.replay import Fault


def tree_snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots with its size and mtime: equal snapshots = nothing was written."""
    snapshot = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() or path.is_symlink():
                stat = path.lstat()
                snapshot[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return snapshot


def test_discourse_solved_topics_become_pairs(forum, replay_server, remote_settings):
    result = run_scrape(remote_settings, sources=["discourse"])
    assert result.written
    frame = pd.read_csv(result.dataset.qa_csv_path, keep_default_na=False)
    assert list(frame.columns) == QA_COLUMNS
    by_url = {row["url"]: row for row in frame.to_dict("records")}
    base = replay_server.url
    # 101 (accepted post 2), 103 (accepted post 25, beyond the first chunk), 107 (post-level marker only).
    assert set(by_url) == {f"{base}/t/topic-101/101/2", f"{base}/t/topic-103/103/25", f"{base}/t/topic-107/107/2"}
    first = by_url[f"{base}/t/topic-101/101/2"]
    assert first["question"].startswith("Docker agent: permission denied on the Docker daemon socket\n\n")
    assert "```groovy\npipeline {\n  agent { docker { image 'maven:3.9' } }\n}\n```" in first["answer"]
    assert "[Using Docker with Pipeline](https://www.jenkins.io/doc/book/pipeline/docker/)" in first["answer"]
    assert first["score"] == 5 and first["source"] == "discourse" and first["tags"] == "pipeline"
    assert first["created_at"] == "2025-03-01T10:00:00Z"
    assert "logRotator" in by_url[f"{base}/t/topic-103/103/25"]["answer"]
    # Every drop has its reason in the run report.
    assert result.report["dropped"]["non_english"] == 1  # 104, German
    assert result.report["dropped"]["duplicate_near"] == 1  # 105, a lower-scored copy of 101
    assert result.report["dropped"]["too_long"] == 1  # 106
    assert result.report["sources"]["discourse"]["qa_pairs"] == 3
    # Pagination: three list pages, and the unsolved topic 102 was never fetched.
    assert len(replay_server.requests_to(f"/c/{CATEGORY}.json")) == 3
    assert replay_server.requests_to("/t/102") == []
    assert len(replay_server.requests_to("/t/103/25.json")) == 1
    # Solved questions also join the retrieval corpus.
    documents = {doc.id: doc for doc in read_documents_jsonl(result.dataset.documents_path)}
    assert documents["discourse:101"].text.startswith("# Docker agent: permission denied")
    assert "## Accepted answer" in documents["discourse:101"].text


def test_unchanged_rerun_sends_only_conditional_requests_and_writes_nothing(forum, replay_server, remote_settings):
    first = run_scrape(remote_settings, sources=["discourse"])
    before = tree_snapshot(remote_settings.output_dir, remote_settings.state_dir)
    requests_before = len(replay_server.log)
    time.sleep(0.01)  # distinct mtimes if anything were rewritten
    second = run_scrape(remote_settings, sources=["discourse"])
    assert not second.written and second.dataset.version == first.dataset.version
    assert tree_snapshot(remote_settings.output_dir, remote_settings.state_dir) == before
    rerun_requests = replay_server.log[requests_before:]
    # Only the three list pages, each answered 304; no topic was asked for again.
    assert [(seen.path, seen.status) for seen in rerun_requests] == [(f"/c/{CATEGORY}.json", 304)] * 3
    assert all("If-None-Match" in seen.headers for seen in rerun_requests)
    assert second.report["http"]["discourse"]["not_modified"] == 3


def test_bumped_topic_is_fetched_again_and_a_new_version_written(forum, replay_server, remote_settings):
    first = run_scrape(remote_settings, sources=["discourse"])
    forum.pages[2][0].answer_html = "<p>Use <code>withCredentials</code>; never echo the secret.</p>"
    forum.install(bumped_at="2025-04-01T00:00:00.000Z")
    before = len(replay_server.requests_to("/t/"))
    second = run_scrape(remote_settings, sources=["discourse"])
    assert second.written and second.dataset.version != first.dataset.version
    assert len(replay_server.requests_to("/t/")) > before
    frame = pd.read_csv(second.dataset.qa_csv_path, keep_default_na=False)
    assert any("never echo the secret" in answer for answer in frame["answer"])


def test_source_outage_fails_the_run_and_keeps_earlier_state(forum, replay_server, remote_settings):
    run_scrape(remote_settings, sources=["discourse"])
    state_before = (remote_settings.state_dir / "discourse.json").read_text()
    for _ in range(20):
        replay_server.add_fault(f"/c/{CATEGORY}.json", Fault(status=503))
    with pytest.raises(Unavailable, match="discourse"):
        run_scrape(remote_settings, sources=["discourse"])
    assert (remote_settings.state_dir / "discourse.json").read_text() == state_before


def test_stackexchange_questions_with_accepted_answers(stackexchange, replay_server, remote_settings):
    result = run_scrape(remote_settings, sources=["stackexchange"])
    frame = pd.read_csv(result.dataset.qa_csv_path, keep_default_na=False)
    rows = {row["url"]: row for row in frame.to_dict("records")}
    assert set(rows) == {f"https://stackoverflow.com/questions/{qid}/q" for qid in (2001, 2003, 2004)}
    main_branch = rows["https://stackoverflow.com/questions/2001/q"]
    assert main_branch["license"] == "CC-BY-SA-4.0" and main_branch["score"] == 50
    assert "```groovy\nstage('Deploy') {" in main_branch["answer"]
    assert main_branch["tags"] == "jenkins;jenkins-pipeline"
    assert rows["https://stackoverflow.com/questions/2003/q"]["question"].startswith(
        'Jenkins "Permission denied" when running a shell script')
    questions = replay_server.requests_to("/2.3/questions")
    assert [seen.query["page"] for seen in questions] == ["1", "2"]  # has_more honoured
    assert questions[0].query["tagged"] == "jenkins" and questions[0].query["filter"] == "withbody"
    assert questions[0].query["min"] == "6" and questions[0].query["sort"] == "votes"
    # One batched call per page of accepted answers.
    assert [seen.path for seen in replay_server.requests_to("/2.3/answers/")] == [
        "/2.3/answers/3001;3003", "/2.3/answers/3004"]


def test_stackexchange_backoff_and_quota_are_honoured(shared_data, replay_server, tmp_path):
    from tests.scraper.conftest import StackExchangeReplay

    replay = StackExchangeReplay(shared_data, replay_server)
    replay.install(backoff_on_first_page=2)
    waits: list[float] = []
    client = PoliteClient(user_agent="t", requests_per_second=100, connect_timeout_s=2, read_timeout_s=2,
                          max_retries=0, backoff_factor_s=0, max_retry_after_s=5, cache=HttpCache(tmp_path / "h"))
    crawler = StackExchangeCrawler(client, replay_server.url + "/2.3", StateFile(tmp_path / "se.json"),
                                   sleep=waits.append)
    rows = crawler.crawl()
    assert len(rows) == 3
    assert waits and 1.5 < waits[0] <= 2.0  # the next call waited out `backoff: 2`
    assert crawler.quota_remaining == 9987

    # With the quota used up the crawl stops after the page that said so, resumable later.
    replay_server.set_json("/2.3/questions?page=1", replay.page([], True, 0))
    state = StateFile(tmp_path / "se2.json")
    stopped = StackExchangeCrawler(client, replay_server.url + "/2.3", state, sleep=waits.append)
    stopped.crawl()
    assert stopped.stopped_early == "quota exhausted"
    assert state.data["cursor"] == {"next_page": 2, "complete": False}


def _run_cli(settings_env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jenkins_assistant.scraper.cli", "run", "--no-progress", "--source", "discourse",
         "--log-level", "WARNING"],
        env={**os.environ, **settings_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def test_killed_run_resumes_where_it_stopped(forum, replay_server, remote_settings):
    env = {
        "SCRAPER_OUTPUT_DIR": str(remote_settings.output_dir),
        "SCRAPER_STATE_DIR": str(remote_settings.state_dir),
        "SCRAPER_DISCOURSE_URL": replay_server.url,
        "SCRAPER_DISCOURSE_CATEGORIES": json.dumps([CATEGORY]),
        "SCRAPER_STACKEXCHANGE_URL": "",
        "SCRAPER_REQUESTS_PER_SECOND": "100",
    }
    replay_server.delays["t"] = 0.4  # slow topic answers leave time to kill the run mid-crawl
    process = _run_cli(env)
    deadline = time.monotonic() + 60
    # Page 0 is saved once its topics are done; kill while a page-1 topic is being fetched.
    while not replay_server.requests_to("/t/104") and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # Nothing half-written: no dataset version appeared.
    output = remote_settings.output_dir
    assert not output.exists() or [p.name for p in output.iterdir() if not p.name.startswith(".")] == []
    state = json.loads((remote_settings.state_dir / "discourse.json").read_text())
    assert state["categories"][CATEGORY] == {"next_page": 1, "complete": False}
    assert set(state["topics"]) == {"101", "103"}

    replay_server.delays.clear()
    fetched_before = {seen.path for seen in replay_server.requests_to("/t/")}
    pages_before = len(replay_server.requests_to(f"/c/{CATEGORY}.json"))
    result = run_scrape(remote_settings, sources=["discourse"])
    # The resumed run started at page 1 and did not fetch page 0's topics again.
    resumed_pages = replay_server.requests_to(f"/c/{CATEGORY}.json")[pages_before:]
    assert [seen.query.get("page") for seen in resumed_pages] == ["1", "2"]
    assert {"/t/101.json", "/t/103.json"} <= fetched_before
    assert len(replay_server.requests_to("/t/101.json")) == 1
    assert len(replay_server.requests_to("/t/103.json")) == 1
    assert result.written and result.report["sources"]["discourse"]["qa_pairs"] == 3


def test_forced_run_ignores_state_and_validators(forum, replay_server, remote_settings):
    first = run_scrape(remote_settings, sources=["discourse"])
    before = len(replay_server.log)
    forced = run_scrape(remote_settings, sources=["discourse"], force=True)
    again = replay_server.log[before:]
    assert all("If-None-Match" not in seen.headers and seen.status == 200 for seen in again)
    assert len([seen for seen in again if seen.path == "/t/101.json"]) == 1  # topics fetched again
    assert forced.written and forced.dataset.version != first.dataset.version
    assert forced.dataset.content_sha256 == first.dataset.content_sha256  # same content, new version
