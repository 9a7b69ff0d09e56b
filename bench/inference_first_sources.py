"""Time to the first useful output: how soon a chat's sources reach the client, against the old event order.

The real services as processes on loopback (redis-server, the memory service, the inference service on an index),
one chat at a time, each question in a new session (history is read and the exchange stored, as for a user's first
question; a follow-up condensed by the model takes a slot and the model's time before its sources). Client-side
timings from sending the request. The baseline is measured in the same runs: the old order sent the sources
after the whole answer (just before the finish event), so its time to sources is the time to the finish event.

    python bench/inference_first_sources.py [--questions 20] [--max-tokens 0] [--index var/index] \
        [--packaged-model smollm2-135m]

Ends with `first_sources_ms_p50=` (target <= 300) and `old_order_sources_ms_p50=` (the baseline).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc
from inference_common import memory_service, percentile, start_inference, timed_chat

from jenkins_assistant.v1 import inference_pb2_grpc
from tests.inference.retrieval_questions import QUESTIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=20, help="Labelled questions asked (at most 46).")
    parser.add_argument("--max-tokens", type=int, default=0, help="Answer length; 0 = the service's default (512).")
    parser.add_argument("--index", default=str(REPO_ROOT / "var" / "index"), help="Index directory (make index).")
    parser.add_argument("--packaged-model", default="", help="e.g. smollm2-135m; empty = the service's default.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    runs = []
    with memory_service() as memory_target:
        env = {"INFERENCE_INDEX_DIR": args.index, "INFERENCE_REQUIRE_INDEX": "true",
               "INFERENCE_MEMORY_TARGET": memory_target, "INFERENCE_N_THREADS": str(args.threads)}
        if args.packaged_model:
            env |= {"INFERENCE_MODEL_PATH": "", "INFERENCE_PACKAGED_MODEL": args.packaged_model}
        server = start_inference(env, timeout_s=600)
        try:
            with grpc.insecure_channel(server.target) as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                timed_chat(stub, "What is Jenkins?", 4)  # warm-up: first search, first prompt
                for number, (question, _pages) in enumerate(QUESTIONS[:args.questions], 1):
                    run = timed_chat(stub, question, args.max_tokens)
                    runs.append(run)
                    print(f"{number}: sources {run['sources_ms']:.0f} ms ({run['sources']}), first token "
                          f"{run['ttft_ms']:.0f} ms, finished {run['finished_ms']:.0f} ms", flush=True)
        finally:
            server.stop()
    sources_ms = [run["sources_ms"] for run in runs]
    print(f"questions={len(runs)}")
    print(f"first_sources_ms_p50={statistics.median(sources_ms):.1f}")
    print(f"first_sources_ms_p95={percentile(sources_ms, 95):.1f}")
    print(f"ttft_ms_p50={statistics.median(run['ttft_ms'] for run in runs):.1f}")
    print(f"old_order_sources_ms_p50={statistics.median(run['finished_ms'] for run in runs):.1f}")


if __name__ == "__main__":
    main()
