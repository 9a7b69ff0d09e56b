"""Index build time (`make index`'s work) and retrieval quality, today's float32 embedder vs the new default.

Builds the index of a fixed sample of the shared data twice in the same run, with the real builder into temporary
directories: the baseline is the configuration `make index` had before (sentence-transformers all-MiniLM-L6-v2 in
float32, 2 threads, batch 32, passages sorted by character count), then the defaults (INFERENCE_EMBEDDING_DTYPE=auto:
bfloat16 on a CPU with AMX-BF16 or AVX512-BF16; passages sorted by token count). Each time covers loading the embedder and build_index (chunking, embedding,
FAISS, BM25); the documents are read once beforehand. The sample is the tests' (sample_shared_data_documents: every
page the labelled questions accept plus seeded distractors per source folder, about 2,000 chunks), so recall@5 of
the labelled questions (tests/inference/retrieval_questions.py, served hybrid search) is measured on both indexes.

    python bench/index_build.py [--shared-data ../shared/data] [--threads 2] [--rounds 1]

Prints `index_build_s_baseline=`, `index_build_s=`, `index_build_ratio=` (new / baseline; target <= 0.33),
`recall_at_5_baseline=` and `recall_at_5=` (target: within 0.01 of the baseline), `embedding_dtype=`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from jenkins_assistant.inference.config import RetrievalSettings
from jenkins_assistant.inference.index_cli import sample_shared_data_documents
from jenkins_assistant.inference.retrieval.builder import build_index
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex
from tests.inference.retrieval_questions import QUESTIONS, recall_at_5


class CharacterSorted:
    """The embedder without token_counts: the builder then sorts passages by characters, as it did before."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.name, self.backend, self.dim = embedder.name, embedder.backend, embedder.dim
        self.dtype = embedder.dtype

    def embed(self, texts: list[str]):
        return self._embedder.embed(texts)


def build(documents: list, settings: RetrievalSettings, out: Path, baseline: bool) -> tuple[float, RetrievalIndex, str]:
    started = time.perf_counter()
    embedder = load_embedder(settings)
    if baseline:
        embedder = CharacterSorted(embedder)
    report = build_index(documents, out, settings, embedder)
    seconds = time.perf_counter() - started
    dtype = getattr(embedder, "dtype", "?")
    print(f"{dtype:>8}: {report.chunks} chunks in {seconds:.1f} s ({report.chunks / seconds:.1f} chunks/s)",
          flush=True)
    index = RetrievalIndex.from_settings(settings, embedder, index_dir=out)
    return seconds, index, dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared-data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2, help="embedding threads (make index passes 2)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate baseline/new this many times; the minimum "
                                                               "time of each counts")
    args = parser.parse_args()

    urls = {url for _question, pages in QUESTIONS for url in pages}
    documents = sample_shared_data_documents(args.shared_data, urls)
    print(f"sample: {len(documents)} documents", flush=True)
    common = {"embedding_threads": args.threads, "faiss_threads": args.threads, "hybrid": True}
    baseline_settings = RetrievalSettings(embedding_dtype="float32", embedding_batch=32, **common)
    new_settings = RetrievalSettings(**common)  # the defaults, as make index now runs
    baseline_times, new_times = [], []
    with tempfile.TemporaryDirectory(prefix="index-build-bench-") as tmp:
        for round_ in range(args.rounds):
            # a fresh directory each time: a rebuild in place would reuse the vectors
            seconds, baseline_index, _ = build(documents, baseline_settings, Path(tmp) / f"baseline-{round_}", True)
            baseline_times.append(seconds)
            seconds, new_index, dtype = build(documents, new_settings, Path(tmp) / f"new-{round_}", False)
            new_times.append(seconds)
        recall_baseline, _ = recall_at_5(baseline_index)
        recall_new, _ = recall_at_5(new_index)
    baseline_s, new_s = min(baseline_times), min(new_times)
    print(f"embedding_dtype={dtype}")
    print(f"recall_at_5_baseline={recall_baseline:.3f}")
    print(f"recall_at_5={recall_new:.3f}")
    print(f"index_build_s_baseline={baseline_s:.1f}")
    print(f"index_build_s={new_s:.1f}")
    print(f"index_build_ratio={new_s / baseline_s:.3f}")


if __name__ == "__main__":
    main()
