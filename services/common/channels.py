"""Client channels to our gRPC services, spreading calls over every address a target resolves to.

gRPC keeps one HTTP/2 connection per channel and, by default (pick_first), sends every call over it: behind a
Kubernetes ClusterIP Service that is one pod for the client's whole life, however many replicas run. These channels
use round_robin instead: one connection per resolved address, calls taken in turn. Give them a target that resolves
to every replica: `dns:///<headless service>:<port>` in Kubernetes (a headless Service returns one A record per
ready pod), or a static list `ipv4:10.0.0.1:50051,10.0.0.2:50051`. A plain `host:port` resolves through DNS too, so
one address behaves exactly as before.

DNS is resolved again when a connection closes; the servers' max connection age (ServerSettings) closes
connections now and then, so a long-lived client finds pods added since (by the autoscaler) and drops removed ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

ROUND_ROBIN_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
# The service config comes from the client: a DNS TXT record must not be able to change the policy.
ROUND_ROBIN_OPTIONS: tuple[tuple[str, object], ...] = (
    ("grpc.service_config", ROUND_ROBIN_CONFIG),
    ("grpc.service_config_disable_resolution", 1),
)

Options = Sequence[tuple[str, object]]


def channel_options(extra: Options = ()) -> list[tuple[str, object]]:
    return [*ROUND_ROBIN_OPTIONS, *extra]


def client_channel(target: str, options: Options = ()) -> grpc.Channel:
    """A blocking channel to `target` with round_robin over its addresses (the CLI, scripts)."""
    return grpc.insecure_channel(target, options=channel_options(options))


def aio_client_channel(target: str, options: Options = ()) -> grpc.aio.Channel:
    """The grpc.aio channel to `target` with round_robin over its addresses (the gateway, inference -> memory)."""
    return grpc.aio.insecure_channel(target, options=channel_options(options))
