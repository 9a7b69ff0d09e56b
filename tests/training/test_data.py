"""Q&A CSV reading, the train/validation split and the prompt renderings SFTTrainer trains on."""

from __future__ import annotations

import pytest

from jenkins_assistant.training.data import (
    QAPair,
    load_dataset_splits,
    read_pairs,
    render_llama2_prompt,
    to_sft_records,
)


def test_reads_the_real_jenkins_pairs(qa_csv):
    pairs = read_pairs(qa_csv)  # columns "Question"/"Answer": found case-insensitively
    assert len(pairs) == 765
    assert pairs[0].question == "What is Jenkins?" and pairs[0].answer.startswith("Jenkins is a self-contained")


def test_split_is_deterministic_disjoint_and_capped(qa_csv):
    first = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=7)
    again = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=7)
    other = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=8)
    assert (len(first.train), len(first.validation)) == (689, 76)
    assert first.validation == again.validation and first.validation != other.validation
    assert not set(first.train) & set(first.validation)
    assert first.sha256 == other.sha256 and len(first.sha256) == 64  # the hash is of the data, not the split
    capped = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=7, max_train_examples=5, max_eval_examples=3)
    assert capped.train == first.train[:5] and capped.validation == first.validation[:3]


def test_upstream_validation_csv_is_kept(tmp_path):
    train_csv, val_csv = tmp_path / "qa_train.csv", tmp_path / "qa_validation.csv"
    train_csv.write_text("question,answer,source\nq1,a1,x\nq2,a2,x\nq3,a3,x\n")
    val_csv.write_text("question,answer,source\nq3,a3,x\nq9,a9,x\n")
    data = load_dataset_splits(train_csv, validation_fraction=0.1, seed=1, validation_csv=val_csv)
    assert data.validation == [QAPair("q3", "a3"), QAPair("q9", "a9")]
    assert data.train == [QAPair("q1", "a1"), QAPair("q2", "a2")]  # a validation pair never trains


def test_bad_csv_gives_a_clear_error(tmp_path):
    no_answer = tmp_path / "bad.csv"
    no_answer.write_text("question,reply\nq,a\n")
    with pytest.raises(ValueError, match="no 'answer' column"):
        read_pairs(no_answer)
    empty = tmp_path / "empty.csv"
    empty.write_text("question,answer\n , \n")
    with pytest.raises(ValueError, match="no non-empty"):
        read_pairs(empty)
    dupes = tmp_path / "dupes.csv"
    dupes.write_text("Question,Answer\n q ,a\nq,a\nq2,a2\n")
    assert read_pairs(dupes) == [QAPair("q", "a"), QAPair("q2", "a2")]


def test_llama2_records_hold_no_bos_and_tokenize_with_exactly_one(tiny_llama_dir):
    """The tokenizer adds <s> and SFTTrainer appends </s>: written into the text, <s> would appear twice."""
    from jenkins_assistant.training.config import ModelArguments
    from jenkins_assistant.training.modeling import load_tokenizer

    (record,) = to_sft_records([QAPair("What is a Jenkinsfile?", "A text file.")], "llama-2", "Be brief.")
    assert record["prompt"] == render_llama2_prompt("What is a Jenkinsfile?", "Be brief.")
    assert record["prompt"].startswith("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n") and "<s>" not in record["prompt"]
    tokenizer = load_tokenizer(ModelArguments(base_model=str(tiny_llama_dir)))
    ids = tokenizer(record["prompt"] + record["completion"] + tokenizer.eos_token)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.padding_side == "right"


def test_chat_records_are_conversational_prompt_completion():
    (record,) = to_sft_records([QAPair("q", "a")], "model", "sys")
    assert record == {"prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}],
                      "completion": [{"role": "assistant", "content": "a"}]}


def test_pairs_with_passages_train_on_the_served_prompt_layout(tmp_path):
    import json

    import pandas as pd

    from jenkins_assistant.common.grounded_prompt import SYSTEM_PROMPT, SYSTEM_PROMPT_NO_PASSAGES, Passage
    from jenkins_assistant.inference.prompts import answer_messages
    from jenkins_assistant.training.data import pairs_sha256, read_pairs, to_sft_records

    passage = {"title": "Pipeline Syntax", "url": "https://www.jenkins.io/doc/book/pipeline/syntax/",
               "text": "Use `parallel { }` inside a stage.", "section": "Parallel"}
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"question": ["Run stages at once?", "What is Jenkins?"], "answer": ["Use parallel [1].", "A server."],
                  "passages": [json.dumps([passage]), ""]}).to_csv(path, index=False)
    grounded, bare = read_pairs(path)
    assert grounded.passages == (Passage(**passage),) and bare.passages == ()
    records = to_sft_records([grounded, bare], "model", system_prompt="")
    served = answer_messages(grounded.question, list(grounded.passages), [], 600)
    assert records[0]["prompt"] == served  # exactly what the inference service sends
    assert records[0]["prompt"][0]["content"] == SYSTEM_PROMPT
    assert records[1]["prompt"] == [{"role": "system", "content": SYSTEM_PROMPT_NO_PASSAGES},
                                    {"role": "user", "content": "What is Jenkins?"}]
    assert pairs_sha256([grounded]) != pairs_sha256([grounded.__class__(grounded.question, grounded.answer)])
