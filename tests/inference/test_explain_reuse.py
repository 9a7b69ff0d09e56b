"""The explanation cache end to end: the inference process with SmolLM2, its explanation cache on the tests' real
redis-server (tests/inference/fixtures.py), fed fixture logs over gRPC. A repeat of a failure (the next build: other
build number, commit and timings) comes back at once from Redis, says it was reused and calls no model; it survives
a restart of the inference process; cut or refreshed explanations behave as documented."""

from __future__ import annotations

import redis

from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc
from tests.build_log.conftest import MANIFEST, read_log
from tests.build_log.test_fingerprint import as_next_build
from tests.inference.fixtures import explain_cache_url, scrape_metric

# The model ends its answer at the first full stop: a complete ("stop") explanation in a few tokens, which is the
# only kind cached.
SHORT = common_pb2.GenerationOptions(max_tokens=64, temperature=0.0, retrieval_k=2, stop=["."])
ANSWERS = "jenkins_assistant_inference_answers_total"
CACHE = "jenkins_assistant_inference_explanation_cache_total"


def next_build(log: bytes) -> bytes:
    """The same failure as a later build prints it (other times, commit, build number, workspace)."""
    later = as_next_build(log.decode()).encode()
    assert later != log
    return later


def explain(stub, log: bytes, options=SHORT, **fields) -> list[build_log_pb2.ExplainBuildLogResponse]:
    return list(stub.ExplainBuildLog(build_log_pb2.ExplainBuildLogRequest(log=log, owner="tester", options=options,
                                                                          **fields),
                                     metadata=(("authorization", "Bearer inference-test-token"),)))


def text_of(events) -> str:
    return "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")


def answers_total(process) -> float:
    return sum(scrape_metric(process, ANSWERS, f'finish_reason="{r}"') for r in ("stop", "length", "cancelled"))


def test_a_repeated_failure_is_reused_from_redis_without_a_model_call(channel, inference_process, redis_server):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    log = read_log("missing_credentials.log")
    first = explain(stub, log, refresh=True)
    assert first[0].metadata.reused is False
    assert first[-1].finished.finish_reason == common_pb2.FINISH_REASON_STOP
    fingerprint = first[0].metadata.facts.fingerprint
    assert fingerprint.startswith(MANIFEST["missing_credentials.log"]["signature_id"] + ":")
    stored = redis.Redis.from_url(explain_cache_url(redis_server)).keys(f"*{fingerprint}")
    assert len(stored) == 1
    # The stored entry holds the explanation, never the log (its planted secrets included).
    raw = redis.Redis.from_url(explain_cache_url(redis_server)).get(stored[0])
    for secret in MANIFEST["missing_credentials.log"]["secrets"]:
        assert secret.encode() not in raw

    generated, hits = answers_total(inference_process), scrape_metric(inference_process, CACHE, 'outcome="hit"')
    again = explain(stub, next_build(log))
    kinds = [e.WhichOneof("event") for e in again]
    assert kinds == ["metadata", "sources", "delta", "finished"]
    metadata = again[0].metadata
    assert metadata.reused is True and metadata.facts.fingerprint == fingerprint
    assert any("reused" in w for w in metadata.answer.warnings)
    # This build's own facts (its times in the excerpt), the earlier build's explanation and sources.
    assert metadata.facts.excerpt != first[0].metadata.facts.excerpt
    assert text_of(again) == text_of(first)
    assert again[1].sources == first[1].sources
    assert again[-1].finished.usage.completion_tokens == 0
    assert answers_total(inference_process) == generated  # no model call
    assert scrape_metric(inference_process, CACHE, 'outcome="hit"') == hits + 1

    # The unary twin reuses it too, with the sections parsed from the stored text.
    reply = stub.GetBuildLogExplanation(
        build_log_pb2.GetBuildLogExplanationRequest(log=log, owner="tester", options=SHORT),
        metadata=(("authorization", "Bearer inference-test-token"),))
    assert reply.metadata.reused and reply.text == text_of(first) and reply.summary

    # A reused explanation is recorded like a generated one: it can be rated.
    inference_pb2_grpc.InferenceServiceStub(channel).SubmitFeedback(
        inference_pb2.SubmitFeedbackRequest(answer_id=metadata.answer.answer_id, owner="tester",
                                            rating=common_pb2.RATING_HELPFUL),
        metadata=(("authorization", "Bearer inference-test-token"),))

    # refresh: generated anew (and stored in its place).
    fresh = explain(stub, log, refresh=True)
    assert fresh[0].metadata.reused is False and answers_total(inference_process) == generated + 1


def test_an_explanation_cut_at_max_tokens_is_not_cached(channel):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    cut = common_pb2.GenerationOptions(max_tokens=3, temperature=0.0, retrieval_k=1)
    log = read_log("disk_full.log")
    first = explain(stub, log, options=cut, refresh=True)
    assert first[-1].finished.finish_reason == common_pb2.FINISH_REASON_LENGTH
    second = explain(stub, log, options=cut)
    assert second[0].metadata.reused is False and second[-1].finished.usage.completion_tokens > 0


def test_a_cached_explanation_survives_an_inference_restart(channel, inference_process):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    log = read_log("no_such_dsl_method.log")
    first = explain(stub, log, refresh=True)
    assert first[-1].finished.finish_reason == common_pb2.FINISH_REASON_STOP
    inference_process.stop()
    inference_process.start(timeout_s=180)
    again = explain(stub, next_build(log))
    assert again[0].metadata.reused is True and text_of(again) == text_of(first)
