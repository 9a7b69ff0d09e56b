"""Recorded answers and their ratings: the memory core against a real Redis, and the memory service as a real
process over gRPC (restarts, owners, sessions, expiry, scopes, paging)."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest
import redis

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.clients import token_sha256
from jenkins_assistant.common.errors import InvalidInput, NotFound
from jenkins_assistant.common.records import FINISH_REASONS, AnswerFeedback, AnswerRecord
from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import MemoryStore
from jenkins_assistant.v1 import common_pb2, memory_pb2, memory_pb2_grpc


def answer(answer_id: str = "a1", owner: str = "alice", session_id: str = "s1", **extra) -> AnswerRecord:
    fields = {"question": "How do I archive artifacts?",
              "standalone_question": "How do I archive artifacts in Jenkins?",
              "answer_text": "Use the `archiveArtifacts` step [1].",
              "source_urls": ["https://www.jenkins.io/doc/pipeline/steps/core/"], "model": "SmolLM2-135M-Instruct",
              "model_quant": "Q4_1", "corpus_sha256": "ab" * 32, "finish_reason": "stop",
              "usage": {"prompt_tokens": 700, "completion_tokens": 40, "total_ms": 2500.0},
              "asked_at": 1_700_000_000.0, "answered_at": 1_700_000_002.5}
    fields.update(extra)
    return AnswerRecord(answer_id=answer_id, owner=owner, session_id=session_id, **fields)


def run_store(settings: MemorySettings, body):
    async def go():
        store = MemoryStore(settings)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(go())


# ------------------------------------------------------------------ core
def test_every_finish_reason_of_the_contract_survives_a_stored_record():
    # A reason the contract gains (repetition did) must not come back from memory as "" (unknown).
    named = [common_pb2.FinishReason.Name(value).removeprefix("FINISH_REASON_").lower()
             for value in common_pb2.FinishReason.values() if value]
    assert sorted(named) == sorted(FINISH_REASONS)
    for reason in FINISH_REASONS:
        assert AnswerRecord.from_pb(answer(finish_reason=reason).to_pb()).finish_reason == reason
    assert AnswerRecord.from_pb(answer(finish_reason="").to_pb()).finish_reason == ""


def test_record_rate_and_list_round_trip_without_owner_or_session(redis_url):
    settings = MemorySettings(redis_url=redis_url)

    async def body(store: MemoryStore):
        assert await store.record_answer(answer()) == (True, settings.answer_ttl_s)
        model, ttl = await store.rate_answer("a1", "s1", "alice", AnswerFeedback("not_helpful", "wrong step",
                                                                                 "Use `archiveArtifacts 'x'`."))
        assert (model, ttl) == ("SmolLM2-135M-Instruct", settings.rated_answer_ttl_s)
        return await store.list_rated()

    (rated, token) = run_store(settings, body)
    assert token == "" and len(rated) == 1
    listed, feedback = rated[0]
    assert listed == answer(owner="", session_id="")  # every field but who asked, and where
    assert (feedback.rating, feedback.comment, feedback.corrected_answer) == ("not_helpful", "wrong step",
                                                                              "Use `archiveArtifacts 'x'`.")
    assert abs(feedback.rated_at - time.time()) < 60
    raw = redis.Redis.from_url(redis_url)
    assert 0 < raw.ttl("jenkins-assistant:memory-answer:a1") <= settings.rated_answer_ttl_s
    assert raw.ttl("jenkins-assistant:memory-answer:a1") > settings.answer_ttl_s  # rating extended the retention


def test_the_last_rating_wins_and_a_repeated_record_keeps_it(redis_url):
    async def body(store: MemoryStore):
        await store.record_answer(answer())
        await store.rate_answer("a1", "s1", "alice", AnswerFeedback("not_helpful", "first"))
        await store.rate_answer("a1", "s1", "alice", AnswerFeedback("helpful", "second thoughts"))
        # A retried record (same id, other text) changes nothing, and above all keeps the rating.
        assert (await store.record_answer(answer(answer_text="other")))[0] is False
        return await store.list_rated()

    rated, _ = run_store(MemorySettings(redis_url=redis_url), body)
    assert [(a.answer_text, f.rating, f.comment) for a, f in rated] == [
        ("Use the `archiveArtifacts` step [1].", "helpful", "second thoughts")]


@pytest.mark.parametrize("answer_id, session_id, owner", [
    ("nope", "s1", "alice"),  # unknown
    ("a1", "s1", "bob"),  # another owner's
    ("a1", "s2", "alice"),  # another session
    ("a1", "", "alice"),  # no session
])
def test_rating_what_the_caller_was_not_given_is_not_found_and_changes_nothing(redis_url, answer_id, session_id, owner):
    async def body(store: MemoryStore):
        await store.record_answer(answer())
        with pytest.raises(NotFound):
            await store.rate_answer(answer_id, session_id, owner, AnswerFeedback("helpful"))
        return await store.list_rated()

    assert run_store(MemorySettings(redis_url=redis_url), body) == ([], "")


def test_an_expired_answer_is_not_found_and_leaves_the_listing(redis_url):
    settings = MemorySettings(redis_url=redis_url, answer_ttl_s=60, rated_answer_ttl_s=60)
    raw = redis.Redis.from_url(redis_url)

    async def body(store: MemoryStore):
        await store.record_answer(answer("a1"))
        await store.record_answer(answer("a2"))
        await store.rate_answer("a1", "s1", "alice", AnswerFeedback("helpful"))
        raw.delete(store.answer_key("a1"), store.answer_key("a2"))  # what expiry does, without waiting a minute
        with pytest.raises(NotFound):
            await store.rate_answer("a2", "s1", "alice", AnswerFeedback("helpful"))
        return await store.list_rated()

    assert run_store(settings, body) == ([], "")
    assert raw.zcard("jenkins-assistant:memory-rated") == 0  # the expired id was dropped from the index


@pytest.mark.parametrize("record, message", [
    (answer(answer_id="bad id"), "answer_id"),
    (answer(session_id="bad session"), "session_id"),
    (answer(owner=""), "needs its owner"),
    (answer(kind="poem"), "kind"),
    (answer(answer_text="x" * 32_001), "answer_text has 32001"),
    (answer(question="a\x00b"), "NUL"),
    (answer(source_urls=[""]), "source url"),
    (answer(source_urls=["https://x"] * 21), "21 source urls"),
    (answer(model="m\n"), "model"),
    (answer(usage={"total_ms": float("nan")}), "usage"),
    (answer(answered_at=time.time() + 10 * 86400), "future"),
])
def test_bad_records_are_invalid_and_store_nothing(redis_url, record, message):
    async def body(store: MemoryStore):
        with pytest.raises(InvalidInput, match=message):
            await store.record_answer(record)

    run_store(MemorySettings(redis_url=redis_url), body)
    assert redis.Redis.from_url(redis_url).dbsize() == 0


@pytest.mark.parametrize("feedback, message", [
    (AnswerFeedback(""), "rating"),
    (AnswerFeedback("great"), "rating"),
    (AnswerFeedback("helpful", comment="c" * 2001), "comment has 2001"),
    (AnswerFeedback("helpful", corrected_answer="c" * 32_001), "corrected_answer has 32001"),
    (AnswerFeedback("helpful", corrected_answer="a\x00"), "NUL"),
])
def test_bad_feedback_is_invalid_and_keeps_the_earlier_rating(redis_url, feedback, message):
    async def body(store: MemoryStore):
        await store.record_answer(answer())
        await store.rate_answer("a1", "s1", "alice", AnswerFeedback("helpful", "kept"))
        with pytest.raises(InvalidInput, match=message):
            await store.rate_answer("a1", "s1", "alice", feedback)
        return await store.list_rated()

    rated, _ = run_store(MemorySettings(redis_url=redis_url), body)
    assert [(f.rating, f.comment) for _, f in rated] == [("helpful", "kept")]


def test_listing_pages_in_id_order(redis_url):
    async def body(store: MemoryStore):
        for i in range(5):
            await store.record_answer(answer(f"a{i}"))
            await store.rate_answer(f"a{i}", "s1", "alice", AnswerFeedback("helpful"))
        pages, token = [], ""
        while True:
            rated, token = await store.list_rated(page_size=2, page_token=token)
            pages.append([a.answer_id for a, _ in rated])
            if not token:
                return pages

    assert run_store(MemorySettings(redis_url=redis_url), body) == [["a0", "a1"], ["a2", "a3"], ["a4"]]


def test_a_rated_retention_of_0_keeps_rated_answers_without_expiry(redis_url):
    async def body(store: MemoryStore):
        await store.record_answer(answer())
        await store.rate_answer("a1", "s1", "alice", AnswerFeedback("helpful"))

    run_store(MemorySettings(redis_url=redis_url, rated_answer_ttl_s=0), body)
    raw = redis.Redis.from_url(redis_url)
    assert raw.ttl("jenkins-assistant:memory-answer:a1") == -1  # no expiry: not evictable by volatile-lru either


def test_retention_settings_must_not_shorten_a_rated_answer():
    with pytest.raises(ValueError, match="rated_answer_ttl_s"):
        MemorySettings(answer_ttl_s=7200, rated_answer_ttl_s=3600)


# ------------------------------------------------------------------ over gRPC, real processes
def record_pb(answer_id: str = "a1", owner: str = "alice", session_id: str = "s1") -> memory_pb2.RecordAnswerRequest:
    return memory_pb2.RecordAnswerRequest(answer=answer(answer_id, owner, session_id).to_pb())


def rate_pb(answer_id="a1", session_id="s1", owner="alice", rating=common_pb2.RATING_HELPFUL, **extra):
    return memory_pb2.RateAnswerRequest(answer_id=answer_id, session_id=session_id, owner=owner,
                                        feedback=memory_pb2.AnswerFeedback(rating=rating, **extra))


def test_ratings_survive_a_restart_of_the_memory_service(start_memory):
    first = start_memory()
    with grpc.insecure_channel(first.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        assert stub.RecordAnswer(record_pb()).created
        assert not stub.RecordAnswer(record_pb()).created
    first.stop()
    second = start_memory()
    with grpc.insecure_channel(second.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        reply = stub.RateAnswer(rate_pb(rating=common_pb2.RATING_NOT_HELPFUL, corrected_answer="Use archiveArtifacts."))
        assert reply.model == "SmolLM2-135M-Instruct" and reply.ttl_s == 365 * 86400
        with pytest.raises(grpc.RpcError) as denied:
            stub.RateAnswer(rate_pb(owner="bob"))
        assert denied.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as bad:
            stub.RateAnswer(rate_pb(rating=common_pb2.RATING_UNSPECIFIED))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        listed = stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest())
    [rated] = listed.answers
    assert rated.answer.owner == "" and rated.answer.session_id == ""
    assert rated.answer.answer_text == "Use the `archiveArtifacts` step [1]." and rated.answer.model_quant == "Q4_1"
    assert rated.feedback.rating == common_pb2.RATING_NOT_HELPFUL
    assert rated.feedback.corrected_answer == "Use archiveArtifacts." and listed.next_page_token == ""


def test_listing_needs_the_export_scope_and_owners_stay_within_a_client(start_memory, tmp_path):
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({
        "inference": {"token_sha256": token_sha256("inference-token"), "scopes": ["assert-owner"]},
        "exporter": {"token_sha256": token_sha256("export-token"), "scopes": ["export-feedback"]},
        "cli": {"token_sha256": token_sha256("cli-token"), "scopes": []},
    }))
    service = start_memory(MEMORY_AUTH_CLIENTS_FILE=str(clients))
    inference, exporter, cli = (bearer_metadata(t) for t in ("inference-token", "export-token", "cli-token"))
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        stub.RecordAnswer(record_pb(), metadata=inference)
        with pytest.raises(grpc.RpcError) as foreign:  # the CLI's "alice" is cli:alice, not the plugin's alice
            stub.RateAnswer(rate_pb(), metadata=cli)
        assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
        stub.RateAnswer(rate_pb(), metadata=inference)
        for metadata in (inference, cli):
            with pytest.raises(grpc.RpcError) as denied:
                stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest(), metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert len(stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest(), metadata=exporter).answers) == 1
        with pytest.raises(grpc.RpcError) as bad:
            stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest(page_size=5000), metadata=exporter)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_fuzzed_answer_calls_get_deliberate_statuses_and_leave_a_rated_answer_as_it_was(start_memory, redis_url):
    """Random and malformed RecordAnswer / RateAnswer / ListRatedAnswers requests (seeded, the helpers of
    tests/test_fuzz.py): never INTERNAL, and the rated answer stored before is byte-identical afterwards."""
    import random

    from tests.test_fuzz import (
        FLOATS,
        INTS,
        OTHER_OWNERS,
        SESSION_IDS,
        TEXTS,
        Results,
        call_raw,
        mutate,
        random_bytes,
        timestamp,
    )

    service = start_memory()
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        stub.RecordAnswer(record_pb("kept-1", owner="keeper", session_id="keep-s"))
        stub.RateAnswer(rate_pb("kept-1", session_id="keep-s", owner="keeper", comment="keep me"))
        raw = redis.Redis.from_url(redis_url)
        before = raw.dump("jenkins-assistant:memory-answer:kept-1")
        rng = random.Random(1313)
        results = Results()
        ids = ["kept-1", "", "a" * 128, "a" * 129, "ünï", "x y", "../kept-1", "kept-1\x00", "new-1"]
        for _ in range(900):
            method = rng.choice(["RecordAnswer", "RateAnswer", "ListRatedAnswers"])
            if method == "RecordAnswer":
                record = memory_pb2.AnswerRecord(
                    answer_id=rng.choice(ids), owner=rng.choice(OTHER_OWNERS), session_id=rng.choice(SESSION_IDS),
                    kind=rng.choice(["chat", "explain", "", "poem"]), question=rng.choice(TEXTS),
                    answer_text=rng.choice(TEXTS), standalone_question=rng.choice(TEXTS),
                    source_urls=rng.choice([[], ["https://www.jenkins.io/"], [""], ["x" * 2049], ["u"] * 21]),
                    model=rng.choice(["", "m", "m\n", "x" * 257]), finish_reason=rng.choice(INTS),
                    usage=common_pb2.Usage(total_ms=rng.choice(FLOATS), tokens_per_s=rng.choice(FLOATS)))
                if rng.random() < 0.7:
                    record.asked_at.CopyFrom(timestamp(rng))
                if rng.random() < 0.7:
                    record.answered_at.CopyFrom(timestamp(rng))
                request = memory_pb2.RecordAnswerRequest(answer=record)
            elif method == "RateAnswer":
                request = rate_pb(rng.choice(ids), rng.choice(SESSION_IDS), rng.choice(OTHER_OWNERS),
                                  rng.choice(INTS), comment=rng.choice(TEXTS), corrected_answer=rng.choice(TEXTS))
            else:
                request = memory_pb2.ListRatedAnswersRequest(page_size=rng.choice(INTS), page_token=rng.choice(ids))
            body = request.SerializeToString()
            shape = rng.randrange(3)
            body = mutate(rng, body) if shape == 1 else random_bytes(rng) if shape == 2 else body
            code = call_raw(channel, f"/jenkins_assistant.v1.MemoryService/{method}", body)
            results.check(method, body, code, {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                                               grpc.StatusCode.NOT_FOUND})
        assert results.failures == [], results.failures[:20]
        assert {"OK", "INVALID_ARGUMENT", "NOT_FOUND"} <= set(results.seen)
        assert raw.dump("jenkins-assistant:memory-answer:kept-1") == before
        [kept] = [r for r in stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest(page_size=1000)).answers
                  if r.answer.answer_id == "kept-1"]
        assert kept.feedback.comment == "keep me"
