"""Inference service entry point: `jenkins-assistant-inference` or `python -m jenkins_assistant.inference.server`.

    INFERENCE_INDEX_DIR=var/index INFERENCE_MEMORY_TARGET=127.0.0.1:50061 jenkins-assistant-inference

The port is bound first and health says NOT_SERVING while the model and the index load (a minute for a
7B model), then SERVING once a real tokenizer call succeeds. With INFERENCE_ENGINE=openai, health follows the
generation server: SERVING while it answers GET /models, NOT_SERVING while it does not (checked every
upstream_health_interval_s; chats meanwhile fail UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
import logging

from jenkins_assistant.build_log import BuildLogSettings
from jenkins_assistant.common.grpc_server import GrpcServer, build_server, serve_until_signal
from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.inference.config import Engine, ExplanationCacheSettings, InferenceSettings
from jenkins_assistant.inference.core import InferenceCore
from jenkins_assistant.inference.engine import GenerationEngine
from jenkins_assistant.inference.explain import BuildLogExplainer
from jenkins_assistant.inference.explain_cache import ExplanationCache
from jenkins_assistant.inference.memory_client import MemoryClient
from jenkins_assistant.inference.servicer import BuildLogServicer, InferenceServicer
from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, inference_pb2, inference_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
BUILD_LOG_SERVICE_NAME = build_log_pb2.DESCRIPTOR.services_by_name["BuildLogService"].full_name
LOG_MESSAGE_MARGIN_BYTES = 1024 * 1024


def load_core(settings: InferenceSettings, memory: MemoryClient | None) -> InferenceCore:
    """Model and index (blocking: run it in a thread); the memory client is made on the event loop."""
    from jenkins_assistant.inference.engine import load_engine
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex, read_manifest

    model = load_engine(settings)
    index = None
    if settings.require_index or read_manifest(settings.index_dir) is not None:
        index = RetrievalIndex.from_settings(settings, load_embedder(settings))
    else:
        log.warning("no retrieval index in %s: answering without documentation", settings.index_dir)
    update_center = None
    if settings.update_center_path:
        from jenkins_assistant.inference.jenkins_context import UpdateCenter

        update_center = UpdateCenter.load(settings.update_center_path)
        log.info("update center data of %s: %d plugins", update_center.generated_at, len(update_center.plugins))
    return InferenceCore(settings, model, index, memory, update_center)


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

    async def CheckPlugins(self, request, context):
        return await self._ready().CheckPlugins(request, context)


class _DeferredBuildLogServicer(build_log_pb2_grpc.BuildLogServiceServicer):
    """Answers UNAVAILABLE until the core is loaded, like _DeferredServicer."""

    def __init__(self) -> None:
        self.servicer: BuildLogServicer | None = None

    def _ready(self) -> BuildLogServicer:
        from jenkins_assistant.common.errors import Unavailable

        if self.servicer is None:
            raise Unavailable("the model and index are still loading")
        return self.servicer

    async def ExplainBuildLog(self, request, context):
        async for response in self._ready().ExplainBuildLog(request, context):
            yield response

    async def GetBuildLogExplanation(self, request, context):
        return await self._ready().GetBuildLogExplanation(request, context)


def build_inference_server(
    settings: InferenceSettings, build_log_settings: BuildLogSettings,
) -> tuple[GrpcServer, _DeferredServicer, _DeferredBuildLogServicer]:
    deferred = _DeferredServicer()
    deferred_build_log = _DeferredBuildLogServicer()

    def register(server) -> list[str]:
        # One process, one model: build logs are explained on the chat's slots, behind the same interceptors
        # (credentials, error mapping), health and reflection.
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(deferred, server)
        build_log_pb2_grpc.add_BuildLogServiceServicer_to_server(deferred_build_log, server)
        return [SERVICE_NAME, BUILD_LOG_SERVICE_NAME]

    # A console log travels in one request: the transport must take a log up to the explain limit (5 MB by
    # default, over gRPC's 4 MB), plus a margin so that a log a little over the limit reaches the explainer and
    # gets INVALID_ARGUMENT naming the limit instead of the transport's RESOURCE_EXHAUSTED.
    message_bytes = max(settings.max_message_bytes, build_log_settings.max_log_bytes + LOG_MESSAGE_MARGIN_BYTES)
    server_settings = settings.model_copy(update={"max_message_bytes": message_bytes})
    return build_server(server_settings, "inference", register), deferred, deferred_build_log


async def run(settings: InferenceSettings) -> None:
    build_log_settings = BuildLogSettings()  # BUILD_LOG_* (max_log_bytes ...), read at start like the rest
    cache_settings = ExplanationCacheSettings()  # BUILD_LOG_CACHE_*: no Redis URL, no cache
    grpc_server, deferred, deferred_build_log = build_inference_server(settings, build_log_settings)
    core: InferenceCore | None = None
    cache: ExplanationCache | None = None
    watch: asyncio.Task | None = None

    async def follow_upstream(model: GenerationEngine) -> None:
        """Health follows the generation server; its outages are the service's (a load balancer or the gateway
        then sends chats elsewhere). Stopped in on_stop; a check landing in the shutdown grace cannot mislead a
        caller, since the stopping server refuses new calls, health checks included."""
        serving = True
        while True:
            await asyncio.sleep(settings.upstream_health_interval_s)
            now = await asyncio.to_thread(model.probe)
            if now != serving:
                log.warning("generation server %s: inference %s", model.source,
                            "SERVING again" if now else "NOT_SERVING")
                await grpc_server.set_serving(now)
                serving = now

    async def on_start() -> None:
        nonlocal core, watch, cache
        core = await asyncio.to_thread(load_core, settings, memory_client(settings))
        deferred.servicer = InferenceServicer(core)
        # Not a readiness dependency: a cache that is down is a miss, and explanations are generated meanwhile.
        cache = ExplanationCache.from_settings(cache_settings)
        if cache is not None:
            log.info("build-log explanations cached in Redis for %d s", cache_settings.ttl_s)
        deferred_build_log.servicer = BuildLogServicer(BuildLogExplainer(core, build_log_settings, cache))
        if settings.engine is Engine.OPENAI:
            # An unreachable upstream is an outage to report, not a reason to exit: it may start after us.
            serving = await asyncio.to_thread(core.model.probe)
            await grpc_server.set_serving(serving)
            watch = asyncio.create_task(follow_upstream(core.model))
            log.info("inference %s on port %d (generation by %s)", "SERVING" if serving else "NOT_SERVING",
                     grpc_server.port, settings.upstream_url)
            return
        if not await asyncio.to_thread(core.model.probe):
            raise RuntimeError("model probe failed")
        if settings.engine is Engine.LLAMA_SERVER:  # our child: watched, and started again if it exits
            watch = asyncio.create_task(follow_upstream(core.model))
        await grpc_server.set_serving(True)
        log.info("inference SERVING on port %d", grpc_server.port)

    async def on_stop() -> None:
        if watch is not None:
            watch.cancel()
        if core is not None:
            await core.close()
        if cache is not None:
            await cache.close()

    await serve_until_signal(grpc_server, settings, on_start=on_start, on_stop=on_stop)


def main() -> None:
    settings = InferenceSettings()
    configure_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
