"""Served-layout training examples (datasets/grounded.py) over a small in-memory corpus searched by word overlap: the
search only has to rank; what is tested is which passages end up in the prompt and which number the answer cites."""

from __future__ import annotations

import random
import re

from jenkins_assistant.common.grounded_prompt import Passage
from jenkins_assistant.datasets.grounded import DROPPED, INSERTED, RETRIEVED, cite, ground_pair

CORPUS = [
    Passage("Pipeline Syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
            "The agent section specifies where the entire Pipeline, or a specific stage, will execute in the Jenkins "
            "environment. Use agent any to run on any available agent.", "Pipeline Syntax > agent"),
    Passage("Pipeline Syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
            "The post section defines additional steps that run upon the completion of a Pipeline's or stage's run. "
            "Conditions such as always, failure and fixed decide when they run.", "Pipeline Syntax > post"),
    Passage("Using credentials", "https://www.jenkins.io/doc/book/using/using-credentials/",
            "Credentials are stored encrypted on the controller and referenced by their ID, for example with the "
            "withCredentials step in a Pipeline.", "Using credentials"),
    Passage("Managing tools", "https://www.jenkins.io/doc/book/managing/tools/",
            "Global tool configuration installs JDKs, Maven and Gradle automatically on agents when a build needs "
            "them.", "Managing tools"),
    Passage("Archiving artifacts", "https://www.jenkins.io/doc/pipeline/tour/tests-and-artifacts/",
            "The archiveArtifacts step keeps files produced by a build, such as jar files, so that they can be "
            "downloaded from the build page later.", "Recording tests and artifacts"),
]


def overlap_search(corpus: list[Passage]):
    def words(text: str) -> set[str]:
        return set(re.findall(r"[a-z]{4,}", text.lower()))

    def search(query: str, k: int) -> list[Passage]:
        wanted = words(query)
        ranked = sorted(corpus, key=lambda p: -len(wanted & words(f"{p.heading} {p.text}")))
        return ranked[:k]
    return search


def test_the_answer_cites_the_served_passage_that_supports_it():
    example = ground_pair("Where does the agent section say my Pipeline will execute?",
                          "The agent section specifies where the entire Pipeline, or a specific stage, will execute.",
                          overlap_search(CORPUS), 3, random.Random(0))
    assert example.status == RETRIEVED
    assert example.passages[example.cited - 1] is CORPUS[0]
    assert example.answer.endswith(f"will execute [{example.cited}].")
    assert example.row()["url"] == CORPUS[0].url and len(example.row()["passages"]) == 3


def test_a_supporting_passage_below_the_served_ones_is_put_among_them_at_a_seeded_position():
    # The question's words point at the Pipeline pages; only the answer names archiveArtifacts.
    question = "How do I keep the jar files of a Pipeline stage's run?"
    answer = "Use the archiveArtifacts step: it keeps files produced by a build so they can be downloaded later."
    served = overlap_search(CORPUS)(question, 3)
    assert CORPUS[4] not in served
    positions = set()
    for seed in range(8):
        example = ground_pair(question, answer, overlap_search(CORPUS), 3, random.Random(seed))
        assert example.status == INSERTED and len(example.passages) == 3
        assert example.passages[example.cited - 1] == CORPUS[4]
        # The others are the served passages, best first, minus the last one.
        assert [p for p in example.passages if p != CORPUS[4]] == served[:2]
        assert f"[{example.cited}]" in example.answer
        positions.add(example.cited)
    assert len(positions) > 1  # not always first (or last): the model has to find it


def test_a_pair_no_passage_supports_is_dropped():
    example = ground_pair("How do I restart Jenkins safely?",
                          "Open the safeRestart URL, which waits for running builds to finish first.",
                          overlap_search(CORPUS), 3, random.Random(0))
    assert example.status == DROPPED and example.reason == "no indexed passage supports the answer"


def test_a_pair_whose_prompt_would_say_a_name_is_not_covered_is_dropped():
    # The passages support the answer, but the question's `retryCount` appears in none of them.
    example = ground_pair("Does the post section take a retryCount option?",
                          "The post section defines additional steps that run upon the completion of a Pipeline's run.",
                          overlap_search(CORPUS), 3, random.Random(0))
    assert example.status == DROPPED and "not covered" in example.reason


def test_cite_puts_the_number_before_the_final_punctuation_or_after_a_code_block():
    assert cite("Use agent any.", 2) == "Use agent any [2]."
    assert cite("Is it stored encrypted?  ", 1) == "Is it stored encrypted [1]?"
    assert cite("Use agent any", 3) == "Use agent any [3]"
    assert cite("Like this:\n```groovy\nagent any\n```", 4) == "Like this:\n```groovy\nagent any\n```\n\n[4]"
