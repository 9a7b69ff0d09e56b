"""Bounded fuzzing of the memory and inference services as they run in production (their own processes, a real
redis-server, the real model and sample index): random and malformed requests, raw bytes included.

Every case must end with a deliberate status (never INTERNAL or UNKNOWN), both services must still be SERVING
afterwards, and the sessions stored before must be byte-identical (Redis DUMP). The seed is fixed, so a failure
names a case that fails again. Inference cases are refused before generation, except a handful of tiny valid ones,
so the run stays well under a minute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest
import redis
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import session_key
from jenkins_assistant.v1 import common_pb2, inference_pb2, memory_pb2, memory_pb2_grpc
from tests.conftest import ServiceProcess, memory_service_process
from tests.inference.fixtures import TEST_TOKEN

SEED = 1414
MEMORY_TOKEN = "memory-fuzz-token"
Code = grpc.StatusCode
OK, INVALID, NOT_FOUND, UNAUTHENTICATED = Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.UNAUTHENTICATED

MEMORY = "/jenkins_assistant.v1.MemoryService/"
INFERENCE = "/jenkins_assistant.v1.InferenceService/"
HEALTH = "/grpc.health.v1.Health/"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
STREAMING = {INFERENCE + "Chat": "unary_stream", HEALTH + "Watch": "unary_stream", REFLECTION: "stream_stream"}

# From the issue: a string field (field 1) holding invalid UTF-8.
ISSUE_BODY = bytes.fromhex("0a02fffe")

# The sessions written before fuzzing, as (owner, session id); none of the fuzz cases may change them.
SESSIONS = [("alice", "fuzz-s1"), ("alice", "fuzz-s2"), ("bob", "fuzz-s1"), ("Zoë 🚀", "fuzz.s-3")]
# Owners that must never reach those sessions' keys: near misses of the real ones, and odd ones.
OTHER_OWNERS = ["alice ", "Alice", " alice", "alice\x00", "alice\n", "bo", "bobb", "Zoë", "zoë 👩‍💻", "mallory",
                "", "x" * 256, "x" * 257, "\u202eecila", "anonymous", "a:b", "*", "alice:fuzz-s1"]
SESSION_IDS = [sid for _, sid in SESSIONS] + ["", "a" * 128, "a" * 129, "../etc", "a b", "s:1", "ünï", "s\x00",
                                              "*", "fuzz-s1 ", "FUZZ-S1", "new-session"]
TIMESTAMP_SECONDS = [-(2**63), -62135596801, -62135596800, -1, 0, 1, 1_700_000_000, 4_102_444_800,
                     253402300799, 253402300800, 2**63 - 1]
TIMESTAMP_NANOS = [-1, 0, 1, 999_999_999, 1_000_000_000, 2**31 - 1]
TEXTS = ["", " ", "hello", "\x00", "a\x00b", "\ud7ff", "日本語 🚀", "\u202e", "\r\n" * 10, "x" * 32_001]
FLOATS = [0.0, -0.0, 1e-9, 0.5, 1.0, 1.0000001, 2.0, 2.5, -1.0, 1e38, math.inf, -math.inf, math.nan]
INTS = [-(2**31), -1, 0, 1, 2, 5, 20, 21, 50, 51, 2048, 2049, 2**31 - 1]


@dataclass
class Results:
    """Statuses seen and the cases that got one they should not have."""

    cases: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, label: str, body: bytes, code: Code, allowed: Iterable[Code]) -> None:
        self.cases += 1
        self.seen[code.name] = self.seen.get(code.name, 0) + 1
        if code not in allowed:
            self.failures.append(f"{label} {body[:48].hex()}{'...' if len(body) > 48 else ''} -> {code.name}")


def call_raw(channel: grpc.Channel, method: str, body: bytes, metadata=(), timeout: float = 30) -> Code:
    """Send `body` as the request bytes of `method` (no serializer: raw bytes go out), return the final status."""
    kind = STREAMING.get(method, "unary_unary")
    try:
        if kind == "unary_unary":
            channel.unary_unary(method)(body, metadata=metadata, timeout=timeout)
        elif method == HEALTH + "Watch":
            call = channel.unary_stream(method)(body, metadata=metadata, timeout=timeout)
            next(call)  # Watch streams until cancelled: its first answer is the outcome
            call.cancel()
        elif kind == "unary_stream":
            for _ in channel.unary_stream(method)(body, metadata=metadata, timeout=timeout):
                pass
        else:
            for _ in channel.stream_stream(method)(iter([body]), metadata=metadata, timeout=timeout):
                pass
    except grpc.RpcError as exc:
        return exc.code()
    return OK


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1-4 byte-level mutations: flips, inserts, deletions, truncation, varint runs, duplicated slices."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(out))
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and out:
            del out[min(pos, len(out) - 1)]
        elif op == 3:
            del out[pos:]
        elif op == 4:
            out[pos:pos] = b"\xff" * rng.randint(1, 11)  # an over-long varint
        else:
            out[pos:pos] = out[pos : pos + rng.randint(1, 16)]
    return bytes(out)


def random_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 64))
    if kind == 1:  # valid-looking tags (fields 1-7, any wire type) followed by junk
        return bytes([(rng.randint(1, 7) << 3) | rng.randrange(8)]) + rng.randbytes(rng.randint(0, 16))
    if kind == 2:  # a length-delimited field whose bytes are not UTF-8
        payload = rng.randbytes(rng.randint(1, 12)) + b"\xff"
        return bytes([(rng.randint(1, 5) << 3) | 2, len(payload)]) + payload
    if kind == 3:  # nested unknown groups, deeper than protobuf's recursion limit
        return b"\x0b" * rng.randint(50, 300)
    return ISSUE_BODY


def timestamp(rng: random.Random) -> Timestamp:
    return Timestamp(seconds=rng.choice(TIMESTAMP_SECONDS), nanos=rng.choice(TIMESTAMP_NANOS))


# ---------------------------------------------------------------- memory
def memory_turn(rng: random.Random) -> memory_pb2.Turn:
    turn = memory_pb2.Turn(user_text=rng.choice(TEXTS), assistant_text=rng.choice(TEXTS))
    for _ in range(rng.choice([0, 1, 2, 21])):
        turn.sources.add(url=rng.choice(["", "https://www.jenkins.io/doc/", "x" * 2049, "ünï"]),
                         title=rng.choice(TEXTS), snippet=rng.choice(["", "s", "s" * 5000]),
                         score=rng.choice(FLOATS), citation=rng.choice(INTS))
    if rng.random() < 0.7:
        turn.asked_at.CopyFrom(timestamp(rng))
    if rng.random() < 0.7:
        turn.answered_at.CopyFrom(timestamp(rng))
    return turn


def memory_request(rng: random.Random) -> tuple[str, Message]:
    """A request that may not change the stored sessions: appends and clears never name a session's own owner."""
    method = rng.choice(["AppendTurn", "GetHistory", "ClearSession"])
    session_id = rng.choice(SESSION_IDS)
    if method == "GetHistory":
        owner = rng.choice([owner for owner, _ in SESSIONS] + OTHER_OWNERS)
        return method, memory_pb2.GetHistoryRequest(session_id=session_id, owner=owner, k=rng.choice(INTS))
    owner = rng.choice(OTHER_OWNERS)
    if method == "ClearSession":
        return method, memory_pb2.ClearSessionRequest(session_id=session_id, owner=owner)
    return method, memory_pb2.AppendTurnRequest(session_id=session_id, owner=owner, turn=memory_turn(rng))


def fuzz_memory(rng: random.Random, target: str, results: Results, cases: int, token: str = "") -> None:
    """Cases for the memory service at `target`; one that requires `token` also gets calls without it."""
    allowed = {OK, INVALID, NOT_FOUND}
    metadata = bearer_metadata(token)
    with grpc.insecure_channel(target) as channel:
        for method in ("AppendTurn", "GetHistory", "ClearSession"):
            code = call_raw(channel, MEMORY + method, ISSUE_BODY, metadata)
            results.check(f"memory {method}", ISSUE_BODY, code, {INVALID})
            if token:
                code = call_raw(channel, MEMORY + method, ISSUE_BODY, bearer_metadata(token + "x"))
                results.check(f"memory {method} wrong token", ISSUE_BODY, code, {UNAUTHENTICATED})
        for _ in range(cases):
            method, request = memory_request(rng)
            body = request.SerializeToString()
            shape = rng.randrange(3)
            if shape == 1:
                body = mutate(rng, body)
            elif shape == 2:
                body = random_bytes(rng)
            if shape and memory_could_touch_a_session(method, body):
                continue  # a mutation that happens to name a stored session's owner is not a case
            results.check(f"memory {method}", body, call_raw(channel, MEMORY + method, body, metadata), allowed)
            if token:
                code = call_raw(channel, MEMORY + method, body)
                results.check(f"memory {method} without token", body, code, {UNAUTHENTICATED})


def memory_could_touch_a_session(method: str, body: bytes) -> bool:
    """True when `body` parses into an append or clear by a stored session's owner (the test must not send it)."""
    if method == "GetHistory":
        return False
    kind = memory_pb2.AppendTurnRequest if method == "AppendTurn" else memory_pb2.ClearSessionRequest
    try:
        request = kind.FromString(body)
    except DecodeError:
        return False
    return request.owner in {owner for owner, _ in SESSIONS}


# ---------------------------------------------------------------- inference
def refused_before_generation(request: inference_pb2.ChatRequest | inference_pb2.AskRequest) -> bool:
    """The documented refusals this test relies on for its raw-bytes cases (the service checks more)."""
    return not request.question.strip() or "\x00" in request.question or len(request.question) > 4000


def invalid_chat_request(rng: random.Random, kind: type[Message]) -> Message:
    """A Chat/Ask request with odd values everywhere and at least one that the contract refuses."""
    options = common_pb2.GenerationOptions(
        max_tokens=rng.choice([0, 1, 2]), retrieval_k=rng.choice([0, 1, 20]), seed=rng.choice([0, 1, 2**32 - 1]),
        disable_retrieval=rng.random() < 0.5,
    )
    if rng.random() < 0.5:
        options.temperature = rng.choice(FLOATS)
    if rng.random() < 0.5:
        options.top_p = rng.choice(FLOATS)
    options.stop.extend(rng.choice([[], ["\n"], ["é" * 64], ["x"] * 8]))
    request = kind(
        question=rng.choice(["How do I restart Jenkins?", "日本語 🚀", "\r\n?", "a" * 4000]),
        session_id=rng.choice(SESSION_IDS[:6] + ["new-session"]),
        owner=rng.choice([owner for owner, _ in SESSIONS] + OTHER_OWNERS[:12]),
        options=options,
    )
    breakers: list[Callable[[], None]] = [
        lambda: setattr(request, "question", rng.choice(["", "   ", "\n\t", "a\x00b", "q" * 4001])),
        lambda: setattr(request, "session_id", rng.choice(["a" * 129, "../etc", "a b", "s:1", "ünï", "s\x00"])),
        lambda: setattr(request, "owner", rng.choice(["x" * 257, "alice\n", "alice\x00", "\x1b[31m"])),
        lambda: setattr(request.options, "max_tokens", rng.choice([-(2**31), -1, 2049, 2**31 - 1])),
        lambda: setattr(request.options, "temperature", rng.choice([-1.0, 2.5, 1e38, math.inf, -math.inf, math.nan])),
        lambda: setattr(request.options, "top_p", rng.choice([0.0, -0.0, -1.0, 1.0000001, math.inf, math.nan])),
        lambda: setattr(request.options, "retrieval_k", rng.choice([-(2**31), -1, 21, 2**31 - 1])),
        lambda: request.options.stop.extend(rng.choice([[""], ["s" * 65], ["x"] * 9])),
    ]
    for breaker in rng.sample(breakers, rng.randint(1, 3)):
        breaker()
    return request


def raw_chat_body(rng: random.Random, kind: type[Message]) -> bytes | None:
    """Random or mutated bytes that either do not parse or parse into a request refused before generation."""
    body = mutate(rng, invalid_chat_request(rng, kind).SerializeToString()) if rng.random() < 0.5 else random_bytes(rng)
    try:
        if not refused_before_generation(kind.FromString(body)):
            return None  # it would generate an answer: not a cheap case
    except DecodeError:
        pass
    return body


def valid_tiny_requests() -> list[tuple[str, Message]]:
    """Odd but valid requests, answered with a token or two: the edges of every bound, fresh sessions only."""
    def chat(kind, question, session_id="", owner="", **options):
        return kind(question=question, session_id=session_id, owner=owner,
                    options=common_pb2.GenerationOptions(**options))

    return [
        ("Ask", chat(inference_pb2.AskRequest, "What is a Jenkinsfile?", max_tokens=1, temperature=0.0,
                     retrieval_k=1)),
        ("Chat", chat(inference_pb2.ChatRequest, "日本語 🚀 \u202e\r\n?", "fuzz-fresh-1", "Zoë 🚀", max_tokens=2,
                      temperature=2.0, top_p=1e-9, seed=2**32 - 1, disable_retrieval=True)),
        ("Ask", chat(inference_pb2.AskRequest, "a" * 300, max_tokens=1, disable_retrieval=True, stop=["\n"] * 8)),
        ("Chat", chat(inference_pb2.ChatRequest, "Restart Jenkins?", "a" * 128, "x" * 256, max_tokens=2,
                      top_p=1.0, stop=["é" * 64], disable_retrieval=True)),
        ("Ask", chat(inference_pb2.AskRequest, "   ok?   ", "fuzz-fresh-2", "mallory", max_tokens=1,
                     temperature=0.7, seed=1, disable_retrieval=True)),
    ]


def fuzz_inference(rng: random.Random, target: str, results: Results, cases: int) -> None:
    methods = ["Chat", "Ask", "SubmitFeedback", "GetModelInfo"]
    kinds = {"Chat": inference_pb2.ChatRequest, "Ask": inference_pb2.AskRequest}
    token = bearer_metadata(TEST_TOKEN)
    with grpc.insecure_channel(target) as channel:
        for method in methods:
            # GetModelInfoRequest has no fields: its field 1 is an unknown one, kept unparsed.
            expected = {OK} if method == "GetModelInfo" else {INVALID}
            results.check(f"inference {method}", ISSUE_BODY, call_raw(channel, INFERENCE + method, ISSUE_BODY, token),
                          expected)
        for case in range(cases):
            method = methods[case % len(methods)]
            shape = rng.randrange(3)
            if shape == 0:  # no or a wrong token: refused whatever the body, before it is parsed
                body = random_bytes(rng) if rng.random() < 0.5 else mutate(rng, rng.randbytes(8))
                metadata = rng.choice([(), bearer_metadata("wrong"), (("authorization", TEST_TOKEN),),
                                       (("authorization", "Bearer " + TEST_TOKEN + "x"),)])
                code = call_raw(channel, INFERENCE + method, body, metadata)
                results.check(f"inference {method} without token", body, code, {UNAUTHENTICATED})
            elif method in kinds and shape == 1:
                body = invalid_chat_request(rng, kinds[method]).SerializeToString()
                results.check(f"inference {method}", body, call_raw(channel, INFERENCE + method, body, token), {INVALID})
            elif method in kinds:
                body = raw_chat_body(rng, kinds[method])
                if body is not None:
                    code = call_raw(channel, INFERENCE + method, body, token)
                    results.check(f"inference {method} raw", body, code, {INVALID})
            elif method == "SubmitFeedback":
                request = inference_pb2.SubmitFeedbackRequest(
                    answer_id=rng.choice(["", "0" * 32, "x" * 1000, "ünï"]), session_id=rng.choice(SESSION_IDS),
                    owner=rng.choice(OTHER_OWNERS), rating=rng.choice([0, 1, 2, 3, -1, 2**31 - 1]),
                    comment=rng.choice(["", "good", "c" * 2001, "\x00"]))
                body = request.SerializeToString() if shape == 1 else mutate(rng, request.SerializeToString())
                code = call_raw(channel, INFERENCE + method, body, token)
                results.check(f"inference {method}", body, code, {INVALID, NOT_FOUND})
            else:
                body = random_bytes(rng) if shape == 1 else b""
                code = call_raw(channel, INFERENCE + method, body, token)
                results.check(f"inference {method}", body, code, {OK, INVALID})
        for method, request in valid_tiny_requests():
            body = request.SerializeToString()
            results.check(f"inference {method} valid", body, call_raw(channel, INFERENCE + method, body, token), {OK})


# ---------------------------------------------------------------- both
def fuzz_open_services(rng: random.Random, target: str, results: Results, cases: int) -> None:
    """Health and reflection need no token: anyone can send them anything."""
    with grpc.insecure_channel(target) as channel:
        expected = {
            HEALTH + "Check": {OK, INVALID, NOT_FOUND},  # NOT_FOUND: a service name the server does not have
            HEALTH + "Watch": {OK, INVALID},
            REFLECTION: {OK, INVALID},
            MEMORY + "Nope": {Code.UNIMPLEMENTED},
            "/x.Y/Z": {Code.UNIMPLEMENTED},
        }
        methods = list(expected)
        for case in range(cases):
            method = methods[case % len(methods)]
            if case % 2:
                body = random_bytes(rng)
            else:
                body = mutate(rng, health_pb2.HealthCheckRequest(service=rng.choice(["", "x"])).SerializeToString())
            results.check(f"{target} {method}", body, call_raw(channel, method, body), expected[method])
        # Bodies over the limit (4 MiB; the inference server takes a console log up to its limit + 1 MiB) are
        # refused by grpc itself.
        big = b"\x0a" + b"\xff\xff\xff\x02" + b"a" * (8 * 1024 * 1024 + 16)
        results.check(f"{target} oversized", big, call_raw(channel, HEALTH + "Check", big), {Code.RESOURCE_EXHAUSTED})


def health_statuses(target: str, service: str) -> set[int]:
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        return {health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status for name in ("", service)}


@pytest.fixture
def stored_sessions(memory_process) -> list[str]:
    """The SESSIONS written afresh through the memory service; returns their Redis keys."""
    prefix = MemorySettings().key_prefix
    with grpc.insecure_channel(memory_process.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for owner, session_id in SESSIONS:
            try:  # left by an earlier test of this session
                stub.ClearSession(memory_pb2.ClearSessionRequest(session_id=session_id, owner=owner), timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == NOT_FOUND
            for n in range(3):
                turn = memory_pb2.Turn(user_text=f"question {n} of {owner}", assistant_text=f"answer {n} 🚀",
                                       sources=[common_pb2.Source(url="https://www.jenkins.io/doc/", citation=1)])
                turn.asked_at.GetCurrentTime()
                stub.AppendTurn(memory_pb2.AppendTurnRequest(session_id=session_id, owner=owner, turn=turn), timeout=10)
    return [session_key(prefix, owner, session_id) for owner, session_id in SESSIONS]


def dump(client: redis.Redis, keys: Iterable[str]) -> dict[str, bytes | None]:
    return {key: client.dump(key) for key in keys}


@pytest.fixture
def memory_with_token(redis_server) -> Iterator[ServiceProcess]:
    """A second memory service on the same Redis, this one requiring a token (the shared one has none)."""
    service = memory_service_process(redis_server.url, MEMORY_AUTH_TOKEN=MEMORY_TOKEN)
    service.start()
    yield service
    service.stop()


def test_fuzzed_requests_get_deliberate_statuses_and_change_no_stored_session(
    memory_process, memory_with_token, inference_process, redis_server, stored_sessions: list[str]
):
    client = redis.Redis.from_url(redis_server.url)
    before = dump(client, stored_sessions)
    assert all(before.values()), "the sessions were not stored"
    rng = random.Random(SEED)
    results = Results()
    try:
        fuzz_memory(rng, memory_process.target, results, cases=1600)
        fuzz_memory(rng, memory_with_token.target, results, cases=300, token=MEMORY_TOKEN)
        fuzz_inference(rng, inference_process.target, results, cases=1200)
        for target in (memory_process.target, inference_process.target):
            fuzz_open_services(rng, target, results, cases=250)
        after = dump(client, stored_sessions)
    finally:
        client.close()
    assert results.failures == [], f"{len(results.failures)} of {results.cases} cases: {results.failures[:20]}"
    assert results.cases > 3000 and {OK.name, INVALID.name, NOT_FOUND.name, UNAUTHENTICATED.name} <= set(results.seen)
    serving = {health_pb2.HealthCheckResponse.SERVING}
    for memory in (memory_process, memory_with_token):
        assert health_statuses(memory.target, "jenkins_assistant.v1.MemoryService") == serving
    assert health_statuses(inference_process.target, "jenkins_assistant.v1.InferenceService") == serving
    assert after == before
