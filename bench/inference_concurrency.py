"""8 concurrent streamed chats: our slots vs llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`).

Same model, prompt, greedy settings, max tokens and CPU threads on both sides. `llama_cpp.server` runs
with `--interrupt_requests False` (by default it aborts a running stream whenever another request
arrives); it then serves one request at a time, first come first served. Ours runs N slots that take
turns on the CPU token by token, so every chat starts streaming early.

    python bench/inference_concurrency.py [--chats 8] [--slots 8] [--threads 2] [--max-tokens 128]

Ends with `failed=` (our failed streams, target 0), `ttft_p50_ratio=` (ours / theirs, target <= 0.5) and
`aggregate_ratio=` (our tokens/s over all chats / theirs, target >= 0.9).
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


def start_llama_cpp_server(threads: int, n_ctx: int) -> tuple[ServiceProcess, str]:
    import httpx

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model_path(), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(n_ctx),
         "--interrupt_requests", "False", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return ServiceProcess(args=process.args, env={}, port=port, process=process), url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("llama_cpp.server did not start")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=8)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    from llama_cpp import Llama

    vocab = Llama(model_path(), vocab_only=True, verbose=False)
    prompt, stop_sequences = raw_prompt(vocab)

    def tokenize(text: str) -> list[int]:
        return vocab.tokenize(text.encode(), add_bos=False, special=False)

    theirs_process, url = start_llama_cpp_server(args.threads, args.n_ctx)
    try:
        stream_completion(url, prompt, stop_sequences, 8)  # warm-up
        results, their_failed, wall = run_concurrently(
            args.chats, lambda: stream_completion(url, prompt, stop_sequences, args.max_tokens))
        their_ttft, their_rate = summarise("llama_cpp.server", results, wall, tokenize)
    finally:
        theirs_process.stop()

    ours_process = start_inference({
        "INFERENCE_PARALLEL_SLOTS": str(args.slots), "INFERENCE_N_THREADS": str(args.threads),
        "INFERENCE_N_CTX": str(args.n_ctx), "INFERENCE_MAX_QUEUE": str(args.chats)})
    target = ours_process.target
    try:
        stream_chat(target, 8)  # warm-up
        results, failed, wall = run_concurrently(args.chats, lambda: stream_chat(target, args.max_tokens))
        our_ttft, our_rate = summarise("jenkins-assistant", results, wall, tokenize)
    finally:
        ours_process.stop()

    print(f"their_failed={their_failed}")
    print(f"failed={failed}")
    print(f"ttft_p50_ratio={our_ttft / their_ttft:.3f}")
    print(f"aggregate_ratio={our_rate / their_rate:.3f}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
