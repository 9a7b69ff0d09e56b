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
