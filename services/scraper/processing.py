"""Q&A cleaning: junk and duplicates out, every drop counted by reason, then a stable split.

Order of the checks (a row is counted once, under the first reason that applies):
  empty -> too_long -> non_english -> contains_code (text-only mode) -> duplicate_exact -> duplicate_near
Rows are considered best first (higher score, then id), so the copy kept of a duplicate is the
best-scored one. Near duplicates are found with MinHash LSH (datasketch) over character
5-gram shingles of the question, then confirmed with the exact Jaccard similarity of the shingle sets.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from datasketch import MinHash, MinHashLSH

from jenkins_assistant.scraper.html_clean import has_code, tidy_markdown
from jenkins_assistant.scraper.qa import QARow

DROP_REASONS = ("empty", "too_long", "non_english", "contains_code", "duplicate_exact", "duplicate_near")
NUM_PERM = 128
NEAR_DUPLICATE_MIN_WORDS = 20
FENCED = re.compile(r"```.*?```", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
URL = re.compile(r"https?://\S+")
WORD = re.compile(r"[a-z0-9]+")
PUNCTUATION = str.maketrans({char: " " for char in string.punctuation})


@dataclass
class CleanResult:
    kept: list[QARow]
    dropped: Counter = field(default_factory=Counter)
    dropped_by_source: dict[str, Counter] = field(default_factory=dict)

    def drop(self, row: QARow, reason: str) -> None:
        self.dropped[reason] += 1
        self.dropped_by_source.setdefault(row.source, Counter())[reason] += 1


@lru_cache(maxsize=1)
def _language_identifier():
    # py3langid ships its model inside the package: nothing is downloaded at run time.
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def prose(text: str) -> str:
    """The natural-language part of a markdown text: code, link targets and URLs removed."""
    text = FENCED.sub(" ", text)
    text = INLINE_CODE.sub(" ", text)
    text = LINK_TARGET.sub("]", text)
    return URL.sub(" ", text)


def is_english(text: str, min_confidence: float = 0.9) -> bool:
    """False only when the prose is confidently another language (short or code-only text passes)."""
    words = prose(text)
    if len(WORD.findall(words.lower())) < 4:
        return True
    language, confidence = _language_identifier().classify(words)
    return language == "en" or confidence < min_confidence


def normalise_question(text: str) -> str:
    return " ".join(prose(text).lower().translate(PUNCTUATION).split())


def shingles(text: str, size: int = 5) -> set[str]:
    """Character n-grams of the normalised question: robust to a changed word in short questions."""
    normal = normalise_question(text)
    if len(normal) < size:
        return {normal} if normal else set()
    return {normal[i : i + size] for i in range(len(normal) - size + 1)}


def jaccard(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def clean_qa_rows(
    rows: Iterable[QARow],
    *,
    max_chars: int,
    min_answer_chars: int,
    near_duplicate_threshold: float,
    text_only: bool,
) -> CleanResult:
    result = CleanResult(kept=[])
    seen_exact: set[str] = set()
    kept_ids: set[str] = set()
    # The LSH only proposes candidates; a lower bar than the real one keeps it from missing pairs
    # just above the threshold, and the exact Jaccard check below makes the decision.
    lsh = MinHashLSH(threshold=max(0.05, near_duplicate_threshold - 0.2), num_perm=NUM_PERM)
    kept_shingles: dict[str, set[str]] = {}
    ordered = sorted(rows, key=lambda row: (-int(row.score), row.id))
    for row in ordered:
        row.question = tidy_markdown(row.question)
        row.answer = tidy_markdown(row.answer)
        if not row.question.strip() or len(row.answer.strip()) < max(1, min_answer_chars):
            result.drop(row, "empty")
            continue
        if len(row.question) + len(row.answer) > max_chars:
            result.drop(row, "too_long")
            continue
        if not is_english(row.question + "\n\n" + row.answer):
            result.drop(row, "non_english")
            continue
        if text_only and (has_code(row.question) or has_code(row.answer)):
            result.drop(row, "contains_code")
            continue
        exact_key = hashlib.sha256(normalise_question(row.question).encode()).hexdigest()
        if exact_key in seen_exact or row.id in kept_ids:  # same text, or the same post from two inputs
            result.drop(row, "duplicate_exact")
            continue
        # Short questions differ by a word that matters ("Level 1" / "Level 4", "not"): only
        # questions long enough for shingle similarity to mean "the same post" are compared.
        row_shingles = shingles(row.question) if len(row.question.split()) >= NEAR_DUPLICATE_MIN_WORDS else set()
        minhash = None
        if row_shingles:  # short questions skip the MinHash altogether
            minhash = MinHash(num_perm=NUM_PERM)
            minhash.update_batch([shingle.encode() for shingle in row_shingles])
            if any(jaccard(row_shingles, kept_shingles[key]) >= near_duplicate_threshold
                   for key in lsh.query(minhash)):
                result.drop(row, "duplicate_near")
                continue
        seen_exact.add(exact_key)
        kept_ids.add(row.id)
        if minhash is not None:
            lsh.insert(row.id, minhash)
            kept_shingles[row.id] = row_shingles
        result.kept.append(row)
    result.kept.sort(key=lambda row: row.id)
    return result


def is_validation(row_id: str, fraction: float, seed: str) -> bool:
    """Deterministic split: the same id lands in the same split on every run and machine."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_rows(rows: list[QARow], fraction: float, seed: str) -> tuple[list[QARow], list[QARow]]:
    train, validation = [], []
    for row in rows:
        (validation if is_validation(row.id, fraction, seed) else train).append(row)
    return train, validation
