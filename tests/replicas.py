"""Several inference service processes on loopback, standing for the pods behind one Kubernetes Service, and which of
them served the calls of a channel (tests/test_load_spreading.py, bench/load_spreading.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import grpc

from jenkins_assistant.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import ServiceProcess, free_port

# The call the replicas are counted on: answered by every loaded replica without generating anything.
METHOD = "GetModelInfo"
# prometheus-client writes the labels in alphabetical order.
SERVED = f'jenkins_assistant_grpc_requests_total{{code="OK",method="{METHOD}",service="inference"}}'


class Replica(ServiceProcess):
    metrics_port: int = 0

    def start_process(self) -> None:
        self.process = subprocess.Popen(self.args, env={**os.environ, **self.env})

    def wait_ready(self, timeout_s: float) -> None:
        """Until health says SERVING (a bounded wait, as ServiceProcess.start)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited with {self.process.returncode}")
            if self.is_ready(1.0):
                return
        raise RuntimeError(f"{self.args} did not become ready within {timeout_s}s")

    def served(self) -> int:
        """GetModelInfo calls this process answered OK, from its Prometheus counter."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
            if line.startswith(SERVED + " "):
                return int(float(line.split()[-1]))
        return 0


def inference_replica() -> Replica:
    """One inference process (not started): the small model, one thread, no index (retrieval off), no memory."""
    port, metrics_port = free_port(), free_port()
    replica = Replica(
        args=[sys.executable, "-m", "jenkins_assistant.inference.server"],
        env={
            "INFERENCE_HOST": "127.0.0.1", "INFERENCE_PORT": str(port), "INFERENCE_METRICS_PORT": str(metrics_port),
            "INFERENCE_PACKAGED_MODEL": "smollm2-135m", "INFERENCE_N_THREADS": "1", "INFERENCE_PARALLEL_SLOTS": "1",
            "INFERENCE_N_CTX": "512", "INFERENCE_REQUIRE_INDEX": "false",
            "INFERENCE_INDEX_DIR": tempfile.mkdtemp(prefix="no-index-"), "INFERENCE_LOG_LEVEL": "WARNING",
        },
        port=port,
    )
    replica.metrics_port = metrics_port
    return replica


@contextmanager
def running_replicas(count: int, timeout_s: float = 300) -> Iterator[list[Replica]]:
    """`count` inference processes, all SERVING; stopped on exit. Started together: they load in parallel."""
    replicas = [inference_replica() for _ in range(count)]
    with ExitStack() as stack:
        for replica in replicas:
            stack.callback(replica.stop)
        for replica in replicas:  # Popen all first, then wait for each: loading overlaps
            replica.start_process()
        for replica in replicas:
            replica.wait_ready(timeout_s)
        yield replicas


def static_target(replicas: list[Replica]) -> str:
    """One gRPC target resolving to every replica, as DNS does for a headless Service."""
    return "ipv4:" + ",".join(replica.target for replica in replicas)


def calls_per_replica(replicas: list[Replica], channel: grpc.Channel, calls: int) -> list[int]:
    """Sends `calls` GetModelInfo over `channel`, one after another; how many each replica answered."""
    before = [replica.served() for replica in replicas]
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    for _ in range(calls):
        stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), timeout=30)
    return [replica.served() - start for replica, start in zip(replicas, before, strict=True)]


def max_share(counts: list[int]) -> float:
    return max(counts) / sum(counts)
