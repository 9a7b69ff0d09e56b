"""PoliteClient against the loopback replay server: retries, Retry-After, timeouts, bad JSON, 304s."""

from __future__ import annotations

import time

import pytest

from jenkins_assistant.scraper.http import HttpCache, MalformedResponse, PoliteClient, SourceError
from tests.scraper.replay import Fault


def make_client(tmp_path, **overrides) -> PoliteClient:
    options = {"user_agent": "jenkins-assistant-scraper/test (+tests)", "requests_per_second": 100,
                   "connect_timeout_s": 2, "read_timeout_s": 0.5, "max_retries": 3, "backoff_factor_s": 0.05,
                   "max_retry_after_s": 5, "cache": HttpCache(tmp_path / "http")}
    options.update(overrides)
    return PoliteClient(**options)


def test_429_with_retry_after_is_waited_out(tmp_path, replay_server):
    replay_server.set_json("/thing.json", {"ok": 1})
    replay_server.add_fault("/thing.json", Fault(status=429, headers={"Retry-After": "1"}))
    client = make_client(tmp_path)
    started = time.monotonic()
    response = client.get_json(replay_server.url + "/thing.json")
    waited = time.monotonic() - started
    assert response.data == {"ok": 1}
    assert [seen.status for seen in replay_server.requests_to("/thing.json")] == [429, 200]
    assert waited >= 0.9, "the Retry-After second must be honoured before the retry"
    seen = replay_server.requests_to("/thing.json")[0]
    assert seen.headers["User-Agent"].startswith("jenkins-assistant-scraper/")


def test_retry_after_is_capped(tmp_path, replay_server):
    replay_server.set_json("/slow.json", {"ok": 1})
    replay_server.add_fault("/slow.json", Fault(status=503, headers={"Retry-After": "3600"}))
    client = make_client(tmp_path, max_retry_after_s=0.2)
    started = time.monotonic()
    assert client.get_json(replay_server.url + "/slow.json").data == {"ok": 1}
    assert time.monotonic() - started < 60  # an hour-long Retry-After did not park the run


def test_5xx_is_retried_with_backoff(tmp_path, replay_server):
    replay_server.set_json("/flaky.json", {"ok": 2})
    for status in (500, 502):
        replay_server.add_fault("/flaky.json", Fault(status=status))
    response = make_client(tmp_path).get_json(replay_server.url + "/flaky.json")
    assert response.data == {"ok": 2}
    assert [seen.status for seen in replay_server.requests_to("/flaky.json")] == [500, 502, 200]


def test_persistent_5xx_becomes_a_source_error(tmp_path, replay_server):
    replay_server.set_json("/down.json", {"ok": 3})
    for _ in range(10):
        replay_server.add_fault("/down.json", Fault(status=503))
    with pytest.raises(SourceError, match="HTTP 503"):
        make_client(tmp_path, max_retries=2).get_json(replay_server.url + "/down.json")
    assert len(replay_server.requests_to("/down.json")) == 3  # first try + 2 retries


def test_read_timeout_is_retried(tmp_path, replay_server):
    replay_server.set_json("/hang.json", {"ok": 4})
    replay_server.add_fault("/hang.json", Fault(delay_s=1.5))
    response = make_client(tmp_path, read_timeout_s=0.4).get_json(replay_server.url + "/hang.json")
    assert response.data == {"ok": 4}
    assert len(replay_server.requests_to("/hang.json")) == 2


def test_timeouts_everywhere_end_in_a_source_error(tmp_path, replay_server):
    replay_server.set_json("/hang.json", {"ok": 4})
    for _ in range(5):
        replay_server.add_fault("/hang.json", Fault(delay_s=1.0))
    with pytest.raises(SourceError, match="failed after retries"):
        make_client(tmp_path, read_timeout_s=0.2, max_retries=1).get_json(replay_server.url + "/hang.json")


def test_malformed_json_is_fetched_again_then_reported(tmp_path, replay_server):
    replay_server.set_json("/odd.json", {"ok": 5})
    replay_server.add_fault("/odd.json", Fault(body="<html>Bad gateway</html>"))
    assert make_client(tmp_path).get_json(replay_server.url + "/odd.json").data == {"ok": 5}
    for _ in range(5):
        replay_server.add_fault("/odd.json", Fault(body='{"topic_list": [truncated'))
    with pytest.raises(MalformedResponse, match="not JSON"):
        make_client(tmp_path).get_json(replay_server.url + "/odd.json")


def test_conditional_request_gets_304_and_serves_the_cached_body(tmp_path, replay_server):
    replay_server.set_json("/c/x.json", {"topic_list": {"topics": [1, 2]}})
    client = make_client(tmp_path)
    first = client.get_json(replay_server.url + "/c/x.json")
    second = make_client(tmp_path).get_json(replay_server.url + "/c/x.json")  # a new run, same cache
    assert not first.not_modified and second.not_modified
    assert second.data == first.data
    seen = replay_server.requests_to("/c/x.json")
    assert [s.status for s in seen] == [200, 304]
    assert "If-None-Match" in seen[1].headers
    replay_server.set_json("/c/x.json", {"topic_list": {"topics": [1, 2, 3]}})
    third = make_client(tmp_path).get_json(replay_server.url + "/c/x.json")
    assert not third.not_modified and third.data["topic_list"]["topics"] == [1, 2, 3]


def test_rate_limit_spaces_requests(tmp_path, replay_server):
    replay_server.set_json("/r.json", {})
    client = make_client(tmp_path, requests_per_second=10, cache=None)
    started = time.monotonic()
    for _ in range(4):
        client.get_json(replay_server.url + "/r.json")
    assert time.monotonic() - started >= 0.3  # 4 requests at 10/s need at least 3 intervals
