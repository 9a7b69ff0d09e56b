"""The gateway's HTTP API, served by a real gateway process (uvicorn) in front of the real inference service."""

from __future__ import annotations

import json
import re
import socket
import uuid

import httpx
import pytest

from jenkins_assistant.gateway.app import STATIC_DIR
from tests.conftest import free_port
from tests.inference.fixtures import inference_queue_filled, scrape_metric, wait_for_metric


def sse_events(response: httpx.Response):
    """(event, data) pairs of a text/event-stream response, as they arrive."""
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].removeprefix(" "))


def test_chat_streams_server_sent_events_in_order_then_feedback_is_accepted(gateway):
    session = f"web-{uuid.uuid4().hex}"
    with httpx.Client(base_url=gateway.url, timeout=240) as client:
        with client.stream("POST", "/api/chat", json={"session_id": session,
                                                      "question": "How do I add a Jenkins agent?"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(response))
        names = [name for name, _ in events]
        assert names[:2] == ["metadata", "sources"] and names[-1] == "done", names
        assert set(names[2:-1]) == {"delta"}
        assert "".join(data["text"] for name, data in events if name == "delta").strip()
        assert events[1][1]["sources"] and all(s["url"].startswith("https://") for s in events[1][1]["sources"])
        assert events[-1][1]["html"].strip() and events[-1][1]["warnings"] == []
        answer_id = events[0][1]["answer_id"]
        reply = client.post("/api/feedback", json={"answer_id": answer_id, "session_id": session,
                                                   "rating": "not_helpful", "comment": "too short",
                                                   "corrected_answer": "Add it under Manage Jenkins > Nodes."})
        assert reply.status_code == 204
        reply = client.post("/api/feedback", json={"answer_id": answer_id, "session_id": session,
                                                   "rating": "not_helpful", "corrected_answer": "x" * 32_001})
        assert reply.status_code == 400 and "corrected_answer" in reply.json()["error"]["message"]
        # The answer belongs to its session: rating it from another one is refused.
        reply = client.post("/api/feedback", json={"answer_id": answer_id, "session_id": "another-session",
                                                   "rating": "helpful"})
        assert reply.status_code == 404 and "no answer" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"session_id": "s1", "question": ""}, "question is empty"),
        ({"session_id": "s1", "question": "x" * 4001}, "the limit is 4000"),
        ({"session_id": "bad id!", "question": "What is Jenkins?"}, "session_id"),
        ({"session_id": "s1"}, "question: Field required"),
        ({"question": "What is Jenkins?", "unexpected": 1}, "unexpected: Extra inputs are not permitted"),
        ({"question": ["not", "a", "string"]}, "question: Input should be a valid string"),
    ],
)
def test_bad_chat_input_is_400_with_the_reason(gateway, body, message):
    reply = httpx.post(f"{gateway.url}/api/chat", json=body, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_argument" and message in reply.json()["error"]["message"]


def test_malformed_json_and_bad_feedback_are_400(gateway):
    reply = httpx.post(f"{gateway.url}/api/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "JSON decode error" in reply.json()["error"]["message"]
    reply = httpx.post(f"{gateway.url}/api/feedback", json={"answer_id": "a1", "rating": "great"})
    assert reply.status_code == 400 and reply.json()["error"]["message"].startswith("rating:")


def test_model_health_and_readiness(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        model = client.get("/api/model")
        assert model.status_code == 200 and model.json()["model"] and model.json()["indexed_documents"] > 0
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200


def test_the_page_and_its_assets_are_served_from_the_package_with_no_external_url(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # Framed only by its own origin unless configured (GATEWAY_FRAME_ANCESTORS; test_browser embeds it).
        assert "frame-ancestors 'self';" in page.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert client.get(asset).status_code == 200
        assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    for path in (p for p in STATIC_DIR.iterdir() if p.suffix in {".html", ".css", ".js"}):
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()), path.name


def test_inference_down_is_503_and_not_ready(start_gateway):
    gateway = start_gateway(f"127.0.0.1:{free_port()}")
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        reply = client.post("/api/chat", json={"session_id": "s1", "question": "What is Jenkins?"})
        assert reply.status_code == 503
        assert reply.json() == {"error": {"code": "unavailable", "message":
                                          "The inference service is not available right now; try again shortly."}}
        assert client.get("/api/model").status_code == 503
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_a_token_the_inference_service_refuses_is_502(start_gateway, inference_process):
    gateway = start_gateway(inference_process.target, GATEWAY_INFERENCE_TOKEN="not-the-token")
    reply = httpx.post(f"{gateway.url}/api/chat", json={"question": "What is Jenkins?"}, timeout=30)
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "unauthenticated"


def test_a_full_inference_queue_is_429_with_retry_after(gateway, inference_process):
    with inference_queue_filled(inference_process):
        reply = httpx.post(f"{gateway.url}/api/chat", json={"question": "One more?"}, timeout=30)
    assert reply.status_code == 429 and reply.headers["retry-after"] == "5"
    assert reply.json()["error"]["code"] == "resource_exhausted"
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0


def test_closing_the_stream_cancels_generation(start_gateway, inference_process):
    """What the page's Stop button does: the fetch is aborted, the gateway cancels the gRPC call, the slot frees."""
    gateway = start_gateway(inference_process.target, GATEWAY_MAX_TOKENS="1500")
    cancelled_before = scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                                     'finish_reason="cancelled"')
    with httpx.stream("POST", f"{gateway.url}/api/chat", json={"question": "Explain Jenkins pipelines in detail."},
                      timeout=240) as reply:
        for name, _ in sse_events(reply):
            if name == "delta":
                break
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0
    assert scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                         'finish_reason="cancelled"') == cancelled_before + 1


def test_a_failure_after_the_stream_started_is_an_error_event(start_gateway, inference_process):
    gateway = start_gateway(inference_process.target, GATEWAY_MAX_TOKENS="1500", GATEWAY_REQUEST_TIMEOUT_S="4")
    with httpx.stream("POST", f"{gateway.url}/api/chat", json={"question": "Describe every Jenkins feature."},
                      timeout=60) as reply:
        assert reply.status_code == 200
        events = list(sse_events(reply))
    assert events[0][0] == "metadata"
    assert events[-1] == ("error", {"code": "deadline_exceeded", "status": 504,
                                    "message": "The answer took too long and was stopped."})
    assert "done" not in [name for name, _ in events]
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0


def test_sessions_belong_to_the_user_an_authenticating_proxy_names(start_gateway, inference_process):
    gateway = start_gateway(inference_process.target, GATEWAY_OWNER_HEADER="X-Forwarded-User", GATEWAY_MAX_TOKENS="8")
    session = f"web-{uuid.uuid4().hex}"
    with httpx.Client(base_url=gateway.url, timeout=240) as client:
        with client.stream("POST", "/api/chat", json={"session_id": session, "question": "What is a Jenkins agent?"},
                           headers={"X-Forwarded-User": "alice"}) as response:
            events = list(sse_events(response))
        assert events[-1][0] == "done"
        rating = {"answer_id": events[0][1]["answer_id"], "session_id": session, "rating": "helpful"}
        assert client.post("/api/feedback", json=rating, headers={"X-Forwarded-User": "bob"}).status_code == 404
        assert client.post("/api/feedback", json=rating).status_code == 404  # the default owner is not alice either
        assert client.post("/api/feedback", json=rating, headers={"X-Forwarded-User": "alice"}).status_code == 204


def test_another_browser_can_neither_rate_an_answer_nor_read_its_conversation(start_gateway, inference_process):
    """Without a proxy naming users each browser is its own owner (an HttpOnly cookie): knowing another browser's
    session id and answer id is not enough to rate that answer or to continue that conversation."""
    gateway = start_gateway(inference_process.target, GATEWAY_MAX_TOKENS="8")
    session = f"web-{uuid.uuid4().hex}"
    with httpx.Client(base_url=gateway.url, timeout=240) as first, httpx.Client(base_url=gateway.url,
                                                                                timeout=240) as second:
        with first.stream("POST", "/api/chat", json={"session_id": session, "question": "What is a Jenkins agent?"}) \
                as response:
            cookie = response.headers["set-cookie"]
            events = list(sse_events(response))
        assert events[-1][0] == "done"
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and first.cookies.get("ja_browser")
        rating = {"answer_id": events[0][1]["answer_id"], "session_id": session, "rating": "not_helpful"}
        refused = second.post("/api/feedback", json=rating)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
        with second.stream("POST", "/api/chat", json={"session_id": session, "question": "And how do I add one?"}) \
                as response:
            metadata = next(data for name, data in sse_events(response) if name == "metadata")
        assert metadata["history_turns_used"] == 0  # the first browser's exchange is not its history
        assert first.post("/api/feedback", json=rating).status_code == 204


def test_an_oversized_body_is_413_before_it_is_parsed(start_gateway):
    # No inference service is needed: nothing here gets past the gateway.
    gateway = start_gateway(f"127.0.0.1:{free_port()}", GATEWAY_MAX_BODY_BYTES="2048")
    json_type = {"content-type": "application/json"}
    # Chunked (no Content-Length) and not even JSON: parsed, it would be a 400; counted as it arrives, it is a 413.
    reply = httpx.post(f"{gateway.url}/api/chat", content=iter([b"{" + b"x" * 1500, b"x" * 1500]), headers=json_type,
                       timeout=30)
    assert reply.status_code == 413, reply.text
    assert reply.json() == {"error": {"code": "payload_too_large",
                                      "message": "the request body exceeds 2048 bytes"}}
    # A Content-Length over the limit is answered without waiting for the body (none is ever sent here).
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as raw:
        raw.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 5000000\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")
    # Under the limit, the body is parsed and checked as before.
    reply = httpx.post(f"{gateway.url}/api/chat", json={"question": " " * 1500}, timeout=30)
    assert reply.status_code == 400 and reply.json()["error"]["message"] == "question is empty"


def test_a_body_that_is_not_utf8_and_an_unknown_path_get_the_documented_error_shape(start_gateway):
    gateway = start_gateway(f"127.0.0.1:{free_port()}")
    reply = httpx.post(f"{gateway.url}/api/chat", content=b'{"question": "\xff\xfe"}',
                       headers={"content-type": "application/json"}, timeout=30)
    assert reply.status_code == 400 and set(reply.json()) == {"error"}
    assert reply.json()["error"]["code"] == "invalid_argument"
    reply = httpx.get(f"{gateway.url}/api/nothing-here", timeout=30)
    assert reply.status_code == 404 and reply.json() == {"error": {"code": "not_found", "message": "Not Found"}}


def test_frame_ancestors_come_from_configuration_and_cannot_inject_directives():
    from pydantic import ValidationError

    from jenkins_assistant.gateway.app import security_headers
    from jenkins_assistant.gateway.config import GatewaySettings

    settings = GatewaySettings(frame_ancestors="'self' https://jenkins.example.com")
    csp = dict(security_headers(settings.frame_ancestors))[b"content-security-policy"].decode()
    assert "frame-ancestors 'self' https://jenkins.example.com; form-action 'self'" in csp
    for bad in ("'self'; script-src *", "https://a.example, https://b.example", "'self'\r\nSet-Cookie: x=1", "",
                "https://jenkins.exämple.com"):
        with pytest.raises(ValidationError):
            GatewaySettings(frame_ancestors=bad)
