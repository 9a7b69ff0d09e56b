"""gRPC transport of the memory service: protobuf <-> domain objects, nothing else.

A request's `owner` counts only from a client trusted to assert owners; any other client's owner is its own name
(`jenkins_assistant.common.clients.owner_for`). Listing every user's rated answers needs the export-feedback scope
(when the server checks credentials at all).
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from jenkins_assistant.common.clients import current_client, owner_for
from jenkins_assistant.common.errors import PermissionDenied
from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord, SourceRef
from jenkins_assistant.memory.core import MemoryStore, Turn
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc


def _seconds(ts: Timestamp, present: bool) -> float:
    return ts.seconds + ts.nanos / 1e9 if present else 0.0


# What google.protobuf.Timestamp can hold (0001-01-01 .. 9999-12-31); reading clamps into it, so a value stored
# before input validation existed can never make a session unreadable.
_TIMESTAMP_MAX_S = 253_402_300_799


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(min(max(seconds, 0.0), _TIMESTAMP_MAX_S) * 1e9))
    return ts


def turn_from_pb(turn: memory_pb2.Turn) -> Turn:
    return Turn(
        user_text=turn.user_text,
        assistant_text=turn.assistant_text,
        sources=[SourceRef.from_pb(s) for s in turn.sources],
        asked_at=_seconds(turn.asked_at, turn.HasField("asked_at")),
        answered_at=_seconds(turn.answered_at, turn.HasField("answered_at")),
    )


def turn_to_pb(turn: Turn) -> memory_pb2.Turn:
    return memory_pb2.Turn(
        user_text=turn.user_text,
        assistant_text=turn.assistant_text,
        sources=[s.to_pb() for s in turn.sources],
        asked_at=_timestamp(turn.asked_at),
        answered_at=_timestamp(turn.answered_at),
    )


def _owner(request) -> str:
    return owner_for(request.owner, current_client())


class MemoryServicer(memory_pb2_grpc.MemoryServiceServicer):
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def AppendTurn(self, request, context):
        stored, ttl_s = await self.store.append_turn(_owner(request), request.session_id, turn_from_pb(request.turn))
        return memory_pb2.AppendTurnResponse(stored_turns=stored, ttl_s=ttl_s)

    async def GetHistory(self, request, context):
        turns, stored = await self.store.get_history(_owner(request), request.session_id, request.k)
        return memory_pb2.GetHistoryResponse(turns=[turn_to_pb(t) for t in turns], stored_turns=stored)

    async def ClearSession(self, request, context):
        deleted = await self.store.clear(_owner(request), request.session_id)
        return memory_pb2.ClearSessionResponse(deleted_turns=deleted)

    async def RecordAnswer(self, request, context):
        record = AnswerRecord.from_pb(request.answer)
        record.owner = _owner(request.answer)
        created, ttl_s = await self.store.record_answer(record)
        return memory_pb2.RecordAnswerResponse(created=created, ttl_s=ttl_s)

    async def RateAnswer(self, request, context):
        model, ttl_s = await self.store.rate_answer(request.answer_id, request.session_id, _owner(request),
                                                    AnswerFeedback.from_pb(request.feedback))
        return memory_pb2.RateAnswerResponse(model=model, ttl_s=ttl_s)

    async def ListRatedAnswers(self, request, context):
        client = current_client()
        if client is not None and not client.may_export_feedback:
            raise PermissionDenied(f"client {client.name!r} lacks the export-feedback scope needed to list ratings")
        rated, next_token = await self.store.list_rated(request.page_size, request.page_token)
        return memory_pb2.ListRatedAnswersResponse(
            answers=[memory_pb2.RatedAnswer(answer=answer.to_pb(), feedback=feedback.to_pb())
                     for answer, feedback in rated],
            next_page_token=next_token,
        )
