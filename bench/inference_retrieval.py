"""Retrieval latency (embed the question + search) over the full docs + blog + plugin-docs index.

Queries are the labelled questions of the retrieval-quality test, run one at a time as the service does
(one query per chat, FAISS and the embedder on the configured thread counts). Served configuration:
sentence-transformers embedding + exact FAISS search (dense; INFERENCE_HYBRID=false). Compared in the same
run: the hybrid variant (+ BM25 fusion) and, when the GGUF conversion of the embedding model is given, the
same queries embedded by llama.cpp instead of sentence-transformers (the torch-free route).

    jenkins-assistant-index build --shared-data ../shared/data --out var/index     # once
    python bench/inference_retrieval.py [--index var/index] [--repeat 5] [--gguf .cache/embedding/all-MiniLM-L6-v2.f16.gguf]

Ends with `retrieval_p95_ms=` (the served configuration; target <= 30).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_common import percentile

from jenkins_assistant.inference.config import RetrievalSettings
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex
from tests.inference.retrieval_questions import QUESTIONS


def latencies_ms(index: RetrievalIndex, repeat: int, k: int) -> list[float]:
    for question, _pages in QUESTIONS[:3]:
        index.search(question, k)  # warm-up
    samples = []
    for _ in range(repeat):
        for question, _pages in QUESTIONS:
            started = time.perf_counter()
            index.search(question, k)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float]) -> float:
    p95 = percentile(samples, 95)
    print(f"{name}: {len(samples)} queries, p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms", flush=True)
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=REPO_ROOT / "var" / "index")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="embedding and FAISS threads (the service default)")
    parser.add_argument("--gguf", type=Path, default=REPO_ROOT / ".cache" / "embedding" / "all-MiniLM-L6-v2.f16.gguf")
    args = parser.parse_args()

    settings = RetrievalSettings(embedding_threads=args.threads, faiss_threads=args.threads)
    embedder = load_embedder(settings)
    dense = RetrievalIndex(args.index, embedder, args.threads, hybrid=False)
    print(f"index: {len(dense.chunks)} chunks of {dense.manifest['documents']} documents")
    served = report("sentence-transformers + FAISS (served)", latencies_ms(dense, args.repeat, args.k))
    hybrid = RetrievalIndex(args.index, embedder, args.threads, True, settings.keyword_weight, settings.rrf_k)
    hybrid_p95 = report("sentence-transformers + FAISS + BM25 (hybrid)", latencies_ms(hybrid, args.repeat, args.k))
    gguf_p95 = None
    if args.gguf.is_file():
        gguf_settings = RetrievalSettings(embedding_backend="llama-cpp", embedding_model=str(args.gguf),
                                          embedding_threads=args.threads)
        gguf_index = RetrievalIndex(args.index, load_embedder(gguf_settings), args.threads, hybrid=False)
        gguf_p95 = report("llama.cpp GGUF + FAISS", latencies_ms(gguf_index, args.repeat, args.k))
    print(f"retrieval_p95_ms_hybrid={hybrid_p95:.2f}")
    if gguf_p95 is not None:
        print(f"retrieval_p95_ms_llama_cpp={gguf_p95:.2f}")
    print(f"retrieval_p95_ms={served:.2f}")


if __name__ == "__main__":
    main()
