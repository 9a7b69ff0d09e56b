"""Memory service fixtures: a factory that starts the real service process with chosen settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from jenkins_assistant.v1 import memory_pb2_grpc
from tests.conftest import ServiceProcess, memory_service_process


@pytest.fixture
def start_memory(redis_url: str) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        service = memory_service_process(redis_url, MEMORY_REDIS_CHECK_INTERVAL_S="0.2", **env)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def memory_stub(memory_service) -> Iterator[memory_pb2_grpc.MemoryServiceStub]:
    with grpc.insecure_channel(memory_service.target) as channel:
        yield memory_pb2_grpc.MemoryServiceStub(channel)
