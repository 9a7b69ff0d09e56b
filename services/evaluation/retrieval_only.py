"""Retrieval alone: the passages an index returns for each golden question, pasted as the answer. Its key-fact
recall is the retrieval reach at k; it needs the index and the embedder but no chat model, so retrieval settings
(k, hybrid, fusion weights) can be compared in seconds per question instead of a minute."""

from __future__ import annotations

from pathlib import Path

from jenkins_assistant.evaluation.golden import GoldenItem
from jenkins_assistant.evaluation.runner import ItemResult
from jenkins_assistant.evaluation.scoring import score_answer


def run_retrieval_only(items: list[GoldenItem], index_dir: Path, k: int, hybrid: bool) -> list[ItemResult]:
    from jenkins_assistant.inference.config import RetrievalSettings
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex

    settings = RetrievalSettings(index_dir=str(index_dir))
    index = RetrievalIndex(index_dir, load_embedder(settings), settings.faiss_threads, hybrid,
                           settings.keyword_weight, settings.rrf_k)
    results = []
    for item in items:
        hits, elapsed_ms = index.timed_search(item.question, k)
        passages = [hit.chunk.text for hit in hits]
        answer = "\n\n".join(passages)
        results.append(ItemResult(
            id=item.id, category=item.category, split=item.split, answerable=item.answerable,
            question=item.question, answer=answer,
            sources=[{"citation": n, "url": h.chunk.url, "title": h.chunk.title, "section": h.chunk.section,
                      "score": round(h.score, 4), "passage": h.chunk.text} for n, h in enumerate(hits, 1)],
            prompt_tokens=0, completion_tokens=0, ttft_s=elapsed_ms / 1000, tokens_per_s=0.0, finish_reason="",
            warnings=[], score=score_answer(item, answer, passages, len(hits)),
        ))
    return results
