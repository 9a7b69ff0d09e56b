"""Turning a follow-up ("and how do I do that on Windows?") into a standalone question for retrieval.

The LLM route asks the chat model to rewrite the question. A small model sometimes answers instead
of rewriting, or echoes the prompt, so its output is accepted only when it looks like a rewrite (one
short line that shares words with the conversation); otherwise the recent questions are concatenated,
which retrieval handles well enough.
"""

from __future__ import annotations

import re

from jenkins_assistant.inference.model import ChatModel, ModelSlot, SamplingParams
from jenkins_assistant.inference.prompts import Exchange, condense_messages
from jenkins_assistant.inference.trimming import trim_answer

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{3,}")
_LABEL = re.compile(r"^\s*(?:standalone question|question|rewritten question)\s*:\s*", re.IGNORECASE)
MAX_CONDENSED_CHARS = 300
CONDENSE_MAX_TOKENS = 64


def concat_question(question: str, history: list[Exchange], previous: int = 2) -> str:
    """The last `previous` questions followed by the new one."""
    earlier = [exchange.question.strip() for exchange in history[-previous:]]
    return " ".join([*earlier, question.strip()])


def acceptable_rewrite(candidate: str, question: str, history: list[Exchange]) -> bool:
    if not candidate or len(candidate) > MAX_CONDENSED_CHARS or "\n" in candidate:
        return False
    if candidate.strip().lower() == question.strip().lower():
        return False  # no rewrite happened: the history would be lost to retrieval
    # A rewrite must bring something in from the conversation that the follow-up itself lacks.
    words = {w.lower() for w in _WORD.findall(candidate)}
    asked = {w.lower() for w in _WORD.findall(question)}
    earlier = {w.lower() for e in history for w in _WORD.findall(e.question)} - asked
    return bool(words & earlier)


def condense_with_model(model: ChatModel, slot: ModelSlot, question: str, history: list[Exchange]) -> str:
    """Runs in a worker thread on a slot the caller holds."""
    prompt = model.format(condense_messages(question, history))
    params = SamplingParams(max_tokens=CONDENSE_MAX_TOKENS, temperature=0.0, top_p=1.0, repeat_penalty=1.0,
                            stop=["\n", *prompt.stop])
    result = slot.complete(model.tokenize(prompt.text), params)
    candidate = _LABEL.sub("", trim_answer(result.text)).strip().strip('"').strip()
    if acceptable_rewrite(candidate, question, history):
        return candidate
    return concat_question(question, history)
