"""8 concurrent streamed chats: our service against llama.cpp's own server (`llama-server`), the best engine a user
of one CPU box would pick.

Same GGUF, prompt, greedy settings, max tokens and CPU threads everywhere. The baseline is llama-server with 4
parallel slots and continuous batching (`make llama-server` builds it from the llama.cpp vendored in the pinned
llama-cpp-python), driven directly over HTTP with the same prompt text. Ours goes through gRPC with each engine:
`llama-server` (the local engine: that same binary as our child) and `embedded` (llama.cpp contexts in process, one
per slot, taking turns token by token).

    python bench/inference_concurrency.py [--chats 8] [--slots 4] [--threads 2] [--max-tokens 128]

Ends with `failed=` (our failed streams, target 0), then for the llama-server engine `aggregate_vs_llama_server=`
(our tokens/s over all chats / the baseline's, target >= 0.9) and `ttft_p50_vs_llama_server=` (target <= 1.1), and
the same two figures for the embedded engine with the suffix `_embedded`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_common import (
    REPEAT_PENALTY,
    ServiceProcess,
    free_port,
    model_path,
    percentile,
    raw_prompt,
    start_inference,
    stream_chat,
)


def start_llama_server(slots: int, threads: int, n_ctx: int) -> tuple[ServiceProcess, str]:
    import httpx

    from jenkins_assistant.inference.llama_server import find_binary

    port = free_port()
    process = subprocess.Popen(
        [find_binary(os.environ.get("INFERENCE_LLAMA_SERVER_BIN", "")), "--model", model_path(),
         "--host", "127.0.0.1", "--port", str(port), "--parallel", str(slots), "--ctx-size", str(n_ctx * slots),
         "--threads", str(threads), "--threads-batch", str(threads), "--cont-batching", "--log-verbosity", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return ServiceProcess(args=process.args, env={}, port=port, process=process), url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("llama-server did not start")


def stream_completion(url: str, prompt: str, stop_sequences: list[str], max_tokens: int) -> dict:
    """One streamed /v1/completions call with the raw prompt (SSE); client-side timings."""
    import httpx

    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "top_p": 1.0,
            "repeat_penalty": REPEAT_PENALTY, "stop": stop_sequences, "stream": True}
    started = time.perf_counter()
    first = None
    text = []
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            piece = json.loads(line[len("data: "):])["choices"][0]["text"]
            if piece:
                first = first or time.perf_counter()
                text.append(piece)
    ended = time.perf_counter()
    return {"ttft_s": (first or ended) - started, "total_s": ended - started, "text": "".join(text)}


def run_concurrently(chats: int, one_chat) -> tuple[list[dict], int, float]:
    results, failed = [], 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=chats) as pool:
        for future in [pool.submit(one_chat) for _ in range(chats)]:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - any failed stream is counted and reported, not fatal
                failed += 1
                print(f"  failed: {exc!r}"[:300], flush=True)
    return results, failed, time.perf_counter() - started


def summarise(name: str, results: list[dict], wall_s: float, tokenize) -> tuple[float, float]:
    tokens = sum(len(tokenize(r["text"])) for r in results)
    ttfts = [r["ttft_s"] for r in results]
    rate = tokens / wall_s
    print(f"{name}: {len(results)} chats, {tokens} tokens in {wall_s:.1f}s = {rate:.1f} tokens/s; TTFT p50 "
          f"{statistics.median(ttfts):.2f}s p95 {percentile(ttfts, 95):.2f}s", flush=True)
    return statistics.median(ttfts), rate


def measure_ours(engine: str, args, tokenize) -> tuple[float, float, int]:
    process = start_inference({
        "INFERENCE_ENGINE": engine, "INFERENCE_PARALLEL_SLOTS": str(args.slots), "INFERENCE_N_THREADS": str(args.threads),
        "INFERENCE_N_CTX": str(args.n_ctx), "INFERENCE_MAX_QUEUE": str(args.chats)})
    try:
        stream_chat(process.target, 8)  # warm-up
        results, failed, wall = run_concurrently(args.chats, lambda: stream_chat(process.target, args.max_tokens))
        ttft, rate = summarise(f"jenkins-assistant, engine {engine}", results, wall, tokenize)
    finally:
        process.stop()
    return ttft, rate, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=8)
    parser.add_argument("--slots", type=int, default=4, help="parallel slots, ours and the baseline's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048, help="context window per slot")
    args = parser.parse_args()

    from llama_cpp import Llama

    vocab = Llama(model_path(), vocab_only=True, verbose=False)
    prompt, stop_sequences = raw_prompt(vocab)

    def tokenize(text: str) -> list[int]:
        return vocab.tokenize(text.encode(), add_bos=False, special=False)

    theirs_process, url = start_llama_server(args.slots, args.threads, args.n_ctx)
    try:
        stream_completion(url, prompt, stop_sequences, 8)  # warm-up
        results, their_failed, wall = run_concurrently(
            args.chats, lambda: stream_completion(url, prompt, stop_sequences, args.max_tokens))
        their_ttft, their_rate = summarise("llama-server (baseline)", results, wall, tokenize)
    finally:
        theirs_process.stop()

    ttft, rate, failed = measure_ours("llama-server", args, tokenize)
    embedded_ttft, embedded_rate, embedded_failed = measure_ours("embedded", args, tokenize)

    print(f"their_failed={their_failed}")
    print(f"failed={failed + embedded_failed}")
    print(f"aggregate_vs_llama_server={rate / their_rate:.3f}")
    print(f"ttft_p50_vs_llama_server={ttft / their_ttft:.3f}")
    print(f"aggregate_vs_llama_server_embedded={embedded_rate / their_rate:.3f}")
    print(f"ttft_p50_vs_llama_server_embedded={embedded_ttft / their_ttft:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
