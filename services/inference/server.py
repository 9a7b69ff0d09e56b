"""Inference service entry point: `jenkins-assistant-inference` or `python -m jenkins_assistant.inference.server`.

    INFERENCE_INDEX_DIR=var/index INFERENCE_MEMORY_TARGET=127.0.0.1:50061 jenkins-assistant-inference

The port is bound first and health says NOT_SERVING while the model and the index load (a minute for a
7B model), then SERVING once a real tokenizer call succeeds.
"""

from __future__ import annotations

import asyncio
import logging

from jenkins_assistant.common.grpc_server import GrpcServer, build_server, serve_until_signal
from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.core import InferenceCore
from jenkins_assistant.inference.memory_client import MemoryClient
from jenkins_assistant.inference.servicer import InferenceServicer
from jenkins_assistant.v1 import inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name


def load_core(settings: InferenceSettings, memory: MemoryClient | None) -> InferenceCore:
    """Model and index (blocking: run it in a thread); the memory client is made on the event loop."""
    from jenkins_assistant.inference.model import ChatModel
    from jenkins_assistant.inference.model_source import resolve_model
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex, read_manifest

    model = ChatModel(settings, resolve_model(settings))
    index = None
    if settings.require_index or read_manifest(settings.index_dir) is not None:
        index = RetrievalIndex(settings.index_dir, load_embedder(settings), settings.faiss_threads, settings.hybrid,
                               settings.keyword_weight, settings.rrf_k)
    else:
        log.warning("no retrieval index in %s: answering without documentation", settings.index_dir)
    return InferenceCore(settings, model, index, memory)


def memory_client(settings: InferenceSettings) -> MemoryClient | None:
    """The memory service client (grpc.aio: create it on the event loop); None when no target is set."""
    if not settings.memory_target:
        return None
    return MemoryClient(settings.memory_target, settings.memory_token or None, settings.memory_timeout_s)


class _DeferredServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Answers UNAVAILABLE until the core is loaded (health is NOT_SERVING meanwhile)."""

    def __init__(self) -> None:
        self.servicer: InferenceServicer | None = None

    def _ready(self) -> InferenceServicer:
        from jenkins_assistant.common.errors import Unavailable

        if self.servicer is None:
            raise Unavailable("the model and index are still loading")
        return self.servicer

    async def Chat(self, request, context):
        async for response in self._ready().Chat(request, context):
            yield response

    async def Ask(self, request, context):
        return await self._ready().Ask(request, context)

    async def SubmitFeedback(self, request, context):
        return await self._ready().SubmitFeedback(request, context)

    async def GetModelInfo(self, request, context):
        return await self._ready().GetModelInfo(request, context)


def build_inference_server(settings: InferenceSettings) -> tuple[GrpcServer, _DeferredServicer]:
    deferred = _DeferredServicer()

    def register(server) -> list[str]:
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(deferred, server)
        return [SERVICE_NAME]

    return build_server(settings, "inference", register), deferred


async def run(settings: InferenceSettings) -> None:
    grpc_server, deferred = build_inference_server(settings)
    core: InferenceCore | None = None

    async def on_start() -> None:
        nonlocal core
        core = await asyncio.to_thread(load_core, settings, memory_client(settings))
        if not await asyncio.to_thread(core.model.probe):
            raise RuntimeError("model probe failed")
        deferred.servicer = InferenceServicer(core)
        await grpc_server.set_serving(True)
        log.info("inference SERVING on port %d", grpc_server.port)

    async def on_stop() -> None:
        if core is not None:
            await core.close()

    await serve_until_signal(grpc_server, settings, on_start=on_start, on_stop=on_stop)


def main() -> None:
    settings = InferenceSettings()
    configure_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
