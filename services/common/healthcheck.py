"""Wait until a gRPC server reports SERVING (for scripts, Docker HEALTHCHECK and readiness gates).

    python -m jenkins_assistant.common.healthcheck 127.0.0.1:50061 --timeout 60
Exits 0 once SERVING, 1 when the timeout passes first.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def wait_until_serving(target: str, timeout_s: float, service: str = "") -> bool:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="host:port of the gRPC server")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    parser.add_argument("--service", default="", help="service name to check; empty = the whole server")
    args = parser.parse_args()
    if not wait_until_serving(args.target, args.timeout, args.service):
        print(f"{args.target} not SERVING after {args.timeout:.0f}s", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
