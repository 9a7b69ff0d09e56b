"""A loopback HTTP server that replays API responses and injects faults, for the scraper tests.

Responses are registered per path (query included when it matters). Every answer carries an
ETag, and `If-None-Match` with the current ETag gets 304, like Discourse does. Faults are queued
per path and used up one request at a time: an HTTP status with headers (429 + Retry-After, 503),
a delay longer than the client's read timeout, or a body that is not JSON.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # raw body instead of the registered one
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int  # 0 while the answer is still being prepared


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.delays: dict[str, float] = {}
        self.log: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_json(self, key: str, data) -> None:
        """Serve `data` at key = path, or path?query with the query keys in sorted order."""
        self.routes[key] = json.dumps(data)

    def add_fault(self, key: str, fault: Fault) -> None:
        self.faults[key].append(fault)

    def requests_to(self, prefix: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.log if seen.path.startswith(prefix)]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.log.append(seen)

    def _handler(self):
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                keys = [parts.path + ("?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())) if query else "")]
                if "page" in query:  # list endpoints: the page is what tells the answers apart
                    keys.append(f"{parts.path}?page={query['page']}")
                keys.append(parts.path)
                key = next((k for k in keys if k in replay.routes or replay.faults.get(k)), keys[-1])
                # Logged on arrival: a request still hanging in a delay fault has been seen.
                self._seen = Seen(parts.path, query, dict(self.headers), 0)
                replay._record(self._seen)
                fault = None
                with replay._lock:
                    if replay.faults.get(key):
                        fault = replay.faults[key].popleft()
                delay = (fault.delay_s if fault else 0.0) or replay.delays.get(parts.path.split("/")[1], 0.0)
                if delay:
                    time.sleep(delay)
                if fault is not None and (fault.status != 200 or fault.body is not None):
                    body = (fault.body if fault.body is not None else json.dumps({"error": "injected"})).encode()
                    self._send(fault.status, body, fault.headers)
                    return
                if key not in replay.routes:
                    self._send(404, b'{"errors": ["not found"]}', {})
                    return
                body = replay.routes[key].encode()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", {"ETag": etag})
                    return
                self._send(200, body, {"ETag": etag, "Content-Type": "application/json"})

            def _send(self, status, body, headers):
                self._seen.status = status
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (read timeout): that is the point of the fault

        return Handler
