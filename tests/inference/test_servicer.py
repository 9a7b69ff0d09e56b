"""End to end over gRPC: the inference service process with SmolLM2, the full-corpus index, the memory service
on a real Redis."""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.v1 import common_pb2, inference_pb2, inference_pb2_grpc, memory_pb2, memory_pb2_grpc
from tests.inference.fixtures import inference_queue_filled, scrape_metric, wait_for_metric

GREEDY = {"temperature": 0.0, "max_tokens": 40}


def chat_request(question: str, session: str = "", **options) -> inference_pb2.ChatRequest:
    return inference_pb2.ChatRequest(question=question, session_id=session, owner="tester",
                                     options=common_pb2.GenerationOptions(**{**GREEDY, **options}))


def test_chat_streams_metadata_text_sources_then_finished(channel, auth):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    events = list(stub.Chat(chat_request("How do I define stages in a declarative Jenkinsfile?"), metadata=auth))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "metadata"
    assert kinds[-2:] == ["sources", "finished"]
    assert set(kinds[1:-2]) == {"delta"} and len(kinds) > 4
    text = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert text.strip()
    sources = events[-2].sources.sources
    assert sources
    for source in sources:
        assert source.url.startswith(("https://www.jenkins.io/", "https://plugins.jenkins.io/")), source.url
        assert source.title and source.snippet and source.license
    assert any("pipeline" in s.url for s in sources)
    finished = events[-1].finished
    assert finished.finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)
    usage = finished.usage
    assert usage.prompt_tokens > 100  # the question plus retrieved passages
    assert 0 < usage.completion_tokens <= 40
    assert usage.time_to_first_token_ms > 0 and usage.retrieval_ms > 0 and usage.total_ms >= usage.time_to_first_token_ms
    metadata = events[0].metadata
    assert metadata.answer_id and metadata.model and metadata.history_turns_used == 0


def test_ask_returns_the_whole_answer_and_feedback_attaches_to_it(channel, auth):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    reply = stub.Ask(inference_pb2.AskRequest(question="How can I install Jenkins with Docker?", owner="tester",
                                              options=common_pb2.GenerationOptions(**GREEDY)), metadata=auth)
    assert reply.text.strip() and reply.sources and reply.metadata.answer_id
    assert reply.finished.usage.completion_tokens > 0
    stub.SubmitFeedback(inference_pb2.SubmitFeedbackRequest(answer_id=reply.metadata.answer_id, owner="tester",
                                                            rating=inference_pb2.RATING_HELPFUL), metadata=auth)
    with pytest.raises(grpc.RpcError) as unknown:
        stub.SubmitFeedback(inference_pb2.SubmitFeedbackRequest(answer_id="nope", owner="tester",
                                                                rating=inference_pb2.RATING_HELPFUL), metadata=auth)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as unrated:
        stub.SubmitFeedback(inference_pb2.SubmitFeedbackRequest(answer_id=reply.metadata.answer_id, owner="tester"),
                            metadata=auth)
    assert unrated.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_memory_is_written_and_used_on_the_next_turn(channel, auth, memory_process):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    session = f"s-{uuid.uuid4().hex[:8]}"
    first_q = "How do I configure the Git plugin to check out a repository?"
    first = list(stub.Chat(chat_request(first_q, session), metadata=auth))
    answer = "".join(e.delta.text for e in first if e.WhichOneof("event") == "delta")
    assert first[0].metadata.memory_available and first[0].metadata.history_turns_used == 0

    with grpc.insecure_channel(memory_process.target) as memory_channel:
        history = memory_pb2_grpc.MemoryServiceStub(memory_channel).GetHistory(
            memory_pb2.GetHistoryRequest(session_id=session, owner="tester", k=5))
    assert [t.user_text for t in history.turns] == [first_q]
    assert history.turns[0].assistant_text == answer and history.turns[0].sources

    follow_up = "And how do I use credentials with it?"
    second = list(stub.Chat(chat_request(follow_up, session), metadata=auth))
    metadata = second[0].metadata
    assert metadata.history_turns_used == 1 and metadata.memory_available
    assert metadata.standalone_question != follow_up
    assert "git" in metadata.standalone_question.lower()  # the condensed question carries the first turn's topic

    # Another owner does not see this session: it gets an answer without history, not an error.
    stranger = chat_request(follow_up, session)
    stranger.owner = "someone-else"
    other = list(stub.Chat(stranger, metadata=auth))
    assert other[0].metadata.history_turns_used == 0 and other[0].metadata.standalone_question == follow_up


def test_memory_service_down_answers_without_history(channel, auth, memory_process):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    memory_process.stop()
    try:
        events = list(stub.Chat(chat_request("What is a Jenkins agent?", "down-session"), metadata=auth))
    finally:
        memory_process.start()
    metadata = events[0].metadata
    assert not metadata.memory_available
    assert any("memory service unavailable" in w for w in metadata.warnings)
    assert "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta").strip()
    assert events[-1].WhichOneof("event") == "finished"


def test_cancel_mid_stream_frees_the_slot(channel, auth, inference_process):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    cancelled_before = scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                                     'finish_reason="cancelled"')
    call = stub.Chat(chat_request("Explain Jenkins pipelines in detail.", max_tokens=1500, temperature=0.7),
                     metadata=auth)
    for event in call:
        if event.WhichOneof("event") == "delta":
            break
    call.cancel()
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0
    assert scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                         'finish_reason="cancelled"') == cancelled_before + 1
    # The only slot serves the next chat.
    events = list(stub.Chat(chat_request("What is Jenkins?", max_tokens=8), metadata=auth))
    assert events[-1].WhichOneof("event") == "finished"


def test_deadline_stops_generation_and_frees_the_slot(channel, auth, inference_process):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as exc:
        list(stub.Chat(chat_request("Describe every Jenkins feature.", max_tokens=1500, temperature=0.7),
                       metadata=auth, timeout=2.0))
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0


def test_full_queue_is_refused_at_once(channel, auth, inference_process):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    with inference_queue_filled(inference_process):
        with pytest.raises(grpc.RpcError) as exc:
            list(stub.Chat(chat_request("One more?"), metadata=auth))
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_queue_depth", "", 0.0) == 0.0


@pytest.mark.parametrize(
    ("question", "options", "session"),
    [
        ("", {}, ""),
        ("   ", {}, ""),
        ("x" * 4001, {}, ""),
        ("What is Jenkins?", {"retrieval_k": -1}, ""),
        ("What is Jenkins?", {"retrieval_k": 500}, ""),
        ("What is Jenkins?", {"max_tokens": -5}, ""),
        ("What is Jenkins?", {"max_tokens": 100000}, ""),
        ("What is Jenkins?", {"temperature": 3.0}, ""),
        ("What is Jenkins?", {"top_p": 0.0}, ""),
        ("What is Jenkins?", {"stop": [""]}, ""),
        ("What is Jenkins?", {}, "bad session id!"),
    ],
)
def test_bad_input_is_invalid_argument(channel, auth, question, options, session):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = inference_pb2.ChatRequest(question=question, session_id=session,
                                        options=common_pb2.GenerationOptions(**options))
    with pytest.raises(grpc.RpcError) as exc:
        list(stub.Chat(request, metadata=auth))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unary:
        stub.Ask(inference_pb2.AskRequest(question=question, session_id=session,
                                          options=common_pb2.GenerationOptions(**options)), metadata=auth)
    assert unary.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_auth_is_required_but_health_is_open(channel):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    for metadata in ((), bearer_metadata("wrong-token")):
        with pytest.raises(grpc.RpcError) as exc:
            list(stub.Chat(chat_request("What is Jenkins?"), metadata=metadata))
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(
        service="jenkins_assistant.v1.InferenceService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_model_info_describes_model_and_index(channel, auth, sample_index):
    from jenkins_assistant.inference.retrieval.index import read_manifest

    info = inference_pb2_grpc.InferenceServiceStub(channel).GetModelInfo(inference_pb2.GetModelInfoRequest(),
                                                                         metadata=auth)
    manifest = read_manifest(sample_index)
    assert info.chat_template == "gguf" and info.parallel_slots == 1 and info.context_tokens == 2048
    assert info.model_source.endswith(".gguf") and info.model
    assert info.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert info.indexed_chunks == manifest["chunks"] > 1000
    assert info.corpus_sha256 == manifest["corpus_sha256"]
