"""Calls spread over the replicas behind one target, with the channel the gateway, the CLI and inference -> memory use.

Three real inference processes on loopback stand for three pods; one static multi-address target stands for the DNS
answer of a headless Service (one address per ready pod). Each process counts the calls it answered (its Prometheus
request counter), so which replica served what is read from the servers, not guessed by the client.
"""

from __future__ import annotations

import grpc
import pytest

from jenkins_assistant.common.channels import client_channel
from jenkins_assistant.common.config import ServerSettings
from tests.replicas import calls_per_replica, running_replicas, static_target

CALLS = 60


@pytest.fixture(scope="module")
def replicas():
    with running_replicas(3) as started:
        yield started


def test_our_client_channel_spreads_calls_over_every_replica(replicas):
    with client_channel(static_target(replicas)) as channel:
        counts = calls_per_replica(replicas, channel, CALLS)
    assert sum(counts) == CALLS, counts  # every call was answered by one of them, and counted once
    assert max(counts) < CALLS, f"one replica got everything: {counts}"
    assert all(counts), f"a replica got nothing: {counts}"


def test_a_plain_channel_pins_every_call_to_one_replica(replicas):
    # What the round_robin option changes: gRPC's default policy (pick_first) on the same target sends every call
    # over one connection, which is what a ClusterIP Service gets whatever the number of pods.
    with grpc.insecure_channel(static_target(replicas)) as channel:
        counts = calls_per_replica(replicas, channel, CALLS)
    assert sorted(counts) == [0, 0, CALLS], counts


def test_max_connection_age_becomes_server_options_only_when_set():
    assert ServerSettings().connection_age_options() == []  # gRPC's defaults: connections live forever
    settings = ServerSettings(max_connection_age_s=300, max_connection_age_grace_s=30.5)
    assert settings.connection_age_options() == [("grpc.max_connection_age_ms", 300_000),
                                                 ("grpc.max_connection_age_grace_ms", 30_500)]
