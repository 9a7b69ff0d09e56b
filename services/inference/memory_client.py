"""Client of the memory service: the last k exchanges of a session, and appending a finished one.

The inference service must answer even when memory is down: every failure other than NOT_FOUND
(a session this owner does not have yet = no history) surfaces as `MemoryUnavailable`, which the core
turns into a warning in the answer's metadata.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.inference.prompts import Exchange
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

log = logging.getLogger(__name__)


class MemoryUnavailable(Exception):
    pass


def _timestamp(unix_s: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(unix_s * 1e9))
    return stamp


class MemoryClient:
    def __init__(self, target: str, token: str | None, timeout_s: float) -> None:
        self._channel = grpc.aio.insecure_channel(target)
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
            raise MemoryUnavailable(f"{exc.code().name}: {exc.details()}") from exc
        return [Exchange(question=t.user_text, answer=t.assistant_text) for t in reply.turns]

    async def append_turn(
        self, session_id: str, owner: str, question: str, answer: str,
        sources: list[SourceRef], asked_at: float, answered_at: float,
    ) -> None:
        turn = memory_pb2.Turn(user_text=question, assistant_text=answer, sources=[s.to_pb() for s in sources],
                               asked_at=_timestamp(asked_at), answered_at=_timestamp(answered_at))
        try:
            await self._stub.AppendTurn(
                memory_pb2.AppendTurnRequest(session_id=session_id, owner=owner, turn=turn),
                timeout=self._timeout_s, metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            raise MemoryUnavailable(f"{exc.code().name}: {exc.details()}") from exc

    async def close(self) -> None:
        await self._channel.close()

