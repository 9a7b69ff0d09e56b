"""Q&A pairs from a CSV (and the dataset commands' sft.jsonl / qa.csv / dpo.jsonl) -> train/validation/test datasets in the form trl's SFTTrainer trains on answer tokens only.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from jenkins_assistant.common.grounded_prompt import (
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_NO_PASSAGES,
    Passage,
    grounded_question,
)
from jenkins_assistant.datasets.feedback import question_key

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
class PreferencePair:
    question: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class QADataset:
    train: list[QAPair]
    validation: list[QAPair]
    sha256: str  # of the cleaned pairs, in file order: identifies what the model was trained on
    source: str
    total_pairs: int
    # Pairs no training choice sees (neither checkpoint selection nor early stopping): the honest held-out figure.
    test: list[QAPair] = field(default_factory=list)
    # One record per input file for the manifest: path, kind, sha256 of the file, rows read.
    files: list[dict] = field(default_factory=list)


def file_sha256(path: str | Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_record(path: str | Path, kind: str, rows: int, **extra) -> dict:
    return {"path": str(path), "kind": kind, "sha256": file_sha256(path), "rows": rows, **extra}


def is_test_question(question: str, seed: int, fraction: float) -> bool:
    """A question belongs to the test split by a seeded hash of its normalised text, not by its position: the same
    question is on the same side in every file and every run (a DPO pair or an exported correction of a test question
    cannot leak into training), and the split of old rows does not move when new files are added."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{question_key(question)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _jsonl_rows(path: str | Path) -> list[dict]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
    return rows


def _last(messages, role: str) -> str:
    if isinstance(messages, str):
        return messages.strip()
    if not isinstance(messages, list):
        return ""
    found = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == role]
    return found[-1].strip() if found else ""


def read_sft_jsonl(path: str | Path) -> list[QAPair]:
    """trl's conversational SFT rows (`dataset export`'s sft.jsonl: {"messages": [system, user, assistant]}) or plain
    question/answer rows. The row's system message is not kept: every example is rendered with the served system
    prompt (or --system_prompt), the one the export wrote too, so the model trains on what it is served."""
    pairs = []
    for number, row in enumerate(_jsonl_rows(path), 1):
        if "messages" in row:
            messages = row["messages"]
            users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            if len(users) != 1 or not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
                raise ValueError(f"{path}:{number}: expected one user turn then the assistant's answer")
            question, answer = _last(messages, "user"), _last(messages, "assistant")
        else:
            question, answer = str(row.get("question", "")).strip(), str(row.get("answer", "")).strip()
        if question and answer:
            pairs.append(QAPair(question, answer))
    if not pairs:
        raise ValueError(f"{path} has no SFT rows (messages, or question/answer)")
    return list(dict.fromkeys(pairs))


def read_sft_file(path: str | Path, question_column: str | None = None,
                  answer_column: str | None = None) -> list[QAPair]:
    """An extra SFT file by its suffix: .jsonl (sft.jsonl) or .csv (qa.csv of `dataset generate`)."""
    if str(path).endswith(".jsonl"):
        return read_sft_jsonl(path)
    return read_pairs(path, question_column, answer_column)


def read_dpo_jsonl(path: str | Path) -> list[PreferencePair]:
    """trl's preference rows (`dataset export`'s dpo.jsonl): conversational or plain prompt/chosen/rejected."""
    pairs = []
    for number, row in enumerate(_jsonl_rows(path), 1):
        if not all(k in row for k in ("prompt", "chosen", "rejected")):
            raise ValueError(f"{path}:{number}: a DPO row needs prompt, chosen and rejected")
        pair = PreferencePair(_last(row["prompt"], "user"), _last(row["chosen"], "assistant"),
                              _last(row["rejected"], "assistant"))
        if pair.question and pair.chosen and pair.rejected and pair.chosen != pair.rejected:
            pairs.append(pair)
    if not pairs:
        raise ValueError(f"{path} has no usable preference pairs")
    return list(dict.fromkeys(pairs))


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
    extra_files: list[str | Path] | None = None,
    test_fraction: float = 0.0,
    max_test_examples: int | None = None,
) -> QADataset:
    pairs = read_pairs(path, question_column, answer_column)
    files = [file_record(path, "sft", len(pairs))]
    for extra in extra_files or []:
        more = read_sft_file(extra, question_column, answer_column)
        files.append(file_record(extra, "sft", len(more)))
        pairs = pairs + more
    pairs = list(dict.fromkeys(pairs))  # a pair in two files counts once
    all_pairs = list(pairs)
    # The test split comes out first, so that neither the validation split (checkpoint choice, early stopping) nor
    # training ever holds one of its questions.
    test = [pair for pair in pairs if is_test_question(pair.question, seed, test_fraction)]
    pairs = [pair for pair in pairs if not is_test_question(pair.question, seed, test_fraction)]
    if validation_csv is not None:
        # A split made upstream (the scraper writes qa_train.csv / qa_validation.csv): keep it as it is.
        validation = read_pairs(validation_csv, question_column, answer_column)
        files.append(file_record(validation_csv, "validation", len(validation)))
        all_pairs = all_pairs + validation
        test += [pair for pair in validation if is_test_question(pair.question, seed, test_fraction)]
        validation = [pair for pair in validation if not is_test_question(pair.question, seed, test_fraction)]
        held_out = set(validation)
        train = [pair for pair in pairs if pair not in held_out]
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
    if max_test_examples is not None:
        test = test[:max_test_examples]
    log.info("dataset %s (+%d files): %d pairs -> %d train, %d validation, %d test", path, len(extra_files or []),
             len(all_pairs), len(train), len(validation), len(test))
    return QADataset(train, validation, pairs_sha256(all_pairs), str(path), len(all_pairs), test, files)


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


def to_dpo_records(pairs: list[PreferencePair], chat_template: str, system_prompt: str) -> list[dict]:
    """prompt/chosen/rejected records for trl's DPOTrainer, rendered like the SFT examples (same system prompt and
    template), so DPO moves the model on the prompt it is served with."""
    if chat_template == "llama-2":
        system = QAPair("", "").system(system_prompt)
        return [{"prompt": render_llama2_prompt(p.question, system), "chosen": " " + p.chosen + " ",
                 "rejected": " " + p.rejected + " "} for p in pairs]
    if chat_template == "model":
        return [{"prompt": [{"role": "system", "content": QAPair(p.question, "").system(system_prompt)},
                            {"role": "user", "content": QAPair(p.question, "").user_turn}],
                 "chosen": [{"role": "assistant", "content": p.chosen}],
                 "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]
    raise ValueError(f"unknown chat_template {chat_template!r}")
