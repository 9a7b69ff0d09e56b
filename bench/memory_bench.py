"""Memory service benchmark: append+get-window through gRPC vs the same Redis work through raw redis-py.

One operation = append one exchange, then read the last k=5 exchanges of the session. The raw
baseline does exactly the Redis work the service does (the same Lua append script, the same
LRANGE+LLEN pipeline) from the benchmark process, so the ratio is the cost of the gRPC service.
Both run in the same process against the same redis-server, interleaved in rounds (noisy machine).

    python bench/memory_bench.py [--ops 2000] [--rounds 3]

Prints per-path ops/s and latency, then `ratio=` (gRPC ops/s / raw ops/s, target >= 0.5) and
`p99_ms=` (gRPC p99 per operation, target <= 5). It also times an empty RPC (health Check) on the same
server: one operation is two RPCs, so `ratio_ceiling=` (raw op / (raw op + 2 empty RPCs)) is the best
ratio any Python gRPC service could reach on this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.common.healthcheck import wait_until_serving
from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import APPEND_SCRIPT, Turn, session_key
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_grpc(stub, ops: int, tag: str) -> list[float]:
    request_turn = memory_pb2.Turn(user_text="How do I configure a Jenkins agent?", assistant_text="x" * 400)
    latencies = []
    for i in range(ops):
        session = f"{tag}-{i % 50}"
        start = time.perf_counter()
        stub.AppendTurn(memory_pb2.AppendTurnRequest(session_id=session, owner="bench", turn=request_turn))
        stub.GetHistory(memory_pb2.GetHistoryRequest(session_id=session, owner="bench", k=5))
        latencies.append(time.perf_counter() - start)
    return latencies


def run_raw(client: redis.Redis, ops: int, tag: str, settings: MemorySettings) -> list[float]:
    append = client.register_script(APPEND_SCRIPT)
    turn_json = Turn(user_text="How do I configure a Jenkins agent?", assistant_text="x" * 400,
                     asked_at=time.time(), answered_at=time.time()).to_json()
    latencies = []
    for i in range(ops):
        key = session_key(settings.key_prefix, "bench", f"{tag}-{i % 50}")
        start = time.perf_counter()
        append(keys=[key], args=[turn_json, settings.max_turns, settings.ttl_s])
        with client.pipeline(transaction=False) as pipe:
            pipe.lrange(key, -5, -1)
            pipe.llen(key)
            raw_turns, _ = pipe.execute()
        [Turn.from_json(raw) for raw in raw_turns]  # the service decodes too
        latencies.append(time.perf_counter() - start)
    return latencies


def run_empty_rpc(channel, calls: int) -> list[float]:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        stub.Check(request)
        latencies.append(time.perf_counter() - start)
    return latencies


def summary(name: str, latencies: list[float]) -> tuple[float, float]:
    ops_s = len(latencies) / sum(latencies)
    p50, p99 = percentile(latencies, 0.50) * 1e3, percentile(latencies, 0.99) * 1e3
    print(f"{name}: {ops_s:,.0f} ops/s  p50={p50:.3f} ms  p99={p99:.3f} ms  (n={len(latencies)})")
    return ops_s, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_port = free_port()
            processes.append(subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        port = free_port()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "jenkins_assistant.memory.server"],
            env={**os.environ, "MEMORY_PORT": str(port), "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING",
                 "MEMORY_LOG_LEVEL": "WARNING"}))
        target = f"127.0.0.1:{port}"
        if not wait_until_serving(target, 30):
            raise RuntimeError(f"memory service at {target} not SERVING")

        settings = MemorySettings(redis_url=redis_url)
        client = redis.Redis.from_url(redis_url)
        with grpc.insecure_channel(target) as channel:
            stub = memory_pb2_grpc.MemoryServiceStub(channel)
            run_grpc(stub, 200, "warm")  # warm-up: connections, script cache, code paths
            run_raw(client, 200, "warm", settings)
            grpc_lat: list[float] = []
            raw_lat: list[float] = []
            empty_lat: list[float] = []
            for round_ in range(args.rounds):
                raw_lat += run_raw(client, args.ops, f"raw{round_}", settings)
                grpc_lat += run_grpc(stub, args.ops, f"grpc{round_}")
                empty_lat += run_empty_rpc(channel, args.ops)
        raw_ops, _ = summary("raw redis-py", raw_lat)
        grpc_ops, grpc_p99 = summary("gRPC memory service", grpc_lat)
        # Means, like the ops/s figures: the ceiling and the ratio are then comparable.
        empty_us = statistics.fmean(empty_lat) * 1e6
        raw_op_us = 1e6 / raw_ops
        print(f"empty_rpc_us={empty_us:.0f}")
        print(f"ratio_ceiling={raw_op_us / (raw_op_us + 2 * empty_us):.3f}")
        print(f"grpc_ops_s={grpc_ops:.0f}")
        print(f"raw_ops_s={raw_ops:.0f}")
        print(f"grpc_p50_ms={statistics.median(grpc_lat) * 1e3:.3f}")
        print(f"ratio={grpc_ops / raw_ops:.3f}")
        print(f"p99_ms={grpc_p99:.3f}")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
