"""The shared server bootstrap: error boundary, status mapping, health, auth, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.config import ServerSettings
from jenkins_assistant.common.errors import InvalidInput, NotFound, Overloaded, Unavailable
from jenkins_assistant.common.grpc_server import RateLimitedLog, build_server
from jenkins_assistant.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from tests.conftest import free_port


class ScriptedInference(inference_pb2_grpc.InferenceServiceServicer):
    """Fails in the way the question asks for, to exercise the shared error boundary."""

    async def Ask(self, request, context):
        errors = {
            "invalid": InvalidInput("question is empty"),
            "missing": NotFound("no such session"),
            "busy": Overloaded("queue full"),
            "down": Unavailable("model not loaded"),
            "bug": RuntimeError("secret internal detail"),
        }
        if request.question in errors:
            raise errors[request.question]
        return inference_pb2.AskResponse(text=f"echo: {request.question}")

    async def Chat(self, request, context):
        yield inference_pb2.ChatResponse(delta=common_pb2.TextDelta(text="partial "))
        if request.question == "fail-mid-stream":
            raise InvalidInput("bad option discovered mid-stream")
        yield inference_pb2.ChatResponse(delta=common_pb2.TextDelta(text="done"))


def run_with_server(settings: ServerSettings, body):
    """Start a real aio server on a free port in this thread's loop, run `body(target, grpc_server)`."""

    async def main():
        def register(server):
            inference_pb2_grpc.add_InferenceServiceServicer_to_server(ScriptedInference(), server)
            return ["jenkins_assistant.v1.InferenceService"]

        grpc_server = build_server(settings, "test", register)
        await grpc_server.server.start()
        try:
            return await body(f"127.0.0.1:{grpc_server.port}", grpc_server)
        finally:
            await grpc_server.server.stop(0)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT),
        ("missing", grpc.StatusCode.NOT_FOUND),
        ("busy", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("down", grpc.StatusCode.UNAVAILABLE),
        ("bug", grpc.StatusCode.INTERNAL),
    ],
)
def test_domain_errors_map_to_status_codes_and_internal_hides_details(question, code):
    async def body(target, _):
        async with grpc.aio.insecure_channel(target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Ask(inference_pb2.AskRequest(question=question))
            assert err.value.code() == code
            assert "secret internal detail" not in err.value.details()
            # The server keeps serving after any failure.
            assert (await stub.Ask(inference_pb2.AskRequest(question="ok"))).text == "echo: ok"

    run_with_server(ServerSettings(port=0), body)


def test_error_mid_stream_keeps_sent_events_then_fails_with_status():
    async def body(target, _):
        async with grpc.aio.insecure_channel(target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            received = []
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for event in stub.Chat(inference_pb2.ChatRequest(question="fail-mid-stream")):
                    received.append(event.delta.text)
            assert received == ["partial "]
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            ok = [e.delta.text async for e in stub.Chat(inference_pb2.ChatRequest(question="fine"))]
            assert ok == ["partial ", "done"]

    run_with_server(ServerSettings(port=0), body)


def test_health_not_serving_until_ready_and_auth_spares_health():
    async def body(target, grpc_server):
        async with grpc.aio.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            # Nothing set it: build_server starts NOT_SERVING (grpc's default would be SERVING).
            for service in ("", "jenkins_assistant.v1.InferenceService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            await grpc_server.set_serving(True)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Ask(inference_pb2.AskRequest(question="ok"))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            reply = await stub.Ask(inference_pb2.AskRequest(question="ok"), metadata=bearer_metadata("tok"))
            assert reply.text == "echo: ok"

    run_with_server(ServerSettings(port=0, auth_token="tok"), body)


def test_health_watch_streams_each_change():
    async def body(target, grpc_server):
        async with grpc.aio.insecure_channel(target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            await grpc_server.set_serving(True)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()

    run_with_server(ServerSettings(port=0), body)


# A string field (AskRequest.session_id, HealthCheckRequest.service, ...) holding invalid UTF-8, a length running past
# the end, a truncated varint, a field number 0, and a group end tag with no start.
MALFORMED_BODIES = [b"\x0a\x02\xff\xfe", b"\x0a\x05ab", b"\x08\xff", b"\x00\x00", b"\x0c"]


async def call_raw(channel, method: str, body: bytes, metadata=()) -> grpc.StatusCode:
    """Send `body` as the request bytes of `method` (any of the four kinds), return the final status."""
    kind = {"Chat": "unary_stream", "Watch": "unary_stream", "ServerReflectionInfo": "stream_stream"}.get(
        method.rsplit("/", 1)[-1], "unary_unary")
    identity = {"request_serializer": None, "response_deserializer": None}
    try:
        if kind == "unary_unary":
            await channel.unary_unary(method, **identity)(body, metadata=metadata, timeout=10)
        elif kind == "unary_stream":
            call = channel.unary_stream(method, **identity)(body, metadata=metadata, timeout=10)
            await call.read()  # Watch never ends by itself: its first answer is enough
            call.cancel()
        else:
            async for _ in channel.stream_stream(method, **identity)(iter([body]), metadata=metadata, timeout=10):
                pass
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("method", "without_token"),
    [
        ("/jenkins_assistant.v1.InferenceService/Ask", grpc.StatusCode.UNAUTHENTICATED),
        ("/jenkins_assistant.v1.InferenceService/Chat", grpc.StatusCode.UNAUTHENTICATED),
        # Open without a token: the body is what is wrong.
        ("/grpc.health.v1.Health/Check", grpc.StatusCode.INVALID_ARGUMENT),
        ("/grpc.health.v1.Health/Watch", grpc.StatusCode.INVALID_ARGUMENT),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_malformed_bodies_get_invalid_argument_after_auth_and_one_log_line(method, without_token, caplog):
    async def body(target, _):
        async with grpc.aio.insecure_channel(target) as channel:
            for raw in MALFORMED_BODIES * 4:
                assert await call_raw(channel, method, raw) == without_token
                assert await call_raw(channel, method, raw, bearer_metadata("wrong")) == without_token
                assert await call_raw(channel, method, raw, bearer_metadata("tok")) == grpc.StatusCode.INVALID_ARGUMENT

    with caplog.at_level(logging.INFO):
        run_with_server(ServerSettings(port=0, auth_token="tok"), body)
    # grpc itself logs a traceback at ERROR for a request its deserializer could not parse.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    refused = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage()


def test_rate_limited_log_says_how_many_lines_it_left_out(caplog):
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.rate_limited"), interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.rate_limited"):
        for step in range(25):  # 0.0, 1.0 ... 24.0: lines at 0, 10 and 20
            now[0] = float(step)
            limited.warning("bad request %d", step)
    assert [r.getMessage() for r in caplog.records] == [
        "bad request 0",
        "bad request 10 (9 more since the last such line)",
        "bad request 20 (9 more since the last such line)",
    ]


def test_sigterm_stops_the_memory_service_gracefully(redis_url):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jenkins_assistant.memory.server"],
        env={"MEMORY_PORT": str(port), "REDIS_URL": redis_url, "MEMORY_GRACE_S": "2", "PATH": "/usr/bin:/bin"},
    )
    try:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
