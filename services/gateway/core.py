"""The gateway's core: calls the inference service over gRPC (grpc.aio) and turns its answers into events.

No HTTP here: the transport (`app.py`) sends these events as Server-Sent Events and maps the errors below to
HTTP statuses. gRPC failures become the shared domain errors (`jenkins_assistant.common.errors`), so one table
in the transport decides what a browser is told.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.channels import aio_client_channel
from jenkins_assistant.common.errors import InvalidInput, ServiceError, error_for_status
from jenkins_assistant.common.records import finish_reason_from_pb
from jenkins_assistant.gateway.config import GatewaySettings
from jenkins_assistant.gateway.render import answer_html
from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)

RATINGS = {"helpful": common_pb2.RATING_HELPFUL, "not_helpful": common_pb2.RATING_NOT_HELPFUL}


def domain_error(exc: grpc.aio.AioRpcError, call: str) -> ServiceError:
    """The domain error for a failed inference call (INTERNAL and unknown codes become a plain ServiceError)."""
    log.warning("inference %s failed: %s: %s", call, exc.code().name, exc.details())
    return error_for_status(exc.code().name, exc.details() or exc.code().name)


@dataclass(frozen=True)
class ChatEvent:
    """One event of an answer: metadata, delta, sources or done (the names the page listens for)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


def _to_dict(message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


async def _answer_events(call, method: str, metadata: Callable[[Any], dict[str, Any]]) -> AsyncIterator[ChatEvent]:
    """The events of a streamed answer (Chat and ExplainBuildLog send the same kinds; only their metadata differs).
    Closing it cancels the gRPC call, which frees the inference slot."""
    answer: list[str] = []
    try:
        async for response in call:
            kind = response.WhichOneof("event")
            if kind == "metadata":
                yield ChatEvent("metadata", metadata(response.metadata))
            elif kind == "delta":
                answer.append(response.delta.text)
                yield ChatEvent("delta", {"text": response.delta.text, "quoted": response.delta.quoted})
            elif kind == "sources":
                yield ChatEvent("sources", {"sources": [_to_dict(s) for s in response.sources.sources]})
            elif kind == "finished":
                yield ChatEvent("done", {
                    "finish_reason": finish_reason_from_pb(response.finished.finish_reason),
                    "usage": _to_dict(response.finished.usage),
                    "html": answer_html("".join(answer)),
                    "warnings": list(response.finished.warnings),
                })
    except grpc.aio.AioRpcError as exc:
        raise domain_error(exc, method) from None
    finally:
        call.cancel()  # no-op once the stream has ended


class GatewayCore:
    """Create it on the running event loop (grpc.aio binds its channel to the loop); `await close()` at the end."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._channel = aio_client_channel(settings.inference_target)  # round_robin over every inference replica
        self._inference = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._build_log = build_log_pb2_grpc.BuildLogServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._metadata = bearer_metadata(settings.token)

    def _validate_question(self, question: str) -> None:
        # The inference service checks the same; checking here first spares it an oversized request.
        if not question.strip():
            raise InvalidInput("question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidInput(
                f"question has {len(question)} characters; the limit is {self.settings.max_question_chars}"
            )

    async def chat(self, question: str, session_id: str, owner: str) -> AsyncIterator[ChatEvent]:
        """metadata, sources, delta..., done (with the answer rendered as HTML and the warnings known only at the
        end), in the order the inference service sends them: the sources come before the text. Closing the
        iterator early (the browser stopped or went away) cancels the gRPC call, which frees the inference slot."""
        self._validate_question(question)
        request = inference_pb2.ChatRequest(
            question=question, session_id=session_id, owner=owner,
            options=common_pb2.GenerationOptions(max_tokens=self.settings.max_tokens),
        )
        call = self._inference.Chat(request, timeout=self.settings.request_timeout_s, metadata=self._metadata)
        async with contextlib.aclosing(_answer_events(call, "Chat", _to_dict)) as events:
            async for event in events:
                yield event

    async def explain(self, log: bytes, owner: str, job_name: str = "", build_number: int = 0,
                      refresh: bool = False) -> AsyncIterator[ChatEvent]:
        """An explanation of a failed build, as the events of `chat`; its metadata also carries the facts extracted
        from the log and whether the explanation is a reused one. The inference service checks the log (empty,
        binary, over its limit: INVALID_ARGUMENT naming it)."""
        request = build_log_pb2.ExplainBuildLogRequest(
            log=log, owner=owner, job_name=job_name, build_number=build_number, refresh=refresh,
            options=common_pb2.GenerationOptions(max_tokens=self.settings.max_tokens),
        )
        call = self._build_log.ExplainBuildLog(request, timeout=self.settings.request_timeout_s,
                                               metadata=self._metadata)

        def metadata(m: build_log_pb2.ExplainBuildLogMetadata) -> dict[str, Any]:
            return {**_to_dict(m.answer), "facts": _to_dict(m.facts), "reused": m.reused}

        async with contextlib.aclosing(_answer_events(call, "ExplainBuildLog", metadata)) as events:
            async for event in events:
                yield event

    async def submit_feedback(self, answer_id: str, session_id: str, owner: str, rating: str, comment: str,
                              corrected_answer: str = "") -> None:
        if rating not in RATINGS:
            raise InvalidInput(f"rating must be one of {sorted(RATINGS)}")
        request = inference_pb2.SubmitFeedbackRequest(
            answer_id=answer_id, session_id=session_id, owner=owner, rating=RATINGS[rating], comment=comment,
            corrected_answer=corrected_answer,
        )
        try:
            await self._inference.SubmitFeedback(request, timeout=self.settings.call_timeout_s,
                                                 metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "SubmitFeedback") from None

    async def model_info(self) -> dict[str, Any]:
        try:
            reply = await self._inference.GetModelInfo(inference_pb2.GetModelInfoRequest(),
                                                       timeout=self.settings.call_timeout_s,
                                                       metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise domain_error(exc, "GetModelInfo") from None
        return _to_dict(reply)

    async def inference_ready(self) -> bool:
        """Whether the inference service's gRPC health says SERVING (false while it loads or when unreachable)."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=self.settings.call_timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        await self._channel.close()
