"""POST /api/explain and the explain page's routes, on a real gateway process in front of the real inference service
(SmolLM2, the sample index, the explanation cache on the tests' redis-server)."""

from __future__ import annotations

import re
import socket

import httpx

from tests.build_log.conftest import MANIFEST, read_log
from tests.conftest import free_port
from tests.gateway.test_app import sse_events
from tests.inference.fixtures import BUILD_LOG_LIMIT_BYTES

LOG_NAME = "unsupported_class_version.log"
TEXT = {"content-type": "text/plain; charset=utf-8"}


def test_explain_streams_the_facts_first_then_sources_text_and_done(gateway):
    with httpx.Client(base_url=gateway.url, timeout=240) as client, client.stream(
            "POST", "/api/explain", content=read_log(LOG_NAME), headers=TEXT,
            params={"job_name": "shop/main", "build_number": 42, "refresh": "true"}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    names = [name for name, _ in events]
    assert names[:2] == ["metadata", "sources"] and names[-1] == "done", names
    assert set(names[2:-1]) == {"delta"}
    metadata = events[0][1]
    expected = MANIFEST[LOG_NAME]
    assert metadata["facts"]["signature_id"] == expected["signature_id"]
    assert metadata["facts"]["stage"] == expected["stage"] and metadata["facts"]["fingerprint"]
    assert metadata["reused"] is False and metadata["answer_id"]
    assert events[-1][1]["html"].strip()
    # No planted secret in anything the browser gets.
    wire = repr(events)
    for secret in expected["secrets"]:
        assert secret not in wire


def test_bad_logs_and_parameters_are_400_with_the_reason(gateway):
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        for body, reason in ((b"", "empty"), (b"\x00\x01\x02\x03" * 2048, "binary")):
            reply = client.post("/api/explain", content=body, headers=TEXT)
            assert reply.status_code == 400 and reason in reply.json()["error"]["message"], reply.text
        reply = client.post("/api/explain", content=read_log(LOG_NAME), headers=TEXT, params={"build_number": -1})
        assert reply.status_code == 400 and "build_number" in reply.json()["error"]["message"]


def test_a_log_over_the_limit_is_413_naming_it_before_it_is_read(gateway):
    """The gateway's limit is the inference service's (here the fixture's 4.5 MiB): a 50 MB log is refused from
    its Content-Length, without the gateway reading it."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as raw:
        raw.sendall(b"POST /api/explain HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 52428800\r\n\r\n")
        reply = b""
        while b"}}" not in reply and (chunk := raw.recv(65536)):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and f"exceeds {BUILD_LOG_LIMIT_BYTES} bytes".encode() in reply


def test_the_log_limit_is_the_explain_endpoints_alone(start_gateway):
    gateway = start_gateway(f"127.0.0.1:{free_port()}", GATEWAY_MAX_LOG_BYTES="4096", GATEWAY_MAX_BODY_BYTES="2048")
    reply = httpx.post(f"{gateway.url}/api/explain", content=iter([b"x" * 3000, b"x" * 3000]), headers=TEXT,
                       timeout=30)  # chunked: counted as it arrives
    assert reply.status_code == 413 and reply.json()["error"]["message"] == "the request body exceeds 4096 bytes"
    reply = httpx.post(f"{gateway.url}/api/chat", json={"question": "x" * 3000}, timeout=30)
    assert reply.status_code == 413 and "2048" in reply.json()["error"]["message"]
    assert httpx.get(f"{gateway.url}/api/limits", timeout=30).json()["max_log_bytes"] == 4096


def test_the_explain_page_and_its_assets_are_served(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        page = client.get("/explain")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert "/static/explain.js" in assets
        for asset in assets:
            assert client.get(asset).status_code == 200
        assert 'href="/explain"' in client.get("/").text
