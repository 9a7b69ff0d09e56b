"""Q&A pairs from a CSV -> train/validation datasets in the form trl's SFTTrainer trains on answer tokens only.

Two renderings, both as prompt/completion pairs so that SFTTrainer's completion-only loss masks the prompt:
- `model`: conversational messages rendered by the tokenizer's own chat template (SmolLM2, Llama-3, ...);
- `llama-2`: Meta's `<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{question} [/INST] {answer} </s>` as plain text.
  The tokenizer adds `<s>` itself (SFTTrainer tokenizes plain text with special tokens) and SFTTrainer appends
  `</s>`, so neither is written into the text: a prompt that already holds `<s>` would get a second BOS.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from jenkins_assistant.common.grounded_prompt import (
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_NO_PASSAGES,
    Passage,
    grounded_question,
)

log = logging.getLogger(__name__)

LLAMA2_PROMPT = "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{question} [/INST]"


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    # Retrieved passages the answer is grounded on (the served prompt layout); empty = a bare question.
    passages: tuple[Passage, ...] = ()

    @property
    def user_turn(self) -> str:
        return grounded_question(self.question, list(self.passages))

    def system(self, override: str) -> str:
        return override or (SYSTEM_PROMPT if self.passages else SYSTEM_PROMPT_NO_PASSAGES)


@dataclass(frozen=True)
class QADataset:
    train: list[QAPair]
    validation: list[QAPair]
    sha256: str  # of the cleaned pairs, in file order: identifies what the model was trained on
    source: str
    total_pairs: int


def _pick_column(columns: list[str], wanted: str | None, default: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"column {wanted!r} not in CSV columns {columns}")
        return wanted
    for column in columns:
        if column.strip().lower() == default:
            return column
    raise ValueError(f"no {default!r} column in CSV columns {columns}; pass --{default}_column")


def read_pairs(path: str | Path, question_column: str | None = None, answer_column: str | None = None) -> list[QAPair]:
    """Read, strip, drop empty and duplicate pairs (keeping file order)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = list(frame.columns)
    q_col = _pick_column(columns, question_column, "question")
    a_col = _pick_column(columns, answer_column, "answer")
    # An optional `passages` column (a JSON list of {title, url, text, section}) trains on the served layout.
    p_col = next((c for c in columns if c.strip().lower() == "passages"), None)
    frame = frame[[q_col, a_col, *([p_col] if p_col else [])]].rename(
        columns={q_col: "question", a_col: "answer", **({p_col: "passages"} if p_col else {})})
    if p_col is None:
        frame["passages"] = ""
    frame["question"] = frame["question"].str.strip()
    frame["answer"] = frame["answer"].str.strip()
    frame = frame[(frame["question"] != "") & (frame["answer"] != "")].drop_duplicates()
    if frame.empty:
        raise ValueError(f"{path} has no non-empty question/answer pairs")
    return [QAPair(q, a, tuple(Passage(**p) for p in json.loads(ps)) if ps.strip() else ())
            for q, a, ps in frame[["question", "answer", "passages"]].itertuples(index=False)]


def pairs_sha256(pairs: list[QAPair]) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        # Passages are part of what the model learns from; pairs without them hash as before.
        fields = [pair.question, pair.answer, *([[asdict(p) for p in pair.passages]] if pair.passages else [])]
        digest.update(json.dumps(fields, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def load_dataset_splits(
    path: str | Path,
    *,
    validation_fraction: float,
    seed: int,
    question_column: str | None = None,
    answer_column: str | None = None,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    validation_csv: str | Path | None = None,
) -> QADataset:
    pairs = read_pairs(path, question_column, answer_column)
    if validation_csv is not None:
        # A split made upstream (the scraper writes qa_train.csv / qa_validation.csv): keep it as it is.
        validation = read_pairs(validation_csv, question_column, answer_column)
        held_out = set(validation)
        train = [pair for pair in pairs if pair not in held_out]
        pairs = pairs + validation
    else:
        if not 0 < validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        if len(pairs) < 2:
            raise ValueError(f"{path}: need at least 2 pairs for a train/validation split, got {len(pairs)}")
        order = pd.Series(range(len(pairs))).sample(frac=1.0, random_state=seed).tolist()
        n_val = min(max(1, round(len(pairs) * validation_fraction)), len(pairs) - 1)
        validation = [pairs[i] for i in order[:n_val]]
        train = [pairs[i] for i in order[n_val:]]
    if not train:
        raise ValueError(f"{path}: no training pairs left after holding out the validation split")
    # Caps apply after the split, so a capped run is still evaluated on pairs it never saw.
    if max_train_examples is not None:
        train = train[:max_train_examples]
    if max_eval_examples is not None:
        validation = validation[:max_eval_examples]
    log.info("dataset %s: %d pairs -> %d train, %d validation", path, len(pairs), len(train), len(validation))
    return QADataset(train, validation, pairs_sha256(pairs), str(path), len(pairs))


def render_llama2_prompt(question: str, system_prompt: str) -> str:
    return LLAMA2_PROMPT.format(system=system_prompt, question=question)


def to_sft_records(pairs: list[QAPair], chat_template: str, system_prompt: str) -> list[dict]:
    """prompt/completion records; SFTTrainer computes the loss on the completion (answer) tokens only."""
    if chat_template == "llama-2":
        return [{"prompt": render_llama2_prompt(p.user_turn, p.system(system_prompt)), "completion": " " + p.answer + " "}
                for p in pairs]
    if chat_template == "model":
        return [{"prompt": [{"role": "system", "content": p.system(system_prompt)}, {"role": "user", "content": p.user_turn}],
                 "completion": [{"role": "assistant", "content": p.answer}]} for p in pairs]
    raise ValueError(f"unknown chat_template {chat_template!r}")
