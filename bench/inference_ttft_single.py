"""Time to the first token for one user at a time: the service as it is against the service as the issue found it.

The real services as processes on loopback (redis-server, the memory service, the inference service on the full
index), one chat at a time, each labelled question in a new session, the same model for every configuration, in
the same run:
- `as_filed`: the embedded engine with each prompt evaluated on one thread (INFERENCE_BATCH_THREADS=1) and 4 plain
  passages (INFERENCE_PASSAGE_NEIGHBORS=0): what the issue measured (15.7 s p50, SmolLM2, 2 cores);
- `default`: today's defaults but the engine, which is the local llama-server engine (all cores on the prompt,
  KV reuse of the prompt's beginning through llama-server's prompt cache), with passages extended by their
  neighbour (more prompt tokens, for answer quality);
- `default_plain_passages`: the same with INFERENCE_PASSAGE_NEIGHBORS=0, the prompt size of `as_filed`.

    python bench/inference_ttft_single.py [--questions 12] [--index var/index] [--packaged-model smollm2-135m]

The model is the service's default packaged model (Qwen2.5-Coder-0.5B) unless --packaged-model names another: the
issue measured "the default model", which was SmolLM2 then. --as-filed-model gives `as_filed` its own model: the
issue's target for a new default is its first token against SmolLM2's as filed, measured in the same run
(`--packaged-model qwen2.5-coder-1.5b --as-filed-model smollm2-135m`). The llama-server binary is
INFERENCE_LLAMA_SERVER_BIN (make bench passes the one make llama-server built for this CPU).

Ends with `ttft_single_ratio=` (default / as_filed p50; target <= 0.4), `ttft_single_ratio_plain_passages=`, and
each configuration's `ttft_ms_p50_<name>=` and `prompt_tokens_p50_<name>=`.
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
from inference_common import memory_service, start_inference, timed_chat

from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.v1 import inference_pb2_grpc
from tests.inference.retrieval_questions import QUESTIONS

CONFIGURATIONS = {
    "as_filed": {"INFERENCE_ENGINE": "embedded", "INFERENCE_BATCH_THREADS": "1", "INFERENCE_PASSAGE_NEIGHBORS": "0"},
    "default": {"INFERENCE_ENGINE": "llama-server"},
    "default_plain_passages": {"INFERENCE_ENGINE": "llama-server", "INFERENCE_PASSAGE_NEIGHBORS": "0"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=12, help="Labelled questions asked (at most 46).")
    parser.add_argument("--max-tokens", type=int, default=8, help="Answer length (only the first token is timed).")
    parser.add_argument("--index", default=str(REPO_ROOT / "var" / "index"), help="Index directory (make index).")
    parser.add_argument("--packaged-model", default=InferenceSettings.model_fields["packaged_model"].default,
                        help="The model of every configuration (default: the service's).")
    parser.add_argument("--as-filed-model", default="",
                        help="The model of as_filed (default: --packaged-model, so the ratio compares serving alone).")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    p50: dict[str, float] = {}
    with memory_service() as memory_target:
        for name, settings in CONFIGURATIONS.items():
            model = args.as_filed_model if name == "as_filed" and args.as_filed_model else args.packaged_model
            env = {"INFERENCE_INDEX_DIR": args.index, "INFERENCE_REQUIRE_INDEX": "true", "INFERENCE_MODEL_PATH": "",
                   "INFERENCE_PACKAGED_MODEL": model, "INFERENCE_MEMORY_TARGET": memory_target,
                   "INFERENCE_N_THREADS": str(args.threads), **settings}
            server = start_inference(env, timeout_s=600)
            try:
                with grpc.insecure_channel(server.target) as channel:
                    stub = inference_pb2_grpc.InferenceServiceStub(channel)
                    timed_chat(stub, "What is Jenkins?", 4)  # warm-up: first search, first prompt
                    runs = [timed_chat(stub, question, args.max_tokens) for question, _pages in QUESTIONS[:args.questions]]
            finally:
                server.stop()
            p50[name] = statistics.median(run["ttft_ms"] for run in runs)
            tokens = statistics.median(run["prompt_tokens"] for run in runs)
            print(f"{name}: {len(runs)} questions, first token p50 {p50[name]:.0f} ms, prompt tokens p50 {tokens:.0f}",
                  flush=True)
            print(f"ttft_ms_p50_{name}={p50[name]:.1f}")
            print(f"prompt_tokens_p50_{name}={tokens:.0f}")
    print(f"ttft_single_ratio={p50['default'] / p50['as_filed']:.3f}")
    print(f"ttft_single_ratio_plain_passages={p50['default_plain_passages'] / p50['as_filed']:.3f}")


if __name__ == "__main__":
    main()
