"""HTTP transport of the gateway (FastAPI): the chat page, its JSON/SSE API and health endpoints.

    GET  /              the chat page (static files served from this package: no CDN, works offline)
    POST /api/chat      {"session_id", "question"} -> text/event-stream: metadata, sources, delta..., done | error
    GET  /explain       the page explaining a failed build from its console log (pasted or uploaded)
    POST /api/explain   the console log as the body (?job_name=&build_number=&refresh=) -> text/event-stream:
                        metadata (with the facts extracted from the log), sources, delta..., done | error
    GET  /api/limits    {"max_log_bytes", "max_question_chars"}: what the pages may send
    POST /api/feedback  {"answer_id", "session_id", "rating": "helpful"|"not_helpful", "comment",
                         "corrected_answer"} -> 204 (the last two optional)
    GET  /api/model     the served model and index (the inference service's GetModelInfo)
    GET  /healthz       liveness of the gateway itself
    GET  /readyz        200 when the inference service's gRPC health is SERVING, else 503

Errors are JSON {"error": {"code", "message"}} with the HTTP status of the gRPC code (and for the gateway's own
refusals: 413 for a body over max_body_bytes, 400 for one that is not JSON or not UTF-8); a failure after the
stream started arrives as an `error` event instead. Tracebacks are logged, never sent.

Whose sessions and answers: the user an authenticating proxy names (owner_header), else the browser itself: each
gets a random id in an HttpOnly cookie and is the owner '<owner>:<id>', so another browser that learns a session
id or an answer id can neither read that conversation nor rate its answers.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import cookie_parser

from jenkins_assistant.common.errors import ServiceError
from jenkins_assistant.gateway.config import GatewaySettings
from jenkins_assistant.gateway.core import ChatEvent, GatewayCore

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

# HTTP status per gRPC status name. UNAUTHENTICATED is the gateway's own token being refused by the inference
# service, which the browser cannot fix: a bad gateway, not a 401 asking the user to sign in.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNAUTHENTICATED": 502,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# Codes whose upstream message is about the user's own input and is shown as is; the others get a fixed
# message (upstream details name internal addresses and are only logged).
USER_FACING = {"INVALID_ARGUMENT", "NOT_FOUND"}
PUBLIC_MESSAGE = {
    "RESOURCE_EXHAUSTED": "The assistant is busy answering other questions; try again in a few seconds.",
    "UNAUTHENTICATED": "The gateway is not authorised by the inference service (check GATEWAY_INFERENCE_TOKEN).",
    "UNAVAILABLE": "The inference service is not available right now; try again shortly.",
    "DEADLINE_EXCEEDED": "The answer took too long and was stopped.",
}
INTERNAL_MESSAGE = "The assistant failed to answer."
# Codes of the HTTP errors raised by the framework itself (unknown path, wrong method, a body that does not parse).
HTTP_CODES = {400: "invalid_argument", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

BROWSER_COOKIE = "ja_browser"
BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{32}")
BROWSER_COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie

# The page loads nothing from elsewhere and runs no inline script: rendered answers cannot execute code. Who may
# frame it is configuration (frame_ancestors): a Jenkins page embeds it, any other site must not (clickjacking).
def security_headers(frame_ancestors: str = "'self'") -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy",
         (b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors "
          + frame_ancestors.encode("ascii") + b"; form-action 'self'")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]


SECURITY_HEADERS = security_headers()


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field("", max_length=128, description="Conversation id; empty = a one-off question.")
    question: str


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(min_length=1, max_length=128)
    session_id: str = Field("", max_length=128)
    rating: Literal["helpful", "not_helpful"]
    comment: str = Field("", max_length=2000)
    # The answer the user would have wanted; the inference and memory services check its size (32000 by default).
    corrected_answer: str = Field("", max_length=32_000)


def error_payload(exc: ServiceError) -> tuple[int, dict[str, str]]:
    code = exc.status_code_name
    if code in USER_FACING:
        message = str(exc)
    else:
        message = PUBLIC_MESSAGE.get(code, INTERNAL_MESSAGE)
    return HTTP_STATUS.get(code, 502), {"code": code.lower(), "message": message}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def service_error_response(exc: ServiceError) -> JSONResponse:
    status, error = error_payload(exc)
    # A full queue clears within one answer; tell clients when to come back.
    headers = {"Retry-After": "5"} if status == 429 else None
    return error_response(status, error["code"], error["message"], headers)


def _sse(event: ChatEvent) -> dict[str, str]:
    return {"event": event.name, "data": json.dumps(event.data, ensure_ascii=False)}


async def _event_stream(first: ChatEvent, events: AsyncIterator[ChatEvent]) -> AsyncIterator[dict[str, str]]:
    try:
        yield _sse(first)
        async for event in events:
            yield _sse(event)
    except ServiceError as exc:
        status, error = error_payload(exc)
        yield _sse(ChatEvent("error", {**error, "status": status}))
    except Exception:
        log.exception("answer stream failed")
        yield _sse(ChatEvent("error", {"code": "internal", "message": INTERNAL_MESSAGE, "status": 500}))
    finally:
        await events.aclose()  # cancels the gRPC call when the browser stopped or left

async def _sse_response(events: AsyncIterator[ChatEvent]) -> Response:
    """The stream as server-sent events. Its first event is read before answering, so errors found up front (bad
    input, service down, queue full) get their HTTP status; later ones can only be an `error` event."""
    try:
        first = await anext(events)
    except ServiceError as exc:
        return service_error_response(exc)
    return EventSourceResponse(_event_stream(first, events), ping=15,
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})



class SecurityHeaders:
    """Adds the security headers to every HTTP response (plain ASGI: leaves the SSE stream unbuffered)."""

    def __init__(self, app, headers: list[tuple[bytes, bytes]] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class BodyLimit:
    """Refuses a request body over `limit_bytes` (or its path's limit in `path_limits`) with 413 before any of it is
    parsed (plain ASGI).

    A Content-Length over the limit is refused at once, without reading the body. Otherwise the body is counted as
    it arrives, so a chunked body (no Content-Length) is held to the same limit; the app then gets the body read
    here. FastAPI would read and parse the whole body (a 5 MB JSON once) before any field limit applied.
    """

    def __init__(self, app, limit_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit_bytes = limit_bytes
        self.path_limits = path_limits or {}

    @staticmethod
    def _too_large(limit: int) -> JSONResponse:
        return error_response(413, "payload_too_large", f"the request body exceeds {limit} bytes")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.limit_bytes)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete: nothing to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._too_large(limit)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        buffered = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            # The body once, then the real channel: a streaming answer still learns of the browser leaving.
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)


class BrowserIdentity:
    """Gives each browser a random id in a cookie (scope["browser_id"]), set on the first response that lacks it.

    HttpOnly keeps it from page scripts; SameSite=Lax keeps it off other sites' POSTs yet sends it when the user
    follows a link to the page (Strict would not, and the page would hand out a new id each time).
    """

    def __init__(self, app, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        browser_id = cookie_parser(_header(scope, b"cookie") or "").get(BROWSER_COOKIE, "")
        issue = not BROWSER_ID.fullmatch(browser_id)
        if issue:
            browser_id = secrets.token_urlsafe(24)  # 32 characters, 192 random bits: the id is the credential
        scope["browser_id"] = browser_id
        cookie = (f"{BROWSER_COOKIE}={browser_id}; Path=/; Max-Age={BROWSER_COOKIE_MAX_AGE_S}; HttpOnly; "
                  f"SameSite=Lax{'; Secure' if self.secure else ''}").encode()

        async def send_with_cookie(message) -> None:
            if issue and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.core = GatewayCore(settings)  # on the event loop, as grpc.aio needs
        try:
            yield
        finally:
            await app.state.core.close()

    # No /docs or /redoc: FastAPI's pages load Swagger UI from a CDN, and the gateway must work offline.
    app = FastAPI(title="Jenkins assistant gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The last added runs first: security headers on every response, the 413 before anything reads the body.
    app.add_middleware(BrowserIdentity, secure=settings.cookie_secure)
    # A console log is the body of /api/explain: it gets the log limit, every other body the small one.
    app.add_middleware(BodyLimit, limit_bytes=settings.max_body_bytes,
                       path_limits={"/api/explain": settings.max_log_bytes})
    app.add_middleware(SecurityHeaders, headers=security_headers(settings.frame_ancestors))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def owner_of(request: Request) -> str:
        if settings.owner_header and (user := request.headers.get(settings.owner_header, "")):
            return user
        return f"{settings.owner}:{request.scope['browser_id']}"

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(part for part in error['loc'][1:] if isinstance(part, str)) or 'body'}: {error['msg']}" for error in exc.errors()
        )
        return error_response(400, "invalid_argument", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals ({"detail": ...}: a body that is not UTF-8, an unknown path) in the documented shape.
        return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail),
                              dict(exc.headers) if exc.headers else None)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return service_error_response(exc)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", INTERNAL_MESSAGE)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.post("/api/chat")
    async def chat(body: ChatBody, request: Request) -> Response:
        events = request.app.state.core.chat(body.question, body.session_id, owner_of(request))
        return await _sse_response(events)

    @app.get("/explain", include_in_schema=False)
    async def explain_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "explain.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/limits")
    async def limits() -> dict:
        return {"max_log_bytes": settings.max_log_bytes, "max_question_chars": settings.max_question_chars}

    @app.post("/api/explain")
    async def explain(
        request: Request,
        job_name: Annotated[str, Query(max_length=1000)] = "",
        build_number: Annotated[int, Query(ge=0)] = 0,
        refresh: bool = False,
    ) -> Response:
        # The body is the log as bytes (not JSON, whose escapes would grow a log with ANSI colours up to 6 times
        # past the limit); BodyLimit has already held it to max_log_bytes.
        log_bytes = await request.body()
        events = request.app.state.core.explain(log_bytes, owner_of(request), job_name, build_number, refresh)
        return await _sse_response(events)

    @app.post("/api/feedback", status_code=204)
    async def feedback(body: FeedbackBody, request: Request) -> Response:
        await request.app.state.core.submit_feedback(body.answer_id, body.session_id, owner_of(request),
                                                     body.rating, body.comment, body.corrected_answer)
        return Response(status_code=204)

    @app.get("/api/model")
    async def model(request: Request) -> dict:
        return await request.app.state.core.model_info()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        if await request.app.state.core.inference_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "inference service not serving"}, status_code=503)

    return app
