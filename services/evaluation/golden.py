"""The golden question set (data/golden.jsonl): Jenkins questions with reference answers and key facts.

Each item's key facts are regular expressions (matched case-insensitively) for the specific things a right
answer contains: step names, option keys, menu paths, plugin ids, commands. Out-of-corpus items
(`answerable: false`) ask what the indexed documentation does not cover; the right answer says so.
`split` is "tune" (used while tuning) or "holdout" (only read to check that a change generalises).

The follow-up set (data/followups.jsonl) has the same fields plus `earlier`: the questions asked before in the
same session. Its question leans on them ("how do I make one of those stages run only on main?"), so it measures
how a conversation's follow-up is searched and answered; only the follow-up's answer is scored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

GOLDEN_PATH = Path(__file__).with_name("data") / "golden.jsonl"
FOLLOWUPS_PATH = GOLDEN_PATH.with_name("followups.jsonl")
SPLITS = ("tune", "holdout")


@dataclass(frozen=True)
class GoldenItem:
    id: str
    category: str
    question: str
    reference_answer: str
    source_urls: list[str]
    key_facts: list[str]
    answerable: bool
    split: str
    qa_row: int | None = None
    earlier: tuple[str, ...] = ()  # questions asked before this one in the same session (follow-up set)

    @cached_property
    def patterns(self) -> list[re.Pattern]:
        return [re.compile(fact, re.IGNORECASE) for fact in self.key_facts]

    @classmethod
    def from_dict(cls, data: dict) -> GoldenItem:
        return cls(**{k: v for k, v in data.items() if k not in ("qa_row", "earlier")},
                   qa_row=int(data["qa_row"]) if data.get("qa_row") not in (None, "") else None,
                   earlier=tuple(data.get("earlier", ())))


def load_golden(path: Path = GOLDEN_PATH, split: str = "", categories: tuple[str, ...] = (),
                limit: int = 0) -> list[GoldenItem]:
    """Items of `split` ("" = all) and `categories` (empty = all). `limit` keeps a subset spread over the
    categories (round-robin in file order), so a small CI run still sees every kind of question."""
    with open(path, encoding="utf-8") as lines:
        items = [GoldenItem.from_dict(json.loads(line)) for line in lines if line.strip()]
    if split:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        items = [item for item in items if item.split == split]
    if categories:
        items = [item for item in items if item.category in categories]
    if limit and limit < len(items):
        by_category: dict[str, list[GoldenItem]] = {}
        for item in items:
            by_category.setdefault(item.category, []).append(item)
        queues = list(by_category.values())
        picked: list[GoldenItem] = []
        while len(picked) < limit:
            for queue in queues:
                if queue and len(picked) < limit:
                    picked.append(queue.pop(0))
        items = picked
    return items
