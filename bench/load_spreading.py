"""How evenly calls spread over inference replicas behind one target (issue 11 §3), against gRPC's default.

    .venv/bin/python bench/load_spreading.py --replicas 3 --calls 60

Starts the replicas as processes on loopback (the small model, no index, no memory) and sends the calls one after
another over one channel to a static multi-address target (what DNS answers for a headless Service), first with
our client channel (round_robin), then with a plain channel (pick_first, what every client got before), in the same
run. Each replica's Prometheus request counter says how many calls it served.

Prints `max_share_one_replica=` (the largest fraction one replica served; target <= 0.45 for 3 replicas, 1/3 is
perfect) and `max_share_one_replica_pick_first=` (the baseline: 1.0, everything on one replica).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from jenkins_assistant.common.channels import client_channel
from tests.replicas import calls_per_replica, max_share, running_replicas, static_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()

    with running_replicas(args.replicas) as replicas:
        target = static_target(replicas)
        with client_channel(target) as channel:
            spread = calls_per_replica(replicas, channel, args.calls)
        with grpc.insecure_channel(target) as channel:
            pinned = calls_per_replica(replicas, channel, args.calls)

    print(f"calls_per_replica_round_robin={','.join(map(str, spread))}")
    print(f"calls_per_replica_pick_first={','.join(map(str, pinned))}")
    print(f"max_share_one_replica={max_share(spread):.3f}")
    print(f"max_share_one_replica_pick_first={max_share(pinned):.3f}")


if __name__ == "__main__":
    main()
