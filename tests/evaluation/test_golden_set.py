"""The development golden set of the answer-quality harness: schema, counts, key-fact regexes and Q&A provenance."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import pytest

from tests.conftest import REPO_ROOT, SHARED_DATA

GOLDEN = REPO_ROOT / "services" / "evaluation" / "data" / "golden.jsonl"
FOLLOWUPS = GOLDEN.with_name("followups.jsonl")
QA_CSV = SHARED_DATA / "qa" / "nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge" / "jenkins_docs_qa_pairs.csv"

CATEGORIES = {"pipeline", "plugins", "configuration", "agents", "credentials", "upgrades", "kubernetes",
              "build-failures", "security", "administration", "qa-holdout", "out-of-corpus"}
SPLITS = {"tune", "holdout"}
KEYS = {"id", "category", "question", "reference_answer", "source_urls", "key_facts", "answerable", "split"}
ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def load_golden(path=GOLDEN) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ITEMS = load_golden()
FOLLOWUP_ITEMS = load_golden(FOLLOWUPS)
# Both sets follow one schema; a follow-up also names the questions asked before it in its session (`earlier`).
BOTH_SETS = pytest.mark.parametrize("items", [ITEMS, FOLLOWUP_ITEMS], ids=["golden", "followups"])


@BOTH_SETS
def test_every_item_has_exactly_the_schema_keys_and_types(items):
    for item in items:
        expected = KEYS | {"qa_row"} if item.get("category") == "qa-holdout" else KEYS
        if items is FOLLOWUP_ITEMS:
            expected = expected | {"earlier"}
            assert item["earlier"] and all(isinstance(q, str) and q.strip() for q in item["earlier"]), item["id"]
        assert set(item) == expected, item.get("id")
        assert isinstance(item["id"], str) and ID.match(item["id"]), item["id"]
        assert item["category"] in CATEGORIES and item["split"] in SPLITS, item["id"]
        for field in ("question", "reference_answer"):
            assert isinstance(item[field], str) and item[field].strip(), (item["id"], field)
        assert isinstance(item["source_urls"], list) and all(isinstance(u, str) for u in item["source_urls"])
        assert isinstance(item["key_facts"], list) and 1 <= len(item["key_facts"]) <= 3, item["id"]
        assert all(isinstance(f, str) and f for f in item["key_facts"]), item["id"]
        assert item["answerable"] is (item["category"] != "out-of-corpus"), item["id"]
        if "qa_row" in item:
            assert isinstance(item["qa_row"], int) and not isinstance(item["qa_row"], bool), item["id"]


def test_ids_and_questions_are_unique():
    ids = Counter(item["id"] for item in [*ITEMS, *FOLLOWUP_ITEMS])
    assert not [i for i, n in ids.items() if n > 1]
    questions = Counter(" ".join(item["question"].lower().split()) for item in ITEMS)
    assert not [q for q, n in questions.items() if n > 1]


def test_counts_and_both_splits_in_every_category():
    by_category = Counter(item["category"] for item in ITEMS)
    assert len(ITEMS) >= 80
    assert sum(n for c, n in by_category.items() if c not in {"qa-holdout", "out-of-corpus"}) >= 50
    assert by_category["qa-holdout"] >= 15 and by_category["out-of-corpus"] >= 10
    assert set(by_category) == CATEGORIES
    splits = {(item["category"], item["split"]) for item in ITEMS}
    assert not [(c, s) for c in CATEGORIES for s in SPLITS if (c, s) not in splits]


@BOTH_SETS
def test_key_facts_compile_match_the_reference_answer_and_not_what_the_user_typed(items):
    for item in items:
        for fact in item["key_facts"]:
            pattern = re.compile(fact, re.IGNORECASE)  # as the harness applies them
            assert pattern.search(item["reference_answer"]), (item["id"], fact)
            # A fact echoed from the question, or from a follow-up's earlier question, proves nothing.
            assert not any(pattern.search(q) for q in [*item.get("earlier", []), item["question"]]), (item["id"], fact)


@BOTH_SETS
def test_answerable_items_cite_https_sources_and_out_of_corpus_items_none(items):
    for item in items:
        if item["answerable"]:
            assert item["source_urls"] and all(u.startswith("https://") for u in item["source_urls"]), item["id"]
        else:
            assert item["source_urls"] == [], item["id"]


def test_qa_holdout_items_are_rows_of_the_qa_csv():
    if not QA_CSV.exists():
        pytest.skip(f"Q&A CSV not found at {QA_CSV}")
    with QA_CSV.open(encoding="utf-8", newline="") as fh:
        rows = {(int(row["xlsx_row"]), row["Question"].strip()) for row in csv.DictReader(fh)}
    for item in ITEMS:
        if item["category"] == "qa-holdout":
            assert (item["qa_row"], item["question"]) in rows, item["id"]


def test_qa_holdout_pairs_are_in_the_training_validation_split():
    """Held out of training: the pairs come from the validation split the training job makes by default."""
    if not QA_CSV.exists():
        pytest.skip(f"Q&A CSV not found at {QA_CSV}")
    pytest.importorskip("pandas")
    from jenkins_assistant.training.config import DataArguments
    from jenkins_assistant.training.data import QAPair, load_dataset_splits

    defaults = DataArguments()
    data = load_dataset_splits(QA_CSV, validation_fraction=defaults.validation_fraction, seed=defaults.split_seed)
    validation = set(data.validation)
    for item in ITEMS:
        if item["category"] == "qa-holdout":
            assert QAPair(item["question"], item["reference_answer"]) in validation, item["id"]


def test_follow_ups_cover_both_splits_and_questions_out_of_the_corpus():
    assert len(FOLLOWUP_ITEMS) >= 20 and {item["category"] for item in FOLLOWUP_ITEMS} <= CATEGORIES - {"qa-holdout"}
    assert {item["split"] for item in FOLLOWUP_ITEMS} == SPLITS
    assert any(not item["answerable"] for item in FOLLOWUP_ITEMS)


def test_the_harness_loads_follow_ups_with_their_earlier_questions():
    from jenkins_assistant.evaluation.golden import FOLLOWUPS_PATH
    from jenkins_assistant.evaluation.golden import load_golden as load_items

    assert FOLLOWUPS_PATH == FOLLOWUPS
    items = load_items(FOLLOWUPS_PATH)
    assert [list(item.earlier) for item in items] == [item["earlier"] for item in FOLLOWUP_ITEMS]
    assert all(not item.earlier for item in load_items())
