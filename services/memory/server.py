"""Memory service entry point: `jenkins-assistant-memory` or `python -m jenkins_assistant.memory.server`.

Health is SERVING only while Redis answers: a watcher pings it every `redis_check_interval_s`, so
an outage shows as NOT_SERVING (calls get UNAVAILABLE) and recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jenkins_assistant.common.grpc_server import GrpcServer, build_server, serve_until_signal
from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import MemoryStore
from jenkins_assistant.memory.servicer import MemoryServicer
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name


def build_memory_server(settings: MemorySettings, store: MemoryStore) -> GrpcServer:
    def register(server) -> list[str]:
        memory_pb2_grpc.add_MemoryServiceServicer_to_server(MemoryServicer(store), server)
        return [SERVICE_NAME]

    return build_server(settings, "memory", register)


async def watch_redis(grpc_server: GrpcServer, store: MemoryStore, interval_s: float) -> None:
    serving: bool | None = None
    while True:
        healthy = await store.ping()
        if healthy != serving:
            log.info("redis %s: %s", "reachable" if healthy else "unreachable", "SERVING" if healthy else "NOT_SERVING")
            await grpc_server.set_serving(healthy)
            serving = healthy
        await asyncio.sleep(interval_s)


async def run(settings: MemorySettings) -> None:
    store = MemoryStore(settings)
    grpc_server = build_memory_server(settings, store)
    watcher: asyncio.Task | None = None

    async def on_start() -> None:
        nonlocal watcher
        watcher = asyncio.create_task(watch_redis(grpc_server, store, settings.redis_check_interval_s))

    async def on_stop() -> None:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await store.close()

    await serve_until_signal(grpc_server, settings, on_start=on_start, on_stop=on_stop)


def main() -> None:
    settings = MemorySettings()
    configure_logging(settings.log_level)
    log.info("memory service: redis=%s k=%d cap=%d ttl=%ds", settings.redis_url, settings.default_k,
             settings.max_turns, settings.ttl_s)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
