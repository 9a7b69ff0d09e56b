"""Explain-a-build benchmark: extraction time on a generated 50 MB console log, and the end-to-end time to the first
explanation token against a chat answer whose prompt has the same length, on the same service in the same run.

    python bench/explain_bench.py [--mb 50] [--rounds 3] [--logs 6] [--index var/index] \
        [--packaged-model smollm2-135m] [--threads 2] [--skip-extract] [--skip-e2e]

The log mixes what long Pipeline builds print (timestamps, ANSI-coloured Maven lines, `[Pipeline]` markers,
shell traces, passing test summaries, a stack trace now and then) and ends in a failure. It is read whole (the
limit is raised above its size), so the figure is the scan rate, not the cost of the default 5 MB tail.
The median of the rounds is reported.

End to end: the inference service as its own process (one slot, no memory service, the explanation cache on a
redis-server of its own), the fixture logs of tests/build_log/logs one after the other. For each: ExplainBuildLog
(refresh: generated, not reused), then a Chat whose question is that log's excerpt cut so that its prompt (system,
passages, question) has as many tokens as the explanation's (calibrated on two chats, corrected once when more than
10% off), then the same failure again (reused from the cache when the first explanation ended by itself). Times are
client-side, from sending the request to the first text delta: the explanation's include extracting the facts,
retrieval on them and fitting the prompt; the chat's, retrieval on its question. One slot and alternating kinds
keep llama.cpp's prompt cache from favouring either side.

Ends with `name=value` lines:
  extract_s_per_100mb   seconds `extract` takes per 100 MB read (decode, clean, mask, scan, excerpt)
  extract_tail_s        seconds for the same log under the default limit (its last 5 MB)
  mask_s_per_100mb      of which masking alone
  explain_ttft_ratio    median over the logs of explanation / chat time to first token (target <= 1.2)
  explain_ttft_ms_p50, chat_ttft_ms_p50, prompt_tokens_ratio (chat / explanation prompt, median: ~1 = same length)
  reused_ttft_ms_p50    a repeated failure answered from the cache
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jenkins_assistant.build_log import BuildLogSettings, extract, mask_secrets
from jenkins_assistant.build_log.extract import clean

MB = 1024 * 1024
# Long enough for a question padded to an explanation's prompt (the service's default is 4000).
MAX_QUESTION_CHARS = 60_000


def generate_log(size_bytes: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    stages = ["Checkout", "Build", "Unit Tests", "Integration", "Package", "Publish"]
    lines: list[str] = ["Started by user Jane Doe", "[Pipeline] Start of Pipeline", "[Pipeline] node", "[Pipeline] {"]
    size = 0
    second = 0
    while size < size_bytes:
        stage = rng.choice(stages)
        block = ["[Pipeline] stage", f"[Pipeline] {{ ({stage})", "[Pipeline] sh", f"+ ./ci/{stage.lower()}.sh"]
        for _ in range(rng.randint(200, 800)):
            kind = rng.random()
            if kind < 0.5:
                block.append(
                    f"\x1b[1;34m[INFO]\x1b[m Downloaded from central: https://repo.maven.apache.org/maven2/org/acme/"
                    f"lib{rng.randint(1, 9999)}/1.{rng.randint(0, 20)}/lib.jar ({rng.randint(1, 900)} kB at 3.1 MB/s)"
                )
            elif kind < 0.8:
                block.append(
                    f"[INFO] Tests run: {rng.randint(1, 60)}, Failures: 0, Errors: 0, Skipped: 0, "
                    f"Time elapsed: {rng.random():.3f} s - in com.acme.Test{rng.randint(1, 500)}"
                )
            elif kind < 0.97:
                block.append(f"+ echo step {rng.randint(1, 10**6)} done in /home/jenkins/workspace/app_main@2")
            else:
                block += [
                    "java.io.IOException: retrying upload",
                    "\tat org.acme.Uploader.put(Uploader.java:88)",
                    "Caused by: java.net.SocketTimeoutException: Read timed out",
                ]
        block += ["[Pipeline] }", "[Pipeline] // stage"]
        for line in block:
            second += 1
            stamped = f"[2024-05-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z] {line}"
            lines.append(stamped)
            size += len(stamped) + 1
    lines += [
        "[Pipeline] stage",
        "[Pipeline] { (Deploy)",
        "[Pipeline] sh",
        "+ ./deploy.sh",
        "gzip: stdout: No space left on device",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] }",
        "[Pipeline] // node",
        "[Pipeline] End of Pipeline",
        "ERROR: script returned exit code 2",
        "Finished: FAILURE",
    ]
    return ("\n".join(lines) + "\n").encode()


def timed(function, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def extraction(args) -> None:
    log = generate_log(args.mb * MB)
    whole = BuildLogSettings(max_log_bytes=len(log) + 1)
    facts = extract(log, whole)
    assert (facts.stage, facts.signature_id, facts.truncated) == ("Deploy", "disk-full", False), facts

    extract_s = timed(lambda: extract(log, whole), args.rounds)
    tail_s = timed(lambda: extract(log), args.rounds)
    cleaned = clean(log.decode())
    mask_s = timed(lambda: mask_secrets(cleaned), args.rounds)
    per_100mb = 100 * MB / len(log)
    print(f"log_mb={len(log) / MB:.1f}")
    print(f"extract_s_per_100mb={extract_s * per_100mb:.2f}")
    print(f"extract_tail_s={tail_s:.3f}")
    print(f"mask_s_per_100mb={mask_s * per_100mb:.2f}")


# ---------------------------------------------------------------------------------------------------- end to end
def first_token(call) -> tuple[float, dict]:
    """Seconds from making the call (`call()`, a streaming gRPC call) to its first text delta, and what the stream
    said (metadata, usage, text)."""
    started = time.perf_counter()
    first = None
    seen: dict = {"text": []}
    for event in call():
        kind = event.WhichOneof("event")
        if kind == "delta":
            first = first or time.perf_counter()
            seen["text"].append(event.delta.text)
        elif kind == "metadata":
            seen["metadata"] = event.metadata
        elif kind == "finished":
            seen["usage"] = event.finished.usage
    return (first or time.perf_counter()) - started, seen


def end_to_end(args) -> None:
    import grpc
    from inference_common import start_inference

    from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc
    from tests.build_log.conftest import MANIFEST, read_log
    from tests.build_log.test_fingerprint import as_next_build
    from tests.conftest import RedisServer, free_port

    # Both sides end at the first full stop: only the first token is timed, and an explanation that ends by
    # itself is cached, so the repeat of its failure is answered from Redis.
    options = common_pb2.GenerationOptions(max_tokens=64, temperature=0.0, stop=["."])

    def explain(stub, log: bytes, refresh: bool, max_tokens: int = 64):
        request = build_log_pb2.ExplainBuildLogRequest(log=log, owner="bench", refresh=refresh, options=(
            options if max_tokens == options.max_tokens else common_pb2.GenerationOptions(
                max_tokens=max_tokens, temperature=0.0, stop=["."])))
        return first_token(lambda: stub.ExplainBuildLog(request, timeout=900))

    def chat(stub, question: str, max_tokens: int = 64):
        request = inference_pb2.ChatRequest(question=question, owner="bench", options=common_pb2.GenerationOptions(
            max_tokens=max_tokens, temperature=0.0, stop=["."]))
        return first_token(lambda: stub.Chat(request, timeout=900))

    def question(padding: str, chars: int) -> str:
        chars = max(40, min(MAX_QUESTION_CHARS - 100, int(chars)))
        body = (padding * (chars // max(1, len(padding)) + 1))[:chars]
        return f"Why did this Jenkins build fail?\n{body}"

    redis = RedisServer(port=free_port(), workdir=Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    env = {"INFERENCE_INDEX_DIR": args.index, "INFERENCE_REQUIRE_INDEX": "true", "INFERENCE_N_THREADS": str(args.threads),
           "INFERENCE_PARALLEL_SLOTS": "1", "INFERENCE_MAX_QUESTION_CHARS": str(MAX_QUESTION_CHARS),
           "BUILD_LOG_CACHE_REDIS_URL": redis.url}
    if args.packaged_model:
        env |= {"INFERENCE_MODEL_PATH": "", "INFERENCE_PACKAGED_MODEL": args.packaged_model}
    server = start_inference(env, timeout_s=600)
    pairs = []
    reused_s = []
    try:
        with grpc.insecure_channel(server.target) as channel:
            explainer = build_log_pb2_grpc.BuildLogServiceStub(channel)
            chatter = inference_pb2_grpc.InferenceServiceStub(channel)
            names = sorted(MANIFEST)[:args.logs]
            # Warm-up (first search, first prompt of each kind), then the prompt size of a chat per question
            # character: two chats of 1000 and 3000 characters of a log's excerpt.
            _, warm = explain(explainer, read_log(names[0]), True)
            padding = warm["metadata"].facts.excerpt
            chat(chatter, question(padding, 200), 1)
            sizes = [(chars, chat(chatter, question(padding, chars), 1)[1]["usage"].prompt_tokens)
                     for chars in (1000, 3000)]
            per_char = (sizes[1][1] - sizes[0][1]) / (sizes[1][0] - sizes[0][0])
            base = sizes[0][1] - sizes[0][0] * per_char
            for name in names:
                log = read_log(name)
                explain_s, explained = explain(explainer, log, True)
                target = explained["usage"].prompt_tokens
                padding = explained["metadata"].facts.excerpt
                chars = (target - base) / per_char
                chat_s, answered = chat(chatter, question(padding, chars))
                if abs(answered["usage"].prompt_tokens - target) > 0.1 * target:
                    chars += (target - answered["usage"].prompt_tokens) / per_char
                    # The slot still holds the chat just made, whose prompt the next one shares up to its question's
                    # end: one explanation token in between leaves it holding an explanation's, as before the first.
                    explain(explainer, log, True, max_tokens=1)
                    chat_s, answered = chat(chatter, question(padding, chars))
                again_s, again = explain(explainer, as_next_build(log.decode()).encode(), False)
                if again["metadata"].reused:
                    reused_s.append(again_s)
                pairs.append((explain_s, chat_s, target, answered["usage"].prompt_tokens))
                print(f"{name}: explanation {explain_s * 1000:.0f} ms ({target} prompt tokens), chat "
                      f"{chat_s * 1000:.0f} ms ({answered['usage'].prompt_tokens}), ratio {explain_s / chat_s:.2f}"
                      + (f", reused {again_s * 1000:.1f} ms" if again["metadata"].reused else ", not cached"),
                      flush=True)
    finally:
        server.stop()
        redis.stop()
    print(f"logs={len(pairs)}")
    print(f"explain_ttft_ms_p50={statistics.median(p[0] for p in pairs) * 1000:.0f}")
    print(f"chat_ttft_ms_p50={statistics.median(p[1] for p in pairs) * 1000:.0f}")
    print(f"prompt_tokens_ratio={statistics.median(p[3] / p[2] for p in pairs):.2f}")
    if reused_s:
        print(f"reused_ttft_ms_p50={statistics.median(reused_s) * 1000:.1f}")
    print(f"explain_ttft_ratio={statistics.median(p[0] / p[1] for p in pairs):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the generated log in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=int, default=6, help="fixture logs explained end to end (at most 17)")
    parser.add_argument("--index", default=str(REPO_ROOT / "var" / "index"), help="index directory (make index)")
    parser.add_argument("--packaged-model", default="", help="e.g. smollm2-135m; empty = the service's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-extract", action="store_true", help="only the end-to-end part")
    parser.add_argument("--skip-e2e", action="store_true", help="only the extraction part (no service)")
    args = parser.parse_args()
    if not args.skip_extract:
        extraction(args)
    if not args.skip_e2e:
        end_to_end(args)


if __name__ == "__main__":
    main()
