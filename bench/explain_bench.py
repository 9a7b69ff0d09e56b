"""Explain-a-build benchmark, part 1: extraction time on a generated 50 MB console log.

    python bench/explain_bench.py [--mb 50] [--rounds 3]

The log mixes what long Pipeline builds print (timestamps, ANSI-coloured Maven lines, `[Pipeline]` markers,
shell traces, passing test summaries, a stack trace now and then) and ends in a failure. It is read whole (the
limit is raised above its size), so the figure is the scan rate, not the cost of the default 5 MB tail.
The median of the rounds is reported. Ends with `name=value` lines:
  extract_s_per_100mb  seconds `extract` takes per 100 MB read (decode, clean, mask, scan, excerpt)
  extract_tail_s       seconds for the same log under the default limit (its last 5 MB)
  mask_s_per_100mb     of which masking alone
The end-to-end ratio (`explain_ttft_ratio`) needs the service and is measured elsewhere.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from jenkins_assistant.build_log import BuildLogSettings, extract, mask_secrets
from jenkins_assistant.build_log.extract import clean

MB = 1024 * 1024


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the generated log in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
