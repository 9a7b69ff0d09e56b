"""The memory service against a Redis that requires a password, given apart from the URL (MEMORY_REDIS_PASSWORD,
what the chart sets from redis.passwordSecret)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import MemoryStore
from tests.conftest import free_port

# Characters that would have to be percent-encoded inside a URL: kept out of it, they need not be.
PASSWORD = "p@ss/w:rd#1"


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path_factory.mktemp("redis-auth")), "--requirepass", PASSWORD],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD, socket_connect_timeout=0.2)
    try:
        for _ in range(200):  # bounded wait for the port, not a timing assertion
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


def ping(settings: MemorySettings) -> bool:
    async def check() -> bool:
        store = MemoryStore(settings)
        try:
            return await store.ping()
        finally:
            await store.close()

    return asyncio.run(check())


def test_the_password_setting_reaches_redis(password_redis):
    assert ping(MemorySettings(redis_url=password_redis, redis_password=PASSWORD))


def test_without_it_redis_refuses(password_redis):
    assert not ping(MemorySettings(redis_url=password_redis))
    assert not ping(MemorySettings(redis_url=password_redis, redis_password="wrong"))


def test_it_is_read_under_the_name_the_chart_sets(password_redis):
    settings = MemorySettings(_env_file=None, MEMORY_REDIS_PASSWORD=PASSWORD, REDIS_URL=password_redis)
    assert settings.redis_password.get_secret_value() == PASSWORD and ping(settings)
