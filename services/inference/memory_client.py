"""Client of the memory service: the last k exchanges of a session, appending a finished one, recording a finished
answer and rating it.

The inference service must answer even when memory is down: every failure other than NOT_FOUND
(a session this owner does not have yet = no history) surfaces as `MemoryUnavailable`, which the core
turns into a warning (in the answer's metadata for the history, in its finish event for the append).
Every failed call counts in `jenkins_assistant_inference_memory_failures_total`, retries included. Rating is what a
user asked for, so its errors are the user's: NOT_FOUND and INVALID_ARGUMENT come back as such.
"""

from __future__ import annotations

import logging
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from tenacity import AsyncRetrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.channels import aio_client_channel
from jenkins_assistant.common.errors import InvalidInput, NotFound, Unavailable
from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord, SourceRef
from jenkins_assistant.inference import metrics
from jenkins_assistant.inference.prompts import Exchange
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

log = logging.getLogger(__name__)

# gRPC's default reconnect backoff starts at 1 s and grows 1.6x per failed attempt up to 120 s, so after a memory
# restart this client went on failing for about 5 s. Reconnect attempts at most 1 s apart; a connect attempt may
# take up to 1 s (min_reconnect_backoff_ms is gRPC's minimum connect timeout), ample for loopback or a cluster.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.min_reconnect_backoff_ms", 1000),
)
# Waits between append attempts (exponential from 0.1 s with jitter, at most 0.5 s): a restarting memory service
# is back within a reconnect backoff, which is at most 1 s.
RETRY_WAIT = wait_exponential_jitter(multiplier=0.1, max=0.5, jitter=0.1)
# The shortest deadline worth giving a last attempt.
MIN_ATTEMPT_S = 0.05


class MemoryUnavailable(Exception):
    pass


def _timestamp(unix_s: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(unix_s * 1e9))
    return stamp


def _retryable(exc: BaseException) -> bool:
    # Only UNAVAILABLE: the call did not reach a memory service that could store it (connection refused or lost,
    # or the service's own Redis is down), so sending it again cannot store the exchange twice. A
    # DEADLINE_EXCEEDED append may have been stored, and AppendTurn is not idempotent.
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE


def _retryable_record(exc: BaseException) -> bool:
    # RecordAnswer is idempotent (an id already stored is left as it is), so a call that may have been stored can be
    # sent again too.
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                                                     grpc.StatusCode.DEADLINE_EXCEEDED)


class MemoryClient:
    def __init__(self, target: str, token: str | None, timeout_s: float) -> None:
        self._channel = aio_client_channel(target, CHANNEL_OPTIONS)  # round_robin over every memory replica
        self._stub = memory_pb2_grpc.MemoryServiceStub(self._channel)
        self._metadata = bearer_metadata(token)
        self._timeout_s = timeout_s
        self.target = target

    async def get_history(self, session_id: str, owner: str, k: int) -> list[Exchange]:
        try:
            reply = await self._stub.GetHistory(
                memory_pb2.GetHistoryRequest(session_id=session_id, owner=owner, k=k),
                timeout=self._timeout_s, metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return []
            metrics.MEMORY_FAILURES.labels("get_history").inc()
            raise MemoryUnavailable(f"{exc.code().name}: {exc.details()}") from exc
        return [Exchange(question=t.user_text, answer=t.assistant_text) for t in reply.turns]

    async def append_turn(
        self, session_id: str, owner: str, question: str, answer: str,
        sources: list[SourceRef], asked_at: float, answered_at: float, deadline_s: float | None = None,
    ) -> None:
        """Stores one exchange, trying again while the memory service is UNAVAILABLE until `deadline_s` (default:
        one call's timeout) has passed; each call is still bounded by the call timeout."""
        turn = memory_pb2.Turn(user_text=question, assistant_text=answer, sources=[s.to_pb() for s in sources],
                               asked_at=_timestamp(asked_at), answered_at=_timestamp(answered_at))
        request = memory_pb2.AppendTurnRequest(session_id=session_id, owner=owner, turn=turn)
        await self._retrying(self._stub.AppendTurn, request, "append_turn", _retryable, deadline_s,
                             f"append to session {session_id}")

    async def record_answer(self, record: AnswerRecord, deadline_s: float | None = None) -> None:
        """Keeps a finished answer for feedback and export, trying again while memory is UNAVAILABLE or slow until
        `deadline_s`."""
        request = memory_pb2.RecordAnswerRequest(answer=record.to_pb())
        await self._retrying(self._stub.RecordAnswer, request, "record_answer", _retryable_record, deadline_s,
                             f"record of answer {record.answer_id}")

    async def rate_answer(self, answer_id: str, session_id: str, owner: str, feedback: AnswerFeedback) -> str:
        """Stores a rating; the rated answer's model. NotFound / InvalidInput as memory says, Unavailable otherwise."""
        request = memory_pb2.RateAnswerRequest(answer_id=answer_id, session_id=session_id, owner=owner,
                                               feedback=feedback.to_pb())
        try:
            reply = await self._stub.RateAnswer(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(exc.details() or f"no answer {answer_id!r}") from None
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInput(exc.details() or "invalid feedback") from None
            metrics.MEMORY_FAILURES.labels("rate_answer").inc()
            raise Unavailable(f"memory service {exc.code().name}: {exc.details()}; the rating was not stored, "
                              "retry shortly") from None
        return reply.model

    async def _retrying(self, call, request, operation: str, retryable, deadline_s: float | None, what: str) -> None:
        budget_s = deadline_s or self._timeout_s
        deadline = time.monotonic() + budget_s
        retrying = AsyncRetrying(retry=retry_if_exception(retryable), stop=stop_before_delay(budget_s),
                                 wait=RETRY_WAIT, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    timeout = max(MIN_ATTEMPT_S, min(self._timeout_s, deadline - time.monotonic()))
                    try:
                        await call(request, timeout=timeout, metadata=self._metadata)
                    except grpc.aio.AioRpcError as exc:
                        metrics.MEMORY_FAILURES.labels(operation).inc()
                        log.info("%s failed (attempt %d): %s", what, attempt.retry_state.attempt_number,
                                 exc.code().name)
                        raise
        except grpc.aio.AioRpcError as exc:
            raise MemoryUnavailable(f"{exc.code().name}: {exc.details()}") from exc

    async def close(self) -> None:
        await self._channel.close()
