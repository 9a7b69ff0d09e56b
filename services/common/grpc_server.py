"""gRPC server bootstrap shared by every service.

`build_server` returns a bound, not yet started server: health says NOT_SERVING until the
service marks itself ready, reflection is on, errors and metrics are handled by one interceptor,
and auth is enforced when a token is configured. A request body that is not a valid message of the
method's type gets INVALID_ARGUMENT (after the auth check), logged as one rate-limited line.
`serve_until_signal` runs it until SIGTERM, then flips health to NOT_SERVING and stops with the
configured grace period.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jenkins_assistant.common.auth import BearerTokenInterceptor
from jenkins_assistant.common.config import ServerSettings
from jenkins_assistant.common.errors import InvalidInput, ServiceError
from jenkins_assistant.common.metrics import GRPC_LATENCY, GRPC_REQUESTS, start_metrics_endpoint

log = logging.getLogger(__name__)


def _status(exc: ServiceError) -> grpc.StatusCode:
    return grpc.StatusCode[exc.status_code_name]


class MalformedRequest:
    """Stands for a request body that did not parse as the method's message type.

    grpc parses a unary request before any handler code runs, and a deserializer that raises ends the
    call as UNKNOWN with a traceback logged at ERROR: anyone could fill the logs, token or not. So the
    deserializer returns this instead, and the wrapped handler refuses it with INVALID_ARGUMENT.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def tolerant_deserializer(deserializer: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    """`deserializer` returning a MalformedRequest instead of raising on bytes that are not its message."""
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> object:
        try:
            return deserializer(raw)
        except DecodeError as exc:
            return MalformedRequest(str(exc)[:200])

    return deserialize


class RateLimitedLog:
    """At most one log line per `interval_s`, saying how many were left out since the last one.

    For events a client can cause at will (malformed requests): each is counted in the request
    metric anyway, and the log only has to show that it is happening.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._clock = clock
        self._next_at = float("-inf")
        self._left_out = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next_at:
            self._left_out += 1
            return
        if self._left_out:
            message += " (%d more since the last such line)"
            args = (*args, self._left_out)
        self._log.warning(message, *args)
        self._next_at = now + self._interval_s
        self._left_out = 0


class ErrorAndMetricsInterceptor(grpc.aio.ServerInterceptor):
    """The one error boundary: domain errors -> their status, anything else -> INTERNAL (logged).

    It also counts every call by final status and times it, for Prometheus.
    """

    def __init__(self, service_label: str) -> None:
        self._service = service_label
        self._malformed_log = RateLimitedLog(log)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        deserializer = tolerant_deserializer(handler.request_deserializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method), deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method), deserializer, handler.response_serializer
            )
        # Client streaming: none of our contracts, but reflection (open without a token) is stream-stream.
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method, streaming_requests=True),
                deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method, streaming_requests=True),
            deserializer,
            handler.response_serializer,
        )

    def _parsed(self, request, method: str):
        if isinstance(request, MalformedRequest):
            self._malformed_log.warning("malformed %s request refused: %s", method, request.reason)
            raise InvalidInput(f"the request is not a valid message for {method}: {request.reason}")
        return request

    def _requests(self, request, method: str, streaming: bool):
        """The handler's request argument, refusing malformed messages (for client streams: as they arrive)."""
        if not streaming:
            return self._parsed(request, method)

        async def checked():
            async for message in request:
                yield self._parsed(message, method)

        return checked()

    def _record(self, method: str, code: grpc.StatusCode, started: float) -> None:
        GRPC_REQUESTS.labels(self._service, method, code.name).inc()
        GRPC_LATENCY.labels(self._service, method).observe(time.perf_counter() - started)

    def _final_code(self, context) -> grpc.StatusCode:
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            return code
        return grpc.StatusCode.OK if code in (None, 0) else grpc.StatusCode.UNKNOWN

    def _wrap_unary(self, behavior, method: str, streaming_requests: bool = False):
        async def unary(request, context):
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                response = await behavior(self._requests(request, method, streaming_requests), context)
                code = self._final_code(context)
                return response
            except ServiceError as exc:
                code = _status(exc)
                await context.abort(code, str(exc))
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = self._final_code(context)
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed", method)
                await context.abort(code, f"internal error in {method}")
            finally:
                self._record(method, code, started)

        return unary

    def _wrap_stream(self, behavior, method: str, streaming_requests: bool = False):
        async def stream(request, context):
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                requests = self._requests(request, method, streaming_requests)
                if inspect.iscoroutinefunction(behavior):
                    # The reader/writer API (health's Watch): the handler writes through the context itself.
                    await behavior(requests, context)
                else:
                    async for response in behavior(requests, context):
                        yield response
                code = self._final_code(context)
            except ServiceError as exc:
                code = _status(exc)
                await context.abort(code, str(exc))
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = self._final_code(context)
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed", method)
                await context.abort(code, f"internal error in {method}")
            finally:
                self._record(method, code, started)

        return stream


class _HealthServicer(health.aio.HealthServicer):
    """grpc's health servicer, starting NOT_SERVING for the whole server and each service.

    grpc's own starts the whole server ("") as SERVING, which a probe could see from the moment the
    port answers until the service first sets it; `set` is a coroutine and `build_server` is not.
    """

    def __init__(self, service_names: Iterable[str]) -> None:
        super().__init__()
        for name in [*service_names, ""]:
            self._server_status[name] = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class GrpcServer:
    """A bound gRPC server plus its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: list[str] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [*self.service_names, ""]:
            await self.health.set(name, status)


def build_server(
    settings: ServerSettings,
    service_label: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
) -> GrpcServer:
    """Create the server, register the service (`register` returns full service names), bind the port.

    Must be called inside a running event loop. Health starts NOT_SERVING for every service.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorAndMetricsInterceptor(service_label)]
    clients = settings.auth_clients()
    if clients:
        interceptors.insert(0, BearerTokenInterceptor(clients))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
            *settings.connection_age_options(),
        ],
    )
    service_names = list(register(server))
    health_servicer = _HealthServicer(service_names)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    port = server.add_insecure_port(settings.address)
    if port == 0:
        raise RuntimeError(f"could not bind {settings.address}")
    return GrpcServer(server=server, port=port, health=health_servicer, service_names=service_names)


async def serve_until_signal(
    grpc_server: GrpcServer,
    settings: ServerSettings,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start, run `on_start` (which marks the service ready), wait for SIGTERM/SIGINT, stop gracefully."""
    start_metrics_endpoint(settings.metrics_port, settings.host)
    await grpc_server.server.start()
    log.info("gRPC listening on %s:%d", settings.host, grpc_server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_start is not None:
            await on_start()
        await stop.wait()
        log.info("shutting down: NOT_SERVING, %.1fs grace for in-flight calls", settings.grace_s)
    finally:
        await grpc_server.set_serving(False)
        await grpc_server.server.stop(settings.grace_s)
        if on_stop is not None:
            await on_stop()
