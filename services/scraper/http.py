"""A polite, resilient HTTP client for the forum and Q&A APIs.

* `requests.Session` with an urllib3 `Retry`: 429 and 5xx answers, connection errors and read
  timeouts are retried with exponential backoff; `Retry-After` is honoured (capped, so a hostile
  header cannot park a run for a day).
* A rate limit (minimum interval between requests), a descriptive User-Agent, and a
  (connect, read) timeout on every request.
* Conditional requests: validators (ETag / Last-Modified) and the last body of every URL are kept
  in an `HttpCache` on disk; a `304 Not Modified` answer is served from it, so an unchanged
  source costs one small request per URL and no parsing surprises.
* A 200 answer whose body is not JSON (a truncated proxy reply, an HTML error page) is fetched
  again a few times with tenacity before the source is reported as failing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential
from urllib3.util.retry import Retry

from jenkins_assistant.common.files import atomic_write_text

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class SourceError(RuntimeError):
    """A source could not be read even after retries (HTTP error, undecodable payload)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of an error answer, None for other failures


class MalformedResponse(SourceError):
    """The server answered 200 with a body that is not the JSON we asked for."""


class CappedRetry(Retry):
    """urllib3 Retry whose Retry-After and backoff waits never exceed `max_wait_s`."""

    max_wait_s: float = 300.0

    def new(self, **kw):  # keep the cap on the copies urllib3 makes at every attempt
        retry = super().new(**kw)
        retry.max_wait_s = self.max_wait_s
        return retry

    def get_retry_after(self, response):
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.max_wait_s)


class RateLimiter:
    """At most `per_second` requests per second from this client (shared by its threads)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._lock = threading.Lock()
        self._next_at = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next_at - now
            self._next_at = max(now, self._next_at) + self._interval
        if delay > 0:
            time.sleep(delay)


class HttpCache:
    """Validators and bodies of earlier answers, one JSON file per URL (written atomically)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as handle:
                entry = json.load(handle)
        except (OSError, ValueError):
            return None
        return entry if entry.get("key") == key else None

    def put(self, key: str, etag: str | None, last_modified: str | None, body: str) -> None:
        entry = {"key": key, "etag": etag, "last_modified": last_modified, "body": body}
        atomic_write_text(self._path(key), json.dumps(entry, ensure_ascii=False))


@dataclass
class JsonResponse:
    data: object
    not_modified: bool  # True: the server said 304 and `data` is the cached body
    status: int
    headers: dict[str, str]


@dataclass
class HttpStats:
    requests: int = 0
    not_modified: int = 0
    retries_observed: int = 0


class PoliteClient:
    """GETs JSON with retries, a rate limit, a User-Agent, timeouts and conditional requests."""

    def __init__(
        self,
        *,
        user_agent: str,
        requests_per_second: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_retries: int,
        backoff_factor_s: float,
        max_retry_after_s: float,
        cache: HttpCache | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.session = requests.Session()
        transport_retry = CappedRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            backoff_factor=backoff_factor_s,
            backoff_max=max_retry_after_s,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last 429/5xx comes back as a response: we raise SourceError
        )
        transport_retry.max_wait_s = max_retry_after_s
        adapter = HTTPAdapter(max_retries=transport_retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self.session.headers.update(extra_headers or {})
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.limiter = RateLimiter(requests_per_second)
        self.cache = cache
        self.stats = HttpStats()
        self.conditional = True  # send If-None-Match / If-Modified-Since from the cache
        # A 200 whose body is not JSON is fetched again a few times (built once, not per request).
        self._fetch = retry(
            retry=retry_if_exception_type(MalformedResponse),
            stop=stop_after_attempt(max(1, min(3, max_retries + 1))),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )(self._get_once)

    @classmethod
    def from_settings(cls, settings, cache: HttpCache | None, extra_headers: dict[str, str] | None = None):
        return cls(
            user_agent=settings.user_agent,
            requests_per_second=settings.requests_per_second,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_retries=settings.max_retries,
            backoff_factor_s=settings.backoff_factor_s,
            max_retry_after_s=settings.max_retry_after_s,
            cache=cache,
            extra_headers=extra_headers,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def get_json(self, url: str, params: dict | None = None, *, conditional: bool | None = None) -> JsonResponse:
        key = url + ("?" + urlencode(sorted((params or {}).items()), doseq=True) if params else "")
        return self._fetch(url, params, key, self.conditional if conditional is None else conditional)

    def _get_once(self, url: str, params: dict | None, key: str, conditional: bool) -> JsonResponse:
        headers: dict[str, str] = {}
        cached = self.cache.get(key) if (self.cache is not None and conditional) else None
        if cached:
            if cached.get("etag"):
                headers["If-None-Match"] = cached["etag"]
            if cached.get("last_modified"):
                headers["If-Modified-Since"] = cached["last_modified"]
        self.limiter.wait()
        self.stats.requests += 1
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceError(f"GET {key} failed after retries: {exc}") from exc
        history = getattr(response.raw, "retries", None)
        if history is not None and history.history:
            self.stats.retries_observed += len(history.history)
        if response.status_code == 304 and cached:
            self.stats.not_modified += 1
            return JsonResponse(json.loads(cached["body"]), True, 304, dict(response.headers))
        if response.status_code >= 400:
            raise SourceError(f"GET {key}: HTTP {response.status_code} after retries: {response.text[:200]!r}",
                              status=response.status_code)
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedResponse(f"GET {key}: body is not JSON ({exc}): {response.text[:120]!r}") from exc
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if self.cache is not None and (etag or last_modified):
            self.cache.put(key, etag, last_modified, response.text)
        return JsonResponse(data, False, response.status_code, dict(response.headers))
