"""Rated answers -> trl training rows (no gRPC, no files here: `cli.py` fetches and writes).

- SFT rows, trl SFTTrainer's conversational "messages" format: a user's correction (the answer it would have wanted)
  and answers rated helpful. One row per question: a correction beats a helpful model answer (a person wrote it),
  then the latest rating wins.
- Preference pairs, trl DPOTrainer's conversational prompt/chosen/rejected format: the rejected side is an answer
  rated not helpful; the chosen side is its correction, else the correction or helpful answer of the same question.

The question is the standalone one (what retrieval used: a follow-up condensed with its history), so a row stands
alone. Questions already in the training set are not exported again as SFT rows: the model already learns an answer
to them, and a second one would only weigh the question twice (a preference pair on such a question still teaches
something new, so pairs are deduplicated against earlier pairs only). Owners and session ids are never part of a
row; neither is anything the memory service did not give (it lists rated answers without them).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from jenkins_assistant.common.grounded_prompt import SYSTEM_PROMPT_NO_PASSAGES
from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord

# An answer cut short by the client is not something to learn from, in either direction.
UNUSABLE_FINISH = "cancelled"


def question_key(text: str) -> str:
    """What makes two questions the same for deduplication: case, accents, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def answer_key(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Rated:
    answer: AnswerRecord
    feedback: AnswerFeedback

    @property
    def question(self) -> str:
        return (self.answer.standalone_question or self.answer.question).strip()

    @property
    def correction(self) -> str:
        return self.feedback.corrected_answer.strip()

    @property
    def text(self) -> str:
        return self.answer.answer_text.strip()


@dataclass
class Export:
    sft: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    # Why rated answers gave no row, by reason (e.g. "sft_in_training_set": 3).
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def _provenance(item: Rated, origin: str) -> dict:
    # Where a row came from, for whoever curates the set; trl ignores columns it does not use.
    return {"origin": origin, "answer_id": item.answer.answer_id, "model": item.answer.model,
            "model_quant": item.answer.model_quant, "corpus_sha256": item.answer.corpus_sha256,
            "source_urls": list(item.answer.source_urls), "rated_at": item.feedback.rated_at}


def _prompt(question: str, system_prompt: str) -> list[dict]:
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]


def build_export(rated: Iterable[Rated], known_questions: set[str] = frozenset(),
                 known_pairs: set[tuple[str, str, str]] = frozenset(),
                 system_prompt: str = SYSTEM_PROMPT_NO_PASSAGES) -> Export:
    """SFT rows and preference pairs from rated answers. `known_questions` are question_key()s of the training set;
    `known_pairs` are (question_key, answer_key(chosen), answer_key(rejected)) of pairs exported before."""
    export = Export()
    usable: list[Rated] = []
    for item in rated:
        if item.answer.kind != "chat":
            # A build-log explanation's "question" is its retrieval query of masked facts, and its prompt is another
            # layout: not a chat example.
            export.drop("not_a_chat_answer")
        elif not item.question:
            export.drop("no_question")  # e.g. an explanation recorded without its question
        elif item.answer.finish_reason == UNUSABLE_FINISH and not item.correction:
            export.drop("cancelled")
        elif not item.text and not item.correction:
            export.drop("no_answer")
        else:
            usable.append(item)

    # The best human-approved answer per question: a correction first, then the latest rating.
    best: dict[str, tuple[str, Rated, str]] = {}
    for item in usable:
        if item.correction:
            candidate = (item.correction, item, "correction")
        elif item.feedback.rating == "helpful" and item.answer.finish_reason != UNUSABLE_FINISH:
            candidate = (item.text, item, "helpful")
        else:
            continue
        key = question_key(item.question)
        held = best.get(key)
        rank = (candidate[2] == "correction", item.feedback.rated_at)
        if held is None or rank > (held[2] == "correction", held[1].feedback.rated_at):
            if held is not None:
                export.drop("sft_superseded")
            best[key] = candidate
        else:
            export.drop("sft_superseded")

    for key, (answer, item, origin) in sorted(best.items(), key=lambda kv: kv[1][1].answer.answer_id):
        if key in known_questions:
            export.drop("sft_in_training_set")
            continue
        export.sft.append({"messages": [*_prompt(item.question, system_prompt),
                                        {"role": "assistant", "content": answer}], **_provenance(item, origin)})

    seen = set(known_pairs)
    for item in sorted(usable, key=lambda i: i.answer.answer_id):
        if item.feedback.rating != "not_helpful" or not item.text or item.answer.finish_reason == UNUSABLE_FINISH:
            continue
        key = question_key(item.question)
        chosen = item.correction or (best[key][0] if key in best else "")
        if not chosen:
            export.drop("pair_without_chosen")
            continue
        identity = (key, answer_key(chosen), answer_key(item.text))
        if identity[1] == identity[2]:
            export.drop("pair_chosen_equals_rejected")
            continue
        if identity in seen:
            export.drop("pair_duplicate")
            continue
        seen.add(identity)
        export.pairs.append({"prompt": _prompt(item.question, system_prompt),
                             "chosen": [{"role": "assistant", "content": chosen}],
                             "rejected": [{"role": "assistant", "content": item.text}],
                             **_provenance(item, "correction" if item.correction else "helpful_answer")})
    return export


def pair_identity(row: dict) -> tuple[str, str, str] | None:
    """The identity of an earlier exported pair (conversational or plain prompt/chosen/rejected); None otherwise."""
    def text(value) -> str:
        if isinstance(value, list):
            return next((m.get("content", "") for m in reversed(value) if isinstance(m, dict)
                         and m.get("role") in ("user", "assistant")), "")
        return value if isinstance(value, str) else ""

    if not all(k in row for k in ("prompt", "chosen", "rejected")):
        return None
    return question_key(text(row["prompt"])), answer_key(text(row["chosen"])), answer_key(text(row["rejected"]))


def row_question(row: dict) -> str:
    """The question of a training row: a CSV/JSONL `question` column, or the last user turn of `messages`/`prompt`."""
    if isinstance(row.get("question"), str):
        return row["question"]
    for name in ("messages", "prompt"):
        value = row.get(name)
        if isinstance(value, list):
            users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
            if users:
                return users[-1]
        elif isinstance(value, str):
            return value
    return ""
