"""The harness's scoring and reports on hand-made answers (fast: no model, no index)."""

from __future__ import annotations

import json

import pytest

from jenkins_assistant.evaluation import report
from jenkins_assistant.evaluation.golden import GoldenItem, load_golden
from jenkins_assistant.evaluation.scoring import abstains, score_answer

PARALLEL_ROW = {
    "id": "parallel", "category": "pipeline", "question": "How do I run two stages at the same time?",
    "reference_answer": "Put the stages in a `parallel { }` block inside a stage; `failFast true` stops the others.",
    "source_urls": ["https://www.jenkins.io/doc/book/pipeline/syntax/"],
    "key_facts": [r"\bparallel\s*\{", r"failFast"], "answerable": True, "split": "tune",
}
MADE_UP_ROW = {
    "id": "made-up", "category": "out-of-corpus", "question": "How do I configure the Quantum Build Accelerator plugin?",
    "reference_answer": "The documentation does not cover a Quantum Build Accelerator plugin.", "source_urls": [],
    "key_facts": [r"does not cover"], "answerable": False, "split": "holdout",
}
PARALLEL = GoldenItem.from_dict(PARALLEL_ROW)
MADE_UP = GoldenItem.from_dict(MADE_UP_ROW)


def test_keyfact_recall_and_reach_count_the_facts_found():
    passages = ["stage('Tests') { parallel { stage('A') { ... } } }", "Set failFast true in the stage."]
    score = score_answer(PARALLEL, "Use a parallel { } block [1].", passages, source_count=2)
    assert score.keyfact_recall == 0.5 and score.retrieval_reach == 1.0
    assert score.sourced and score.cited and score.citation_valid and not score.abstained


def test_facts_in_the_quoted_documentation_count_for_the_answer_but_not_for_the_generated_text():
    quote = "\n\n**From the documentation** (quoted as written):\n\n> [1] *Pipeline syntax*\n>\n> failFast true"
    generated = "Use a parallel { } block [1]."
    score = score_answer(PARALLEL, generated + quote, ["parallel { } and failFast true"], 1, generated)
    assert score.keyfact_recall == 1.0 and score.keyfact_recall_generated == 0.5
    # Citing is the model's: a quote's [n] heading does not make an answer that cites nothing a citing one.
    assert not score_answer(PARALLEL, "Use a parallel block." + quote, ["x"], 1, "Use a parallel block.").cited
    assert score.cited and score.citation_valid
    # Quoted documentation that negates something is not the answer saying that the docs do not cover the question.
    negating = "\n\n> [1] *Credentials*\n>\n> This option is not documented for agents."
    assert not score_answer(PARALLEL, generated + negating, ["x"], 1, generated).abstained
    assert score_answer(PARALLEL, generated + negating, ["x"], 1).abstained  # all of it read as generated


def test_a_citation_beyond_the_given_passages_is_invalid():
    assert not score_answer(PARALLEL, "See [3].", ["one", "two"], source_count=2).citation_valid
    assert score_answer(PARALLEL, "No citation at all.", ["one"], source_count=1).citation_valid


def test_an_index_in_code_is_not_a_citation():
    answer = ("Read it with `readJSON` [1]:\n```groovy\ndef props = readJSON text: '[ \"a\", \"b\"]'\n"
              "assert props[0] == 'a'\nassert args [2] == 'b'\n```\nthen `items[5]`, or list[3] in prose.")
    score = score_answer(PARALLEL, answer, ["one"], source_count=1)
    assert score.cited and score.citation_valid  # only the [1] after readJSON cites a passage
    assert not score_answer(PARALLEL, "See [0] and [2].", ["one"], source_count=1).citation_valid
    # A code block the answer did not close (cut at max_tokens) is code to the end.
    assert score_answer(PARALLEL, "It is [1].\n```\nx = a[7]", ["one"], source_count=1).citation_valid


def test_out_of_corpus_items_are_judged_by_abstention_only():
    said_no = score_answer(MADE_UP, "The documentation provided does not cover that plugin.", [], 0)
    invented = score_answer(MADE_UP, "Install it from Manage Jenkins > Plugins and set quantum: true.", [], 0)
    assert said_no.abstained and said_no.keyfact_recall is None
    assert not invented.abstained


@pytest.mark.parametrize("answer", [
    "The passages do not mention a --turbo flag.",
    "I couldn't find this in the documentation.",
    "This option is not documented in the provided passages.",
    "There is no information about that plugin in the documentation.",
    "The documentation does not cover `--drain-timeout`. The passage states that builds keep running.",
    "The provided passages don't describe a gpuQuota parameter.",
])
def test_abstentions_are_recognised(answer):
    assert abstains(answer)


@pytest.mark.parametrize("answer", [
    "Use `parallel` inside a stage; the stages do not share a workspace.",
    "Set `failFast true` so that one failure stops the rest.",
    "Jenkins does not restart by itself: run safeRestart.",
    # Negations about Jenkins or a plugin, from real answers to answerable golden questions:
    "The Selenium HTML report plugin does not include CSS or JavaScript files in its reports.",
    "The curl command provided by Jenkins does not include a valid crumb.",
    "Jenkins is unable to find a suitable binding handler for the type of credential.",
    "The Kubernetes plugin does not support running Maven containers directly; use the container step.",
])
def test_answers_are_not_mistaken_for_abstentions(answer):
    assert not abstains(answer)


def test_limit_spreads_the_subset_over_categories(tmp_path):
    path = tmp_path / "golden.jsonl"
    rows = [{**PARALLEL_ROW, "id": f"p{i}"} for i in range(5)] + [{**MADE_UP_ROW, "id": f"o{i}"} for i in range(5)]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    picked = load_golden(path, limit=4)
    assert [item.id for item in picked] == ["p0", "o0", "p1", "o1"]
    assert {item.id for item in load_golden(path, split="holdout")} == {f"o{i}" for i in range(5)}


def _result(item_id: str, recall: float, ttft: float, answerable: bool = True) -> dict:
    return {"id": item_id, "category": "pipeline", "answerable": answerable, "error": "", "ttft_s": ttft,
            "tokens_per_s": 10.0, "prompt_tokens": 500, "completion_tokens": 200, "finish_reason": "FINISH_REASON_STOP",
            "score": {"keyfact_recall": recall, "retrieval_reach": 1.0, "sourced": True, "citation_valid": True,
                      "cited": True, "abstained": False}}


def test_the_summary_counts_answers_stopped_for_repeating_themselves_or_reading_passages_out():
    looped = {**_result("a", 1.0, 8.0), "completion_tokens": 120, "finish_reason": "FINISH_REASON_REPETITION"}
    ended = {**_result("b", 0.5, 9.0), "completion_tokens": 300, "finish_reason": "FINISH_REASON_STOP"}
    read_out = {**_result("c", 0.5, 9.0), "completion_tokens": 210, "finish_reason": "FINISH_REASON_READOUT"}
    summary = report.aggregate([looped, ended, read_out, ended])
    assert summary["stopped_repeating"] == 0.25 and summary["stopped_reading_out"] == 0.25
    assert summary["completion_tokens"] == 232.5
    assert {"stopped_repeating=0.25", "stopped_reading_out=0.25"} <= set(report.figure_lines(summary))


def test_aggregate_and_paired_comparison():
    before = {"items": [_result("a", 0.0, 10.0), _result("b", 0.5, 12.0)]}
    after = {"items": [_result("a", 1.0, 8.0), _result("b", 0.5, 9.0), _result("c", 1.0, 1.0)]}
    summary = report.aggregate(after["items"])
    assert summary["keyfact_recall"] == pytest.approx(0.8333, abs=1e-4) and summary["items"] == 3
    assert "keyfact_recall=0.8333" in report.figure_lines(summary)
    lines, table = report.compare(before, after)
    assert "paired_items=2" in lines and "delta_keyfact_recall=+0.5000" in lines
    assert "ttft_p50_ratio=0.773" in lines and "| keyfact_recall |" in table
    # Reports from before the quotes hold no generated-text score: all their text was generated.
    assert summary["keyfact_recall_generated"] == summary["keyfact_recall"]
    assert "delta_keyfact_recall_generated=+0.5000" in lines
    # One item better and none worse is no evidence: the sign test says so.
    assert "sign_p_keyfact_recall=1.000" in lines


@pytest.mark.parametrize(("better", "worse"), [(19, 7), (13, 8), (9, 15), (0, 6), (7, 7), (1, 0), (40, 3)])
def test_sign_test_matches_scipy(better, worse):
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(better, better + worse, 0.5, alternative="two-sided").pvalue
    assert report.sign_test_p(better, worse) == pytest.approx(expected, rel=1e-9)


def test_sign_test_without_changed_items():
    assert report.sign_test_p(0, 0) == 1.0
