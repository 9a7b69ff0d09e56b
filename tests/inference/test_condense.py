"""Which of the chat model's rewrites of a follow-up are accepted as the standalone question (the rest fall back to
joining the recent questions). Real follow-ups of the kinds users type, and the ways a small model gets the rewrite
wrong; no model needed."""

from __future__ import annotations

import pytest

from jenkins_assistant.inference.condense import acceptable_rewrite, concat_question
from jenkins_assistant.inference.prompts import Exchange

PARALLEL = [Exchange("How do I define a declarative Pipeline with a parallel stage?",
                     "Add a `parallel` section inside a `stage`; each nested stage runs in parallel.")]
PLUGINS = [Exchange("Which plugins run builds in containers?",
                    "The Kubernetes plugin runs agents as pods, and the Docker plugin starts agents as containers.")]
AGENT = [Exchange("What is a Jenkins agent?", "An agent is a machine or container that runs builds for the controller.")]


@pytest.mark.parametrize(("history", "follow_up", "rewrite"), [
    # "those stages" points into the question.
    (PARALLEL, "How do I make one of those stages run only on the main branch?",
     "How do I make a parallel stage in a declarative Pipeline run only on the main branch?"),
    # "the second one" points into the answer, not the question.
    (PLUGINS, "how do I install the second one?", "How do I install the Docker plugin?"),
    (AGENT, "How do I add one on Windows?", "How do I add a Jenkins agent on Windows?"),
])
def test_rewrites_that_keep_the_follow_up_and_bring_in_the_topic_are_accepted(history, follow_up, rewrite):
    assert acceptable_rewrite(rewrite, follow_up, history)


@pytest.mark.parametrize("candidate", [
    # An answer instead of a question.
    "Add a when { branch 'main' } block to the stage.",
    "Use the when directive. For example:\nwhen { branch 'main' }?",
    # The follow-up echoed: nothing of the conversation brought in.
    "How do I make one of those stages run only on the main branch?",
    # The earlier question repeated: the follow-up's own words dropped.
    "How do I define a declarative Pipeline with a parallel stage?",
    # Longer than a question (the model went on answering).
    "How do I make a parallel stage run only on the main branch " + "and " * 80 + "more?",
    "",
])
def test_answers_echoes_and_dropped_follow_ups_are_rejected(candidate):
    assert not acceptable_rewrite(candidate, "How do I make one of those stages run only on the main branch?",
                                  PARALLEL)


def test_the_fallback_joins_the_recent_questions_in_order():
    history = [*AGENT, *PARALLEL, *PLUGINS]
    assert concat_question("how do I install the second one?", history) == (
        f"{PARALLEL[0].question} {PLUGINS[0].question} how do I install the second one?")
