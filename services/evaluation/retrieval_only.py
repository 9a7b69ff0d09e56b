"""Retrieval alone: the passages an index returns for each golden question, pasted as the answer. Its key-fact
recall is the retrieval reach at k; it needs the index and the embedder but no chat model, so retrieval settings
(k, hybrid, fusion weights) can be compared in seconds per question instead of a minute. A follow-up (an item with
`earlier` questions) is searched as the service searches it when no model rewrites it: the questions joined."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from jenkins_assistant.evaluation.golden import GoldenItem
from jenkins_assistant.evaluation.runner import ItemResult
from jenkins_assistant.evaluation.scoring import score_answer

if TYPE_CHECKING:
    from jenkins_assistant.inference.config import InferenceSettings


def run_retrieval_only(items: list[GoldenItem], index_dir: Path, k: int, hybrid: bool,
                       settings: InferenceSettings | None = None) -> list[ItemResult]:
    """`k` passages per question; 0: as many as the service gives (INFERENCE_RETRIEVAL_K). `settings`: the
    service's by default (INFERENCE_* variables included), so that the passages scored are the ones it would give."""
    from jenkins_assistant.common.pasted_output import search_text
    from jenkins_assistant.inference.condense import concat_question
    from jenkins_assistant.inference.config import InferenceSettings
    from jenkins_assistant.inference.core import sources_from_passages
    from jenkins_assistant.inference.prompts import Exchange
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex

    settings = settings or InferenceSettings(index_dir=str(index_dir))
    k = k or settings.retrieval_k
    index = RetrievalIndex.from_settings(settings, load_embedder(settings), hybrid, index_dir)
    results = []
    for item in items:
        joined = concat_question(item.question, [Exchange(question, "") for question in item.earlier])
        hits, elapsed_ms = index.timed_search(search_text(joined), k)
        # The same numbered sources the service sends for these hits.
        passages = [hit.passage for hit in hits]
        sources = sources_from_passages(hits, passages, settings.snippet_chars)
        answer = "\n\n".join(passage.text for passage in passages)
        results.append(ItemResult(
            id=item.id, category=item.category, split=item.split, answerable=item.answerable,
            question=item.question, answer=answer, quoted="",
            sources=[asdict(source) for source in sources],
            prompt_tokens=0, completion_tokens=0, ttft_s=elapsed_ms / 1000, tokens_per_s=0.0, finish_reason="",
            warnings=[], score=score_answer(item, answer, [p.text for p in passages], len(sources)),
        ))
    return results
