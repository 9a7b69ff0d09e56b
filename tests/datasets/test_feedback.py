"""Rated answers -> trl rows: which answers become SFT rows and preference pairs, and what is deduplicated."""

from __future__ import annotations

from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord
from jenkins_assistant.datasets.feedback import Rated, build_export, pair_identity, question_key, row_question


def rated(answer_id: str, question: str, answer: str, rating: str, corrected: str = "", at: float = 1.0,
          standalone: str = "", finish: str = "stop") -> Rated:
    return Rated(AnswerRecord(answer_id=answer_id, question=question, answer_text=answer, standalone_question=standalone,
                              finish_reason=finish, model="SmolLM2", source_urls=["https://www.jenkins.io/doc/"]),
                 AnswerFeedback(rating, corrected_answer=corrected, rated_at=at))


def contents(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


def test_corrections_and_helpful_answers_become_sft_rows_and_not_helpful_ones_pairs():
    export = build_export([
        rated("a1", "How do I archive artifacts?", "Use archiveArtifacts.", "helpful"),
        rated("a2", "How do I restart Jenkins?", "Reboot the machine.", "not_helpful",
              corrected="Use `safe-restart` from the Jenkins CLI."),
        rated("a3", "how do I archive ARTIFACTS", "Use the stash step.", "not_helpful"),
        rated("a4", "What is a node?", "A fish.", "not_helpful"),  # nothing better known: neither row nor pair
    ])
    assert [contents(row["messages"]) for row in export.sft] == [
        [("user", "How do I archive artifacts?"), ("assistant", "Use archiveArtifacts.")],
        [("user", "How do I restart Jenkins?"), ("assistant", "Use `safe-restart` from the Jenkins CLI.")],
    ]
    assert [row["origin"] for row in export.sft] == ["helpful", "correction"]
    assert [(contents(p["prompt"]), contents(p["chosen"]), contents(p["rejected"]), p["origin"])
            for p in export.pairs] == [
        ([("user", "How do I restart Jenkins?")], [("assistant", "Use `safe-restart` from the Jenkins CLI.")],
         [("assistant", "Reboot the machine.")], "correction"),
        ([("user", "how do I archive ARTIFACTS")], [("assistant", "Use archiveArtifacts.")],
         [("assistant", "Use the stash step.")], "helpful_answer"),
    ]
    assert export.dropped == {"pair_without_chosen": 1}
    assert export.sft[0]["messages"][0]["role"] == "system"


def test_no_owner_or_session_in_any_row():
    item = rated("a1", "How do I archive artifacts?", "Use archiveArtifacts.", "helpful")
    item.answer.owner, item.answer.session_id = "alice", "s-secret"
    export = build_export([item, rated("a2", "How do I archive artifacts?", "No.", "not_helpful")])
    text = repr(export.sft) + repr(export.pairs)
    assert "alice" not in text and "s-secret" not in text and "owner" not in text and "session" not in text


def test_one_sft_row_per_question_a_correction_first_then_the_latest_rating():
    export = build_export([
        rated("a1", "Restart Jenkins?", "old helpful", "helpful", at=1.0),
        rated("a2", "restart jenkins", "newer helpful", "helpful", at=3.0),
        rated("a3", "Restart Jenkins!", "bad", "not_helpful", corrected="the correction", at=2.0),
    ])
    assert [row["messages"][-1]["content"] for row in export.sft] == ["the correction"]
    assert export.dropped["sft_superseded"] == 2


def test_questions_of_the_training_set_give_no_sft_row_and_earlier_pairs_are_not_repeated():
    items = [rated("a1", "How do I restart Jenkins?", "Reboot.", "not_helpful", corrected="Use safe-restart."),
             rated("a2", "What is a pipeline?", "A suite of plugins.", "helpful")]
    training_set = {question_key("what is a PIPELINE")}
    first = build_export(items, known_questions=training_set)
    assert [row["answer_id"] for row in first.sft] == ["a1"] and first.dropped == {"sft_in_training_set": 1}
    # The next export, against the training set plus this export: nothing new.
    again = build_export(items, known_questions=training_set | {question_key(row_question(r)) for r in first.sft},
                         known_pairs={pair_identity(p) for p in first.pairs})
    assert again.sft == [] and again.pairs == [] and again.dropped["pair_duplicate"] == 1


def test_standalone_question_is_used_and_unusable_answers_are_dropped():
    export = build_export([
        rated("a1", "And with credentials?", "Use withCredentials.", "helpful",
              standalone="How do I use credentials with the Git plugin?"),
        rated("a2", "", "an explanation recorded without its question", "helpful"),
        rated("a3", "What is Jenkins?", "An automation", "helpful", finish="cancelled"),
        rated("a4", "What is Blue Ocean?", "", "not_helpful"),
        rated("a5", "What is Jenkins?", "Same text", "not_helpful", corrected="Same  text"),
        Rated(AnswerRecord(answer_id="a6", question="", standalone_question="NullPointerException in stage Build",
                           answer_text="The build failed because ...", kind="explain"), AnswerFeedback("helpful")),
    ])
    assert [contents(r["messages"])[0][1] for r in export.sft] == ["How do I use credentials with the Git plugin?",
                                                                   "What is Jenkins?"]
    assert export.dropped == {"no_question": 1, "cancelled": 1, "no_answer": 1, "pair_chosen_equals_rejected": 1,
                              "not_a_chat_answer": 1}


def test_training_rows_of_every_format_name_their_question():
    assert row_question({"question": "Q1", "answer": "A"}) == "Q1"
    assert row_question({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "Q2"},
                                      {"role": "assistant", "content": "A"}]}) == "Q2"
    assert row_question({"prompt": "Q3", "completion": "A"}) == "Q3"
    assert pair_identity({"prompt": "Q", "chosen": "Good", "rejected": "Bad"}) == ("q", "Good", "Bad")
    assert pair_identity({"question": "Q"}) is None
