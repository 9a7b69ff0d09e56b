"""The memory service as a real process over a real gRPC channel, against a real redis-server."""

from __future__ import annotations

import json
import time

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.clients import token_sha256
from jenkins_assistant.v1 import common_pb2, memory_pb2, memory_pb2_grpc


def turn(i: int, **extra) -> memory_pb2.Turn:
    return memory_pb2.Turn(user_text=f"question {i}", assistant_text=f"answer {i}", **extra)


def append(stub, i, session="s1", owner="alice", **kw):
    return stub.AppendTurn(memory_pb2.AppendTurnRequest(session_id=session, owner=owner, turn=turn(i)), **kw)


def history(stub, session="s1", owner="alice", k=0, **kw):
    return stub.GetHistory(memory_pb2.GetHistoryRequest(session_id=session, owner=owner, k=k), **kw)


def health_status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status


def test_round_trip_with_sources_and_timestamps(memory_stub):
    sent = memory_pb2.Turn(
        user_text="How do I install a plugin offline?",
        assistant_text="Download the `.hpi` and upload it under **Manage Jenkins > Plugins > Advanced**.",
        sources=[common_pb2.Source(url="https://www.jenkins.io/doc/book/managing/plugins/", title="Managing Plugins")],
    )
    sent.asked_at.FromSeconds(1_700_000_000)
    sent.answered_at.FromSeconds(1_700_000_002)
    reply = memory_stub.AppendTurn(memory_pb2.AppendTurnRequest(session_id="s1", owner="alice", turn=sent))
    assert reply.stored_turns == 1 and reply.ttl_s == 24 * 3600
    got = history(memory_stub)
    assert got.stored_turns == 1
    assert list(got.turns) == [sent]


def test_window_default_k5_and_explicit_k(memory_stub):
    for i in range(7):
        append(memory_stub, i)
    assert [t.user_text for t in history(memory_stub).turns] == [f"question {i}" for i in range(2, 7)]
    assert [t.user_text for t in history(memory_stub, k=2).turns] == ["question 5", "question 6"]


def test_cap_and_ttl_refresh(start_memory, redis_url):
    service = start_memory(MEMORY_MAX_TURNS="3", MEMORY_DEFAULT_K="2", MEMORY_TTL_S="3")
    raw = redis.Redis.from_url(redis_url)
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for i in range(5):
            assert append(stub, i).stored_turns == min(i + 1, 3)
        assert history(stub, k=3).stored_turns == 3
        [key] = raw.keys("*")
        assert raw.llen(key) == 3
        time.sleep(1.5)
        assert raw.ttl(key) <= 2
        append(stub, 5)  # a write refreshes the TTL
        assert raw.ttl(key) == 3
        with pytest.raises(grpc.RpcError) as err:
            history(stub, k=4)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        time.sleep(3.5)
        with pytest.raises(grpc.RpcError) as err:
            history(stub)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_owner_isolation_is_not_found_not_a_leak(memory_stub):
    append(memory_stub, 1, owner="alice")
    for call in (
        lambda: history(memory_stub, owner="mallory"),
        lambda: memory_stub.ClearSession(memory_pb2.ClearSessionRequest(session_id="s1", owner="mallory")),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "answer 1" not in (err.value.details() or "")
    # Mallory writing the same session id makes her own session; Alice's is untouched.
    append(memory_stub, 99, owner="mallory")
    assert [t.user_text for t in history(memory_stub, owner="alice").turns] == ["question 1"]
    cleared = memory_stub.ClearSession(memory_pb2.ClearSessionRequest(session_id="s1", owner="alice"))
    assert cleared.deleted_turns == 1
    assert [t.user_text for t in history(memory_stub, owner="mallory").turns] == ["question 99"]


@pytest.mark.parametrize(
    "request_",
    [
        memory_pb2.AppendTurnRequest(session_id="", owner="alice", turn=turn(1)),
        memory_pb2.AppendTurnRequest(session_id="s/1", owner="alice", turn=turn(1)),
        memory_pb2.AppendTurnRequest(session_id="s1", owner="", turn=turn(1)),
        memory_pb2.AppendTurnRequest(session_id="s1", owner="alice", turn=memory_pb2.Turn(assistant_text="no question")),
        memory_pb2.AppendTurnRequest(session_id="s1", owner="alice", turn=memory_pb2.Turn(user_text="q" * 40_000)),
        memory_pb2.AppendTurnRequest(
            session_id="s1", owner="alice",
            turn=memory_pb2.Turn(user_text="q", sources=[common_pb2.Source(url="u" * 3000)]),
        ),
    ],
)
def test_bad_appends_are_invalid_argument_and_store_nothing(memory_stub, redis_url, request_):
    with pytest.raises(grpc.RpcError) as err:
        memory_stub.AppendTurn(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details()
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_bad_reads_and_oversized_messages(memory_stub):
    with pytest.raises(grpc.RpcError) as err:
        history(memory_stub, k=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        memory_stub.ClearSession(memory_pb2.ClearSessionRequest(session_id="s1", owner="\x07bell"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        memory_stub.AppendTurn(
            memory_pb2.AppendTurnRequest(session_id="s1", owner="a", turn=memory_pb2.Turn(user_text="q" * 5_000_000))
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The service is still up and serving after all of that.
    assert append(memory_stub, 1).stored_turns == 1


def test_auth_token_required_but_health_and_reflection_stay_open(start_memory):
    service = start_memory(MEMORY_AUTH_TOKEN="s3cret")
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for metadata in ((), bearer_metadata("wrong"), (("authorization", "s3cret"),)):
            with pytest.raises(grpc.RpcError) as err:
                append(stub, 1, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert append(stub, 1, metadata=bearer_metadata("s3cret")).stored_turns == 1
        assert health_status(service.target) == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in replies[0].list_services_response.service}
        assert "jenkins_assistant.v1.MemoryService" in names


def test_only_a_client_trusted_to_assert_owners_reaches_another_users_sessions(start_memory, tmp_path):
    """Per-client credentials: the inference service (assert-owner) speaks for alice; the scraper's credential has no
    such scope, so whatever owner it names it stays inside its own name and never sees alice's session."""
    tokens = {"inference": "inference-secret", "scraper": "scraper-secret"}
    clients = {"inference": {"token_sha256": token_sha256(tokens["inference"]), "scopes": ["assert-owner"]},
               "scraper": {"token_sha256": token_sha256(tokens["scraper"]), "scopes": []}}
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    # The single shared token beside the file: the backward-compatible case, trusted as it always was.
    service = start_memory(MEMORY_AUTH_CLIENTS_FILE=str(tmp_path / "clients.json"), MEMORY_AUTH_TOKEN="shared-secret")
    trusted, bound = bearer_metadata(tokens["inference"]), bearer_metadata(tokens["scraper"])
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        assert append(stub, 1, owner="alice", metadata=trusted).stored_turns == 1
        for owner in ("alice", ""):
            with pytest.raises(grpc.RpcError) as err:
                history(stub, owner=owner, metadata=bound)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as err:
            stub.ClearSession(memory_pb2.ClearSessionRequest(session_id="s1", owner="alice"), metadata=bound)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # What it writes "as alice" lands in its own scope, and an empty owner means the client itself.
        assert append(stub, 2, owner="alice", metadata=bound).stored_turns == 1
        assert append(stub, 3, owner="", metadata=bound).stored_turns == 1
        assert [t.user_text for t in history(stub, owner="alice", metadata=trusted).turns] == ["question 1"]
        assert [t.user_text for t in history(stub, owner="scraper:alice", metadata=trusted).turns] == ["question 2"]
        assert [t.user_text for t in history(stub, owner="scraper", metadata=trusted).turns] == ["question 3"]
        assert [t.user_text for t in history(stub, owner="alice", metadata=bound).turns] == ["question 2"]
        assert [t.user_text for t in history(stub, owner="alice",
                                             metadata=bearer_metadata("shared-secret")).turns] == ["question 1"]
        # A trusted client still has to name someone: an empty owner is refused, never a shared default.
        with pytest.raises(grpc.RpcError) as err:
            history(stub, owner="", metadata=trusted)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            history(stub, owner="alice", metadata=bearer_metadata("sha256-of-nothing"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_bad_clients_file_stops_the_service_at_start(start_memory, tmp_path):
    (tmp_path / "clients.json").write_text(json.dumps({"cli": {"token_sha256": "0" * 64, "scopes": ["admin"]}}))
    with pytest.raises(RuntimeError, match="exited"):
        start_memory(MEMORY_AUTH_CLIENTS_FILE=str(tmp_path / "clients.json"))


def test_redis_killed_and_restarted_mid_test(memory_service, memory_stub, redis_server):
    append(memory_stub, 1)
    redis_server.stop()
    with pytest.raises(grpc.RpcError) as err:
        append(memory_stub, 2)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Redis" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        history(memory_stub)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    deadline = time.monotonic() + 10
    while health_status(memory_service.target) != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline, "health never reported NOT_SERVING while Redis was down"
        time.sleep(0.1)
    assert memory_service.process.poll() is None, "the service crashed"

    redis_server.start()
    deadline = time.monotonic() + 15
    while health_status(memory_service.target) != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "the service did not recover after Redis came back"
        time.sleep(0.1)
    assert append(memory_stub, 3).stored_turns == 1  # this redis keeps no data across restarts
    assert [t.user_text for t in history(memory_stub).turns] == ["question 3"]


def test_metrics_endpoint_counts_calls_and_redis_errors(start_memory, redis_server):
    import urllib.request

    from tests.conftest import free_port

    metrics_port = free_port()
    service = start_memory(MEMORY_METRICS_PORT=str(metrics_port))
    with grpc.insecure_channel(service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        append(stub, 1)
        with pytest.raises(grpc.RpcError):
            history(stub, k=-5)
        redis_server.stop()
        try:
            with pytest.raises(grpc.RpcError):
                append(stub, 2)
        finally:
            redis_server.start()
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert 'jenkins_assistant_grpc_requests_total{code="OK",method="AppendTurn",service="memory"} 1.0' in text
    assert 'code="INVALID_ARGUMENT",method="GetHistory"' in text
    assert 'code="UNAVAILABLE",method="AppendTurn"' in text
    assert 'jenkins_assistant_memory_redis_errors_total{operation="append"}' in text
    assert "jenkins_assistant_grpc_request_duration_seconds_bucket" in text


def test_far_future_timestamps_are_refused_and_a_stored_one_still_reads(memory_stub):
    """Hardening item 1: one AppendTurn with answered_at in year 10000 made every later GetHistory fail."""
    future = memory_pb2.Turn(user_text="q", assistant_text="a")
    future.answered_at.FromSeconds(253_402_300_799)
    with pytest.raises(grpc.RpcError) as refused:
        memory_stub.AppendTurn(memory_pb2.AppendTurnRequest(session_id="future", owner="alice", turn=future))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    from jenkins_assistant.memory.core import Turn
    from jenkins_assistant.memory.servicer import turn_to_pb

    stored = turn_to_pb(Turn("q", "a", asked_at=1e19, answered_at=float("1e300")))  # written before validation
    assert stored.answered_at.ToJsonString().startswith("9999-12-31") and stored.asked_at.ToDatetime().year == 9999
