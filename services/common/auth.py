"""Bearer-token authentication for gRPC calls.

The server side is an interceptor (installed only when a token is configured): a missing or wrong
`authorization: Bearer <token>` gets UNAUTHENTICATED. Health checks and reflection stay open so
Kubernetes probes and grpcurl work without the secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import grpc

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata that authenticates a client; empty when no token is used."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def _token_matches(metadata: tuple | None, expected: bytes) -> bool:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return hmac.compare_digest(value[len("Bearer ") :].encode(), expected)
    return False


def _deny(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler refusing the call. It takes the request as raw bytes (no deserializer): a caller without the
    token gets UNAUTHENTICATED whatever the body holds, and its bytes are never parsed."""
    message = "missing or invalid bearer token (metadata 'authorization: Bearer <token>')"

    async def abort_unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(abort_unary, None, handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(abort_stream, None, handler.response_serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(abort_unary, None, handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(abort_stream, None, handler.response_serializer)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("empty auth token")
        self._expected = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        if _token_matches(handler_call_details.invocation_metadata, self._expected):
            return handler
        return _deny(handler)
