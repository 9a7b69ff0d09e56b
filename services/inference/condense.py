"""Turning a follow-up ("and how do I do that on Windows?") into a standalone question for retrieval.

The LLM route asks the chat model to rewrite the question. A small model sometimes answers instead
of rewriting, or echoes the prompt, so its output is accepted only when it looks like a rewrite (one
short line that shares words with the conversation); otherwise the recent questions are concatenated,
which retrieval handles well enough.
"""

from __future__ import annotations

import logging
import re

from jenkins_assistant.inference.engine import GenerationEngine, GenerationSlot
from jenkins_assistant.inference.model import SamplingParams
from jenkins_assistant.inference.prompts import Exchange, condense_messages
from jenkins_assistant.inference.trimming import trim_answer

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.'-]{2,}")
_LABEL = re.compile(r"^\s*(?:standalone question|question|rewritten question)\s*:\s*", re.IGNORECASE)
MAX_CONDENSED_CHARS = 300
# Words that carry no topic: sharing them proves nothing about a rewrite.
_FUNCTION_WORDS = frozenset(
    ["and", "the", "how", "you", "for", "are", "but", "not", "any", "all", "can", "its", "was", "has", "had", "did", "get", "got", "why", "who", "use", "one", "what", "which", "when", "where", "does", "doing", "done", "have", "with", "about", "that", "this", "those", "these", "there", "their", "them", "they", "then", "than", "from", "into", "onto", "your", "yours", "also", "just", "like", "some", "more", "most", "much", "many", "make", "made", "want", "need", "should", "could", "would", "will", "shall", "can't", "don't", "how's", "what's", "it's", "jenkins"]
)
CONDENSE_MAX_TOKENS = 64


def concat_question(question: str, history: list[Exchange], previous: int = 2) -> str:
    """The last `previous` questions followed by the new one."""
    earlier = [exchange.question.strip() for exchange in history[-previous:]]
    return " ".join([*earlier, question.strip()])


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)} - _FUNCTION_WORDS


def acceptable_rewrite(candidate: str, question: str, history: list[Exchange]) -> bool:
    """A rewrite is one short question that keeps the follow-up's own words and brings in words from the
    conversation that the follow-up lacks (small models often answer instead, or drop the follow-up)."""
    if not candidate or len(candidate) > MAX_CONDENSED_CHARS or "\n" in candidate or not candidate.endswith("?"):
        return False
    if candidate.strip().lower() == question.strip().lower():
        return False
    words = _content_words(candidate)
    asked = _content_words(question)
    earlier = {w for e in history for w in _content_words(f"{e.question} {e.answer}")} - asked
    kept = len(words & asked) * 2 >= len(asked)
    return kept and bool(words & earlier)


def condense_with_model(model: GenerationEngine, slot: GenerationSlot, question: str,
                        history: list[Exchange]) -> tuple[str, bool]:
    """The standalone question and whether it is the model's rewrite (False: the rewrite was rejected and the
    recent questions are joined). Runs in a worker thread on a slot the caller holds."""
    prompt = model.prepare(condense_messages(question, history))
    params = SamplingParams(max_tokens=CONDENSE_MAX_TOKENS, temperature=0.0, top_p=1.0, repeat_penalty=1.0,
                            stop=["\n", *prompt.stop])
    result = slot.complete(prompt, params)
    candidate = _LABEL.sub("", trim_answer(result.text)).strip().strip('"').strip()
    if acceptable_rewrite(candidate, question, history):
        return candidate, True
    # Why a follow-up was searched as the joined questions (the metric counts how often). Debug only: it holds
    # the user's words, which the service does not log otherwise.
    log.debug("condense: rewrite %r rejected for %r; joining the recent questions", candidate[:200], question)
    return concat_question(question, history), False
