"""Fixtures shared by every test: the real Jenkins data in ../shared/data and a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The inference service fixtures (model, index, memory and inference processes) are session-scoped and used by the
# inference and gateway tests: registered once here, so one set of processes serves both directories.
pytest_plugins = ["tests.inference.fixtures"]
SHARED_DATA = Path(os.environ.get("JENKINS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real Jenkins data (docs, blog, plugin docs, Q&A, API captures)."""
    if not (SHARED_DATA / "SOURCES.md").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set JENKINS_SHARED_DATA)")
    return SHARED_DATA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    """A real redis-server on a loopback port that tests may stop and start again."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A flushed database on the shared redis-server, restarted first if a test killed it."""
    import redis

    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@dataclass
class ServiceProcess:
    """A service started as its own process (as in production), on a free loopback port."""

    args: list[str]
    env: dict[str, str]
    port: int
    process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_ready(self, timeout_s: float) -> bool:
        """gRPC health SERVING (an HTTP service overrides this)."""
        from jenkins_assistant.common.healthcheck import wait_until_serving

        return wait_until_serving(self.target, timeout_s)

    def start(self, timeout_s: float = 60) -> None:
        self.process = subprocess.Popen(self.args, env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited with {self.process.returncode}")
            if self.is_ready(1.0):
                return
        self.stop()
        raise RuntimeError(f"{self.args} did not become ready within {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def memory_service_process(redis_url: str, **env: str) -> ServiceProcess:
    """The memory service as its own process on a free port (not started yet); env adds MEMORY_* settings."""
    import sys

    port = free_port()
    return ServiceProcess(
        args=[sys.executable, "-m", "jenkins_assistant.memory.server"],
        env={"MEMORY_PORT": str(port), "MEMORY_HOST": "127.0.0.1", "REDIS_URL": redis_url, **env},
        port=port,
    )


@pytest.fixture
def memory_service(redis_url: str) -> Iterator[ServiceProcess]:
    """The memory service as a separate process on a real Redis; `.stop()` simulates an outage."""
    service = memory_service_process(redis_url, MEMORY_REDIS_CHECK_INTERVAL_S="0.2")
    service.start()
    yield service
    service.stop()
