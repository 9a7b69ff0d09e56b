"""Streaming throughput of the inference service vs raw llama-cpp-python in-process, same model and prompt.

Both generate greedily from the identical prompt (the one the service builds for the question, retrieval
off), with the same threads, context, stop sequences and repeat penalty. Throughput = generated tokens /
wall time from sending the request to the last token (prompt evaluation included on both sides), so the
ratio is what serving through gRPC costs. Runs alternate (raw, gRPC, raw, ...) on this noisy machine; the
medians are compared.

    python bench/inference_streaming.py [--rounds 3] [--max-tokens 256] [--threads 2]

Ends with `raw_tokens_per_s=`, `grpc_tokens_per_s=` and `ratio=` (target >= 0.97).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_common import REPEAT_PENALTY, model_path, raw_prompt, start_inference, stream_chat


def raw_run(llama, prompt_tokens: list[int], stop_sequences: list[str], max_tokens: int) -> tuple[int, float]:
    from llama_cpp import LogitsProcessorList

    count = [0]

    def counter(input_ids, scores):
        count[0] += 1
        return scores

    started = time.perf_counter()
    for _chunk in llama.create_completion(prompt_tokens, max_tokens=max_tokens, temperature=0.0, top_p=1.0,
                                          repeat_penalty=REPEAT_PENALTY, stop=stop_sequences, stream=True,
                                          logits_processor=LogitsProcessorList([counter])):
        pass
    return count[0], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    from llama_cpp import Llama

    llama = Llama(model_path(), n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    prompt, stop_sequences = raw_prompt(llama)
    prompt_tokens = llama.tokenize(prompt.encode(), add_bos=True, special=True)

    server = start_inference({"INFERENCE_PARALLEL_SLOTS": "1", "INFERENCE_N_THREADS": str(args.threads),
                              "INFERENCE_N_CTX": str(args.n_ctx)})
    target = server.target
    raw_rates, grpc_rates = [], []
    try:
        stream_chat(target, 8)  # warm-up both sides
        raw_run(llama, prompt_tokens, stop_sequences, 8)
        for round_number in range(args.rounds):
            tokens, seconds = raw_run(llama, prompt_tokens, stop_sequences, args.max_tokens)
            # Both sides keep their KV cache between runs and so reuse the same prompt prefix alike.
            raw_rates.append(tokens / seconds)
            result = stream_chat(target, args.max_tokens)
            grpc_rates.append(result["tokens"] / result["total_s"])
            print(f"round {round_number + 1}: raw {tokens} tokens {raw_rates[-1]:.1f}/s, "
                  f"grpc {result['tokens']} tokens {grpc_rates[-1]:.1f}/s (ttft {result['ttft_s'] * 1000:.0f} ms)",
                  flush=True)
    finally:
        server.stop()
    raw = statistics.median(raw_rates)
    served = statistics.median(grpc_rates)
    print(f"prompt_tokens={len(prompt_tokens)}")
    print(f"raw_tokens_per_s={raw:.2f}")
    print(f"grpc_tokens_per_s={served:.2f}")
    print(f"ratio={served / raw:.3f}")


if __name__ == "__main__":
    main()
