"""Prometheus metrics shared by every gRPC server (prometheus-client, default registry)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

GRPC_REQUESTS = Counter(
    "jenkins_assistant_grpc_requests_total",
    "gRPC calls handled, by final status code.",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "jenkins_assistant_grpc_request_duration_seconds",
    "Wall time of gRPC calls, from first byte to last response.",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def start_metrics_endpoint(port: int, host: str) -> int:
    """Serve /metrics over HTTP on port (0 = disabled). Returns the bound port or 0."""
    if not port:
        return 0
    server, _thread = start_http_server(port, addr=host)
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return bound
