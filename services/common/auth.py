"""Bearer-token authentication for gRPC calls.

The server side is an interceptor (installed only when a credential is configured, see
`jenkins_assistant.common.clients`): a missing or unknown `authorization: Bearer <token>` gets UNAUTHENTICATED; a
known one makes its client the caller of the call (`current_client()`). Health checks and reflection stay open so
Kubernetes probes and grpcurl work without the secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

import grpc

from jenkins_assistant.common.clients import CALLER, Client, token_sha256

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata that authenticates a client; empty when no token is used."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def _presented_token(metadata: Iterable | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):]
    return None


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


def _as_caller(handler: grpc.RpcMethodHandler, client: Client) -> grpc.RpcMethodHandler:
    """`handler` running with `client` as current_client(). grpc runs each call in a task of its own, so the value
    set here is seen by the servicer and ends with the call; it is set inside the handler rather than in
    intercept_service so that it does not depend on where grpc runs the interceptors."""

    def unary(behavior):
        async def call(request, context):
            CALLER.set(client)
            return await behavior(request, context)
        return call

    def stream(behavior):
        async def call(request, context):
            CALLER.set(client)
            async for response in behavior(request, context):
                yield response
        return call

    args = (handler.request_deserializer, handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), *args)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream(handler.unary_stream), *args)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), *args)
    return grpc.stream_stream_rpc_method_handler(stream(handler.stream_stream), *args)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, clients: list[Client]) -> None:
        if not clients:
            raise ValueError("no client credentials")
        self._clients = list(clients)

    def client_for(self, token: str | None) -> Client | None:
        if not token:
            return None
        digest = token_sha256(token).encode()
        found = None
        for client in self._clients:  # every one compared, in constant time each: no early exit to time
            if hmac.compare_digest(digest, client.token_sha256.encode()):
                found = client
        return found

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        client = self.client_for(_presented_token(handler_call_details.invocation_metadata))
        if client is None:
            return _deny(handler)
        return _as_caller(handler, client)
