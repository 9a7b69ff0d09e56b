"""Issue 13, section 3: the dataset commands' files feed the training job (extra SFT rows, a DPO stage on the SFT
adapter), a seeded test split no training choice sees, and the harness's publish gate.

The feedback files are made by the real `build_export` from rated answers built on real Jenkins pairs; the run is the
tiny Llama of test_pipeline.py through the whole job (SFT -> DPO -> merge -> GGUF -> publish)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord
from jenkins_assistant.datasets.feedback import Rated, build_export
from jenkins_assistant.training.cli import main
from jenkins_assistant.training.data import (
    is_test_question,
    load_dataset_splits,
    read_dpo_jsonl,
    read_sft_file,
    read_sft_jsonl,
)
from jenkins_assistant.training.publish import publish_gate, read_manifest, verify_published

from .test_pipeline import one_torch_thread, tiny_args  # noqa: F401  (fixture)

QA_COLUMNS = ["question", "answer", "url", "license", "section"]  # `dataset generate`'s qa.csv


def _rated(answer_id: str, question: str, answer: str, rating: str, corrected: str = "") -> Rated:
    return Rated(AnswerRecord(answer_id=answer_id, question=question, answer_text=answer, finish_reason="stop",
                              model="SmolLM2", source_urls=["https://www.jenkins.io/doc/"]),
                 AnswerFeedback(rating, corrected_answer=corrected, rated_at=1.0))


def write_feedback_files(qa_csv: Path, folder: Path, n: int = 24) -> tuple[Path, Path, Path]:
    """sft.jsonl and dpo.jsonl as `dataset export` writes them, and a qa.csv as `dataset generate` writes it, from
    real pairs rephrased as users ask: half rated helpful, half answered with another question's answer, rated not
    helpful and corrected with the real answer (an SFT row and a preference pair each)."""
    frame = pd.read_csv(qa_csv).iloc[-3 * n:]  # the end of the file: other questions than the CSV's capped train rows
    rated = []
    for i, (question, answer) in enumerate(zip(frame["Question"][:n], frame["Answer"][:n])):
        asked = f"Jenkins: {question}"
        if i % 2:
            wrong = frame["Answer"].iloc[(i + 7) % n]
            rated.append(_rated(f"a{i:03d}", asked, wrong, "not_helpful", corrected=answer))
        else:
            rated.append(_rated(f"a{i:03d}", asked, answer, "helpful"))
    export = build_export(rated)
    folder.mkdir(parents=True, exist_ok=True)
    sft, dpo, qa = folder / "sft.jsonl", folder / "dpo.jsonl", folder / "qa.csv"
    sft.write_text("".join(json.dumps(row) + "\n" for row in export.sft))
    dpo.write_text("".join(json.dumps(row) + "\n" for row in export.pairs))
    with qa.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=QA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for question, answer in zip(frame["Question"][n:], frame["Answer"][n:]):
            writer.writerow({"question": question, "answer": answer, "url": "https://www.jenkins.io/doc/",
                             "license": "CC-BY-SA-4.0", "section": "Generated"})
    return sft, dpo, qa


def test_export_and_generate_files_load_as_pairs(qa_csv, tmp_path):
    sft, dpo, qa = write_feedback_files(qa_csv, tmp_path)
    sft_pairs = read_sft_jsonl(sft)
    assert len(sft_pairs) == 24  # every question has a helpful answer or a correction
    first = json.loads(sft.read_text().splitlines()[0])
    assert (sft_pairs[0].question, sft_pairs[0].answer) == (first["messages"][1]["content"],
                                                            first["messages"][2]["content"])
    pairs = read_dpo_jsonl(dpo)
    assert len(pairs) == 12 and all(p.chosen != p.rejected for p in pairs)
    generated = read_sft_file(qa)
    assert len(generated) == 48 and generated[0].question and generated[0].answer

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                            {"role": "assistant", "content": "c"}]}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: expected one user turn"):
        read_sft_jsonl(bad)
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a"}) + "\n")
    with pytest.raises(ValueError, match="needs prompt, chosen and rejected"):
        read_dpo_jsonl(bad)


def test_test_split_is_seeded_by_question_and_disjoint_from_training_choices(qa_csv, tmp_path):
    sft, _, qa = write_feedback_files(qa_csv, tmp_path)
    base = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=42, test_fraction=0.1)
    more = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=42, test_fraction=0.1, extra_files=[sft, qa])
    other_seed = load_dataset_splits(qa_csv, validation_fraction=0.1, seed=43, test_fraction=0.1)

    assert 0.07 < len(base.test) / base.total_pairs < 0.13  # ~10% of 765 questions
    # Nothing a training choice sees is a test question, in any file.
    for data in (base, more):
        test_questions = {p.question for p in data.test}
        assert not test_questions & {p.question for p in data.train + data.validation}
    # Adding files does not move the old rows' split (a hash of the question, not a shuffle of positions)...
    assert set(base.test) <= set(more.test)
    # ...and the same question is on the same side in every file ("Jenkins: <q>" normalises differently, so only
    # exact repeats are checked).
    assert all(is_test_question(p.question, 42, 0.1) for p in more.test)
    assert set(other_seed.test) != set(base.test)
    # Every input file is recorded with its hash and rows.
    assert [(f["kind"], f["rows"]) for f in more.files] == [("sft", 765), ("sft", 24), ("sft", 48)]
    assert all(len(f["sha256"]) == 64 for f in more.files)


def harness_record(recall: float, limit: int = 12) -> dict:
    """A manifest's `harness` record as the job writes it."""
    return {"setup": {"split": "tune", "limit": limit, "max_tokens": 96, "index": "/srv/index"},
            "model": {"keyfact_recall": recall, "abstention": 0.5}, "base": {"keyfact_recall": 0.1}}


def test_publish_gate_on_manifests():
    current = {"format_version": 1, "harness": harness_record(0.20)}
    worse = publish_gate(harness_record(0.15), current)
    assert not worse["allowed"] and "0.150 is below the published model's 0.200" in worse["reason"]
    forced = publish_gate(harness_record(0.15), current, force=True)
    assert forced["allowed"] and forced["forced"] and forced["reason"].startswith("forced:")
    assert publish_gate(harness_record(0.20), current)["allowed"]  # a tie is not worse
    assert publish_gate(harness_record(0.25), current)["allowed"]
    # Figures from another question subset do not compare: refused unless forced.
    other = publish_gate(harness_record(0.90, limit=40), current)
    assert not other["allowed"] and "not comparable" in other["reason"]
    # Nothing to compare with: a first model, or a published one from before the harness step, or no run now.
    assert publish_gate(harness_record(0.01), None)["allowed"]
    assert publish_gate(harness_record(0.01), {"format_version": 1})["allowed"]
    assert publish_gate(None, current)["reason"] == "harness not run for this model"


def test_tiny_sft_then_dpo_publishes_a_manifest_of_stages_datasets_and_test_loss(
        tiny_llama_dir, qa_csv, converter_dir, tmp_path, one_torch_thread, caplog):  # noqa: F811
    sft, dpo, qa = write_feedback_files(qa_csv, tmp_path / "data")
    data_args, train_args, model_args = tiny_args(tiny_llama_dir, qa_csv, converter_dir, tmp_path)
    data_args.sft_files = [str(sft), str(qa)]
    data_args.dpo_file = str(dpo)
    data_args.max_test_examples = 16
    train_args.max_steps, train_args.dpo_max_steps, train_args.dpo_batch_size = 8, 4, 4
    train_args.dpo_learning_rate = 5e-3
    caplog.set_level("INFO", logger="jenkins_assistant.training")

    outcome = main(data_args, train_args, model_args)
    manifest = verify_published(outcome.publish_dir)
    assert manifest == read_manifest(outcome.publish_dir)

    # Which files produced the model: the CSV, the two extra SFT files and the DPO pairs, with hashes and rows.
    kinds = [(Path(f["path"]).name, f["kind"], f["rows"]) for f in manifest["datasets"]]
    assert kinds[:3] == [(qa_csv.name, "sft", 765), ("sft.jsonl", "sft", 24), ("qa.csv", "sft", 48)]
    dpo_record = manifest["datasets"][3]
    assert (dpo_record["kind"], dpo_record["rows"]) == ("dpo", 12)
    assert dpo_record["used"] + dpo_record["dropped_test_questions"] == 12
    assert dpo_record["sha256"] == __import__("hashlib").sha256(dpo.read_bytes()).hexdigest()

    # Both stages, in order, with their steps, losses and time.
    sft_stage, dpo_stage = manifest["stages"]
    assert sft_stage["stage"] == "sft" and sft_stage["steps"] == 8 and sft_stage["runtime_s"] > 0
    assert sft_stage["losses"] and sft_stage["validation_losses"]
    assert dpo_stage["stage"] == "dpo" and dpo_stage["steps"] == 4 and dpo_stage["reference"] == "sft adapter"
    assert len(dpo_stage["losses"]) == 4 and all("rewards/accuracies" in p for p in dpo_stage["losses"])
    # trl's sigmoid DPO loss starts at log 2 when the policy equals the reference: the reference is the SFT adapter.
    assert dpo_stage["losses"][0]["loss"] == pytest.approx(0.6931, abs=1e-3)

    # The test figure: base and final model on the same unseen pairs, once each; the final one is the DPO'd model.
    test = manifest["test_loss"]
    assert test["pairs"] == 16 and test["before"] > sft_stage["test_loss"] > 0
    # DPO moves the same adapter, so the final figure is another one (on this tiny model it rises: DPO pushes the
    # rejected answers down, not the test answers up; the SmolLM2 figures are in training-job/README.md).
    assert test["after"] == dpo_stage["test_loss"] != sft_stage["test_loss"]
    assert "test loss: base" in caplog.text and "SFT+DPO" in caplog.text
    # The frozen reference copy is not published: one adapter.
    assert not any(name.startswith("adapter/ref") for name in manifest["files"])
    assert manifest["base_precision"]["dequantized_from"] is None  # the tiny Llama is a full-precision checkpoint


@pytest.mark.slow
def test_harness_scores_the_published_model_and_the_gate_refuses_a_worse_one(
        tiny_llama_dir, qa_csv, converter_dir, tmp_path, one_torch_thread):  # noqa: F811
    """End to end with a two-question golden subset on the tests' small index: the harness serves the new model
    through real redis/memory/inference processes and its figures land in the manifest; a published model that
    scored higher blocks the next one, which leaves the published directory as it was, unless forced."""
    from jenkins_assistant.training.publish import PublishRefused

    index = Path(__file__).resolve().parents[2] / "var" / "test-index"
    if not (index / "manifest.json").is_file():
        pytest.skip("the tests' small index is built by tests/inference/test_retrieval.py")
    data_args, train_args, model_args = tiny_args(tiny_llama_dir, qa_csv, converter_dir, tmp_path)
    train_args.max_steps, train_args.resume = 4, "never"
    train_args.run_harness, train_args.harness_index_dir = True, str(index)
    train_args.harness_limit, train_args.harness_max_tokens = 2, 16

    first = main(data_args, train_args, model_args)
    harness = first.manifest["harness"]
    assert harness["model"]["items"] == 2 and harness["model"]["errors"] == 0
    assert harness["base"] is None  # an HF base has no GGUF to serve
    assert harness["setup"]["limit"] == 2 and first.manifest["publish_gate"]["allowed"]

    # Pretend the published model scored perfectly: the next one cannot beat it.
    manifest_path = first.publish_dir / "manifest.json"
    published = json.loads(manifest_path.read_text())
    published["harness"]["model"]["keyfact_recall"] = 1.0
    manifest_path.write_text(json.dumps(published))
    train_args.output_dir = str(tmp_path / "run2")
    with pytest.raises(PublishRefused, match="below the published model's 1.000"):
        main(data_args, train_args, model_args)
    assert json.loads(manifest_path.read_text()) == published  # the old model is still the one served
    train_args.force_publish = True
    forced = main(data_args, train_args, model_args).manifest
    assert forced["publish_gate"]["forced"] and forced["created_at"] >= published["created_at"]
