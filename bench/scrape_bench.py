"""Scraper benchmark: full docs + blog + plugin-docs ingest, then the unchanged re-run.

    python bench/scrape_bench.py [--data ../shared/data] [--rounds 3]

Each round uses fresh output and state folders:
  * baseline: read every source file and hash its bytes (the I/O floor any ingest pays);
  * full: `run_scrape` of jenkins_docs + jenkins_blog + plugin_docs into a new dataset version
    (AsciiDoc/markdown conversion, includes, URLs, JSONL, report), target <= 60 s;
  * rerun: the same run again with nothing changed (fingerprint check, cached documents, content
    hash equal to the latest version, nothing written), target <= 5 s.
The median of the rounds is reported. Ends with `name=value` lines: baseline_read_s, full_s,
files_per_s (source files / full_s), full_over_baseline, rerun_s, rerun_written (0 = nothing written).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import tempfile
import time
from pathlib import Path

from jenkins_assistant.scraper.config import ScrapeSettings
from jenkins_assistant.scraper.core import run_scrape

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["jenkins_docs", "jenkins_blog", "plugin_docs"]


def source_files(data: Path) -> list[Path]:
    files = []
    for folder in ("jenkins-docs", "jenkins-blog", "jenkins-plugins"):
        files.extend(p for p in sorted((data / folder).rglob("*")) if p.is_file())
    return files


def read_baseline(files: list[Path]) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the docs' one missing include would warn every round

    files = source_files(args.data)
    baselines, fulls, reruns, written = [], [], [], []
    documents = 0
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="scrape-bench-") as tmp:
            settings = ScrapeSettings(
                output_dir=Path(tmp) / "datasets",
                state_dir=Path(tmp) / "state",
                docs_root=args.data / "jenkins-docs",
                blog_root=args.data / "jenkins-blog",
                plugins_root=args.data / "jenkins-plugins",
                discourse_url="",
                stackexchange_url="",
                docs_git_url="",
                blog_git_url="",
                plugins_update_center_url="",
            )
            baselines.append(read_baseline(files))
            started = time.perf_counter()
            full = run_scrape(settings, sources=SOURCES)
            fulls.append(time.perf_counter() - started)
            started = time.perf_counter()
            rerun = run_scrape(settings, sources=SOURCES)
            reruns.append(time.perf_counter() - started)
            written.append(int(rerun.written))
            documents = full.report["counts"]["documents"]
            print(f"round {round_number}: baseline {baselines[-1]:.2f}s, full {fulls[-1]:.2f}s "
                  f"({documents} documents), rerun {reruns[-1]:.2f}s (written={rerun.written})", flush=True)

    full_s = statistics.median(fulls)
    baseline_s = statistics.median(baselines)
    print(f"source files: {len(files)}, documents: {documents}")
    print(f"baseline_read_s={baseline_s:.3f}")
    print(f"full_s={full_s:.3f}")
    print(f"files_per_s={len(files) / full_s:.1f}")
    print(f"full_over_baseline={full_s / baseline_s:.1f}")
    print(f"rerun_s={statistics.median(reruns):.3f}")
    print(f"rerun_written={max(written)}")


if __name__ == "__main__":
    main()
