"""The retrieval-only harness (`eval --mode retrieval`) on the tests' small index: it scores the passages the service
would give, so its passage count follows the service's settings unless the run names one."""

from __future__ import annotations

from jenkins_assistant.evaluation.golden import load_golden
from jenkins_assistant.evaluation.retrieval_only import run_retrieval_only


def test_passages_per_question_follow_the_service_unless_the_run_names_a_count(sample_index, monkeypatch):
    items = [item for item in load_golden() if item.answerable][:2]
    monkeypatch.setenv("INFERENCE_RETRIEVAL_K", "2")
    served = run_retrieval_only(items, sample_index, 0, hybrid=True)
    assert [len(result.sources) for result in served] == [2, 2]
    named = run_retrieval_only(items, sample_index, 3, hybrid=True)
    assert [len(result.sources) for result in named] == [3, 3]
    # The answer is the passages themselves, so its recall is their reach.
    assert all(result.score.keyfact_recall == result.score.retrieval_reach for result in named)


def test_a_follow_up_is_searched_with_its_earlier_question_joined(sample_index):
    """As the service searches a follow-up whose rewrite it rejected: the recent questions, then the follow-up."""
    from dataclasses import replace

    from jenkins_assistant.evaluation.golden import FOLLOWUPS_PATH

    [item] = [i for i in load_golden(FOLLOWUPS_PATH) if i.id == "followup-logs-systemd"]
    joined = replace(item, question=f"{item.earlier[0]} {item.question}", earlier=())
    alone = replace(item, earlier=())
    follow_up, as_joined, as_alone = run_retrieval_only([item, joined, alone], sample_index, 3, hybrid=True)
    passages = [[source["passage"] for source in result.sources] for result in (follow_up, as_joined, as_alone)]
    assert passages[0] == passages[1]
    # "Where do I find its logs then?" alone is not what was searched: its passages differ.
    assert passages[0] != passages[2]
