"""gRPC transport of the inference service: protobuf <-> core objects, nothing else.

A request's `owner` counts only from a client trusted to assert owners; any other client's owner is its own name
(`jenkins_assistant.common.clients.owner_for`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from jenkins_assistant.common.clients import current_client, owner_for
from jenkins_assistant.inference.core import (
    AnswerMetadata,
    ChatOptions,
    ChatQuery,
    Finished,
    InferenceCore,
    SourceList,
    TextDelta,
)
from jenkins_assistant.v1 import common_pb2, inference_pb2, inference_pb2_grpc

_FINISH = {
    "stop": common_pb2.FINISH_REASON_STOP,
    "length": common_pb2.FINISH_REASON_LENGTH,
    "cancelled": common_pb2.FINISH_REASON_CANCELLED,
}
_RATING = {inference_pb2.RATING_HELPFUL: "helpful", inference_pb2.RATING_NOT_HELPFUL: "not_helpful"}


def query_from_pb(request: inference_pb2.ChatRequest | inference_pb2.AskRequest) -> ChatQuery:
    o = request.options
    return ChatQuery(
        question=request.question,
        session_id=request.session_id,
        owner=owner_for(request.owner, current_client()),
        options=ChatOptions(
            max_tokens=o.max_tokens,
            temperature=o.temperature if o.HasField("temperature") else None,
            top_p=o.top_p if o.HasField("top_p") else None,
            stop=list(o.stop),
            retrieval_k=o.retrieval_k,
            disable_retrieval=o.disable_retrieval,
            seed=o.seed,
        ),
    )


def metadata_to_pb(m: AnswerMetadata) -> common_pb2.AnswerMetadata:
    return common_pb2.AnswerMetadata(
        answer_id=m.answer_id, standalone_question=m.standalone_question, history_turns_used=m.history_turns_used,
        memory_available=m.memory_available, warnings=m.warnings, model=m.model,
    )


def finished_to_pb(f: Finished) -> common_pb2.AnswerFinished:
    u = f.usage
    return common_pb2.AnswerFinished(
        finish_reason=_FINISH[f.finish_reason],
        usage=common_pb2.Usage(
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
            time_to_first_token_ms=u.time_to_first_token_ms, tokens_per_s=u.tokens_per_s,
            retrieval_ms=u.retrieval_ms, total_ms=u.total_ms, queue_ms=u.queue_ms,
        ),
        warnings=f.warnings,
    )


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, core: InferenceCore) -> None:
        self._core = core

    async def Chat(self, request, context) -> AsyncIterator[inference_pb2.ChatResponse]:
        async for event in self._core.chat(query_from_pb(request)):
            if isinstance(event, TextDelta):
                yield inference_pb2.ChatResponse(delta=common_pb2.TextDelta(text=event.text))
            elif isinstance(event, AnswerMetadata):
                yield inference_pb2.ChatResponse(metadata=metadata_to_pb(event))
            elif isinstance(event, SourceList):
                yield inference_pb2.ChatResponse(
                    sources=common_pb2.SourceList(sources=[s.to_pb() for s in event.sources])
                )
            elif isinstance(event, Finished):
                yield inference_pb2.ChatResponse(finished=finished_to_pb(event))

    async def Ask(self, request, context) -> inference_pb2.AskResponse:
        metadata, text, sources, finished = await self._core.ask(query_from_pb(request))
        return inference_pb2.AskResponse(metadata=metadata_to_pb(metadata), text=text,
                                         sources=[s.to_pb() for s in sources], finished=finished_to_pb(finished))

    async def SubmitFeedback(self, request, context) -> inference_pb2.SubmitFeedbackResponse:
        self._core.submit_feedback(request.answer_id, request.session_id,
                                   owner_for(request.owner, current_client()),
                                   _RATING.get(request.rating, ""), request.comment)
        return inference_pb2.SubmitFeedbackResponse()

    async def GetModelInfo(self, request, context) -> inference_pb2.GetModelInfoResponse:
        return inference_pb2.GetModelInfoResponse(**self._core.model_info())
