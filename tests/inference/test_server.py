"""The inference service process: health while it loads, then once it is ready."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.healthcheck import wait_until_serving
from jenkins_assistant.inference.retrieval.index import CHUNKS
from jenkins_assistant.inference.server import SERVICE_NAME
from jenkins_assistant.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import free_port
from tests.inference.fixtures import TEST_TOKEN

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def index_with_a_held_chunks_file(sample_index: Path, folder: Path) -> Path:
    """A copy of the sample index whose chunk file is a FIFO: the server's loader blocks reading it until the
    test writes it, so the process stays 'still loading' for exactly as long as the test needs."""
    folder.mkdir()
    for entry in sample_index.iterdir():
        if entry.name != CHUNKS:
            (folder / entry.name).symlink_to(entry.resolve())
    os.mkfifo(folder / CHUNKS)
    return folder / CHUNKS


def open_once_read(fifo: Path, process: subprocess.Popen, timeout_s: float, on_wait) -> int:
    """A write end of `fifo`, opened once the process opens it for reading (`on_wait` runs between tries)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        assert process.poll() is None, f"the inference service exited with {process.returncode} while loading"
        assert time.monotonic() < deadline, f"the inference service did not start reading its index in {timeout_s}s"
        on_wait()
        time.sleep(0.2)


def test_health_is_not_serving_while_the_model_and_index_load_then_serving(sample_index, tmp_path, auth):
    fifo = index_with_a_held_chunks_file(sample_index, tmp_path / "index")
    port = free_port()
    target = f"127.0.0.1:{port}"
    env = {
        "INFERENCE_HOST": "127.0.0.1",
        "INFERENCE_PORT": str(port),
        "INFERENCE_AUTH_TOKEN": TEST_TOKEN,
        "INFERENCE_INDEX_DIR": str(fifo.parent),
        "INFERENCE_PACKAGED_MODEL": "smollm2-135m",
        "INFERENCE_N_THREADS": "1",
        "INFERENCE_N_CTX": "2048",
        "INFERENCE_PARALLEL_SLOTS": "1",
        "INFERENCE_MEMORY_TARGET": "",
        "INFERENCE_GRACE_S": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "jenkins_assistant.inference.server"], env={**os.environ, **env})
    seen: list[int] = []
    try:
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def check_health() -> None:
                try:
                    seen.append(health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status)
                except grpc.RpcError as exc:
                    # Before the port is bound nothing answers; once it answers, it must say NOT_SERVING.
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

            writer = open_once_read(fifo, process, 180, check_health)
            try:
                # The model is loaded and the index is half read: the port answers, and says not yet.
                for service in ("", SERVICE_NAME):
                    seen.append(health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)
                assert set(seen) == {NOT_SERVING}
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                try:
                    stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), metadata=auth, timeout=5)
                    raise AssertionError("GetModelInfo answered while the index was loading")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE
                os.set_blocking(writer, True)
                with open(sample_index / CHUNKS, "rb") as chunks:
                    data = chunks.read()
                while data:
                    data = data[os.write(writer, data) :]
            finally:
                os.close(writer)
            assert wait_until_serving(target, 120)
            info = stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), metadata=auth, timeout=10)
            assert info.indexed_chunks > 0
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
