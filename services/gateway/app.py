"""HTTP transport of the gateway (FastAPI): the chat page, its JSON/SSE API and health endpoints.

    GET  /              the chat page (static files served from this package: no CDN, works offline)
    POST /api/chat      {"session_id", "question"} -> text/event-stream: metadata, sources, delta..., done | error
    POST /api/feedback  {"answer_id", "session_id", "rating": "helpful"|"not_helpful", "comment"} -> 204
    GET  /api/model     the served model and index (the inference service's GetModelInfo)
    GET  /healthz       liveness of the gateway itself
    GET  /readyz        200 when the inference service's gRPC health is SERVING, else 503

Errors are JSON {"error": {"code", "message"}} with the HTTP status of the gRPC code; a failure after the
stream started arrives as an `error` event instead. Tracebacks are logged, never sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

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

# The page loads nothing from elsewhere and runs no inline script: rendered answers cannot execute code.
SECURITY_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
      b"form-action 'self'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


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


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (plain ASGI: leaves the SSE stream unbuffered)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def owner_of(request: Request) -> str:
        if settings.owner_header:
            return request.headers.get(settings.owner_header, "") or settings.owner
        return settings.owner

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(part for part in error['loc'][1:] if isinstance(part, str)) or 'body'}: {error['msg']}" for error in exc.errors()
        )
        return error_response(400, "invalid_argument", problems)

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
        # The first event is read before answering, so errors found up front (bad input, service down, queue
        # full) get their HTTP status; later ones can only be an `error` event in the stream.
        try:
            first = await anext(events)
        except ServiceError as exc:
            return service_error_response(exc)
        return EventSourceResponse(_event_stream(first, events), ping=15,
                                   headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/feedback", status_code=204)
    async def feedback(body: FeedbackBody, request: Request) -> Response:
        await request.app.state.core.submit_feedback(body.answer_id, body.session_id, owner_of(request),
                                                     body.rating, body.comment)
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
