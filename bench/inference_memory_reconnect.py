"""How soon the inference service's memory client uses a restarted memory service again.

A real redis-server and memory service process; the client is the inference service's MemoryClient, called the
way chats call it while memory is down (a failing GetHistory every 0.2 s). The memory service is stopped, started
again, and the time from its port accepting connections to the client's first successful call is measured.
Baseline in the same run: the same client on a channel with gRPC's default reconnect backoff (1 s, x1.6 per failed
attempt, up to 120 s), which grows the longer memory is away. Where the restart falls between two reconnect
attempts is luck, so each round keeps memory away a little longer (--down, then +2.3 s per round).

    python bench/inference_memory_reconnect.py [--down 8] [--rounds 4]

Ends with `memory_reconnect_s=` (median; target about 1), `memory_reconnect_max_s=` and the baseline's
`default_backoff_reconnect_s=` / `default_backoff_reconnect_max_s=`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from jenkins_assistant.inference.memory_client import MemoryClient, MemoryUnavailable
from jenkins_assistant.v1 import memory_pb2_grpc
from tests.conftest import RedisServer, ServiceProcess, free_port, memory_service_process


def start_quietly(memory: ServiceProcess) -> None:
    """Starts the process and waits for its port with a plain socket: a gRPC readiness check from this process
    would share the client's connection (gRPC pools subchannels per process) and hide the client's backoff."""
    memory.process = subprocess.Popen(memory.args, env={**os.environ, **memory.env}, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", memory.port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)


async def reconnect_s(memory: ServiceProcess, down_s: float, default_backoff: bool) -> float:
    client = MemoryClient(memory.target, None, 2.0)
    if default_backoff:
        await client._channel.close()
        client._channel = grpc.aio.insecure_channel(memory.target)
        client._stub = memory_pb2_grpc.MemoryServiceStub(client._channel)
    try:
        await client.get_history("bench", "bench", 5)
        memory.stop()
        down_until = time.monotonic() + down_s
        while time.monotonic() < down_until:
            try:
                await client.get_history("bench", "bench", 5)
            except MemoryUnavailable:
                pass
            await asyncio.sleep(0.2)
        await asyncio.to_thread(start_quietly, memory)
        back = time.monotonic()
        while True:
            try:
                await client.get_history("bench", "bench", 5)
                return time.monotonic() - back
            except MemoryUnavailable:
                await asyncio.sleep(0.05)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--down", type=float, default=8.0, help="Seconds the memory service is away (first round).")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    redis = RedisServer(port=free_port(), workdir=Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    memory = memory_service_process(redis.url, MEMORY_LOG_LEVEL="WARNING")
    memory.start()
    ours, default = [], []
    try:
        for round_number in range(args.rounds):
            down_s = args.down + 2.3 * round_number
            default.append(asyncio.run(reconnect_s(memory, down_s, default_backoff=True)))
            ours.append(asyncio.run(reconnect_s(memory, down_s, default_backoff=False)))
            print(f"round {round_number + 1}, down {down_s:.1f} s: ours {ours[-1]:.2f} s, default backoff "
                  f"{default[-1]:.2f} s", flush=True)
    finally:
        memory.stop()
        redis.stop()
    print(f"memory_reconnect_s={statistics.median(ours):.2f}")
    print(f"memory_reconnect_max_s={max(ours):.2f}")
    print(f"default_backoff_reconnect_s={statistics.median(default):.2f}")
    print(f"default_backoff_reconnect_max_s={max(default):.2f}")


if __name__ == "__main__":
    main()
