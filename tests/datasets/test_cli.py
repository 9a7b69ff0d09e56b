"""`jenkins-assistant dataset export` as a process, against a real memory service on a real Redis: the files load
as trl takes them, owners and sessions are not in them, the training set is respected, versions are kept."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import grpc

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.clients import token_sha256
from jenkins_assistant.common.records import AnswerRecord
from jenkins_assistant.datasets.feedback import question_key
from jenkins_assistant.v1 import common_pb2, memory_pb2, memory_pb2_grpc

INFERENCE_TOKEN, EXPORT_TOKEN = "inference-token", "export-token"


def give_and_rate(stub, answer_id: str, question: str, answer: str, rating: int, corrected: str = "") -> None:
    """As the inference service does: record the answer of a user in a session, then the user's rating."""
    metadata = bearer_metadata(INFERENCE_TOKEN)
    record = AnswerRecord(answer_id=answer_id, owner="alice@example.org", session_id="session-of-alice",
                          question=question, standalone_question=question, answer_text=answer, model="SmolLM2",
                          model_quant="Q4_1", finish_reason="stop", source_urls=["https://www.jenkins.io/doc/book/"])
    stub.RecordAnswer(memory_pb2.RecordAnswerRequest(answer=record.to_pb()), metadata=metadata)
    stub.RateAnswer(memory_pb2.RateAnswerRequest(
        answer_id=answer_id, session_id="session-of-alice", owner="alice@example.org",
        feedback=memory_pb2.AnswerFeedback(rating=rating, corrected_answer=corrected)), metadata=metadata)


def export(target: str, out: Path, *training_sets: Path, token: str = EXPORT_TOKEN) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "jenkins_assistant.cli", "dataset", "export", "--memory-target", target,
            "--token", token, "--out", str(out)]
    for path in training_sets:
        args += ["--training-set", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_export_writes_trl_rows_without_owners_deduplicated_and_versioned(start_memory, tmp_path):
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({
        "inference": {"token_sha256": token_sha256(INFERENCE_TOKEN), "scopes": ["assert-owner"]},
        "exporter": {"token_sha256": token_sha256(EXPORT_TOKEN), "scopes": ["export-feedback"]},
    }))
    memory = start_memory(MEMORY_AUTH_CLIENTS_FILE=str(clients))
    with grpc.insecure_channel(memory.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        give_and_rate(stub, "a1", "How do I archive artifacts?", "Use `archiveArtifacts`.", common_pb2.RATING_HELPFUL)
        give_and_rate(stub, "a2", "How do I restart Jenkins safely?", "Pull the plug.", common_pb2.RATING_NOT_HELPFUL,
                      corrected="Run `java -jar jenkins-cli.jar safe-restart`.")
        give_and_rate(stub, "a3", "What is a Jenkinsfile?", "A text file with the Pipeline.", common_pb2.RATING_HELPFUL)
    training = tmp_path / "qa.csv"
    training.write_text("Question,Answer\nwhat is a jenkinsfile?,A file defining a Pipeline.\n")
    out = tmp_path / "feedback"

    # Without the export scope (the inference service's credential) the memory service refuses.
    refused = export(memory.target, out, training, token=INFERENCE_TOKEN)
    assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr

    first = export(memory.target, out, training)
    assert first.returncode == 0, first.stderr
    version = (out / "latest").resolve()
    sft = [json.loads(line) for line in (version / "sft.jsonl").read_text().splitlines()]
    dpo = [json.loads(line) for line in (version / "dpo.jsonl").read_text().splitlines()]
    assert [row["messages"][-1]["content"] for row in sft] == ["Use `archiveArtifacts`.",
                                                               "Run `java -jar jenkins-cli.jar safe-restart`."]
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in dpo] == [
        ("Run `java -jar jenkins-cli.jar safe-restart`.", "Pull the plug.")]
    report = json.loads((version / "report.json").read_text())
    assert report["counts"]["rated_answers"] == 3 and report["dropped"] == {"sft_in_training_set": 1}
    for name in ("sft.jsonl", "dpo.jsonl", "report.json"):
        text = (version / name).read_text()
        assert "alice" not in text and "session-of-alice" not in text

    # The formats trl's trainers take: conversational rows, loadable as a datasets.Dataset.
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    sft_set = load_dataset("json", data_files=str(version / "sft.jsonl"), split="train")
    dpo_set = load_dataset("json", data_files=str(version / "dpo.jsonl"), split="train")
    assert all(is_conversational(row) for row in sft_set) and set(sft_set.column_names) >= {"messages"}
    assert all(is_conversational(row) for row in dpo_set)
    assert set(dpo_set.column_names) >= {"prompt", "chosen", "rejected"}

    # Unchanged data: no new version. Against the training set plus the last export: nothing new at all.
    second = export(memory.target, out, training)
    assert second.returncode == 0 and "unchanged" in second.stdout and (out / "latest").resolve() == version
    third = export(memory.target, out, training, version)
    assert third.returncode == 0, third.stderr
    newest = (out / "latest").resolve()
    assert newest != version and (newest / "sft.jsonl").read_text() == "" and (newest / "dpo.jsonl").read_text() == ""


def test_generate_asks_the_served_model_records_each_section_and_resumes(inference_process, tmp_path):
    """The real inference service (SmolLM2 in the tests) answers; whether its pairs pass the checks is the model's
    business, the run's is to try each section once, record what it decided and go on where it stopped."""
    from jenkins_assistant.common.records import CorpusDocument, write_documents_jsonl
    from tests.datasets.test_generate import SECTION
    from tests.inference.fixtures import TEST_TOKEN

    documents = tmp_path / "documents.jsonl"
    write_documents_jsonl(documents, [
        CorpusDocument(id=f"d{i}", url=f"https://www.jenkins.io/doc/pipeline/tour/page-{i}/", title=f"Artifacts {i}",
                       text=f"# Artifacts {i}\n\n{SECTION}\n\n## Fingerprints {i}\n\n{SECTION}", source="jenkins_docs",
                       license="CC-BY-SA-4.0")
        for i in range(2)])
    out = tmp_path / "generated"

    def run(limit: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "jenkins_assistant.cli", "dataset", "generate", "--documents", str(documents),
             "--inference-target", inference_process.target, "--token", TEST_TOKEN, "--limit", str(limit),
             "--max-tokens", "64", "--out", str(out)],
            capture_output=True, text=True, timeout=600, check=False)

    first = run(1)
    assert first.returncode == 0, first.stderr
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert len(progress) == 1 and progress[0]["url"].endswith("/page-0/")
    second = run(10)  # resumes: the three sections left, each once
    assert second.returncode == 0, second.stderr
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert len(progress) == 4 and len({record["key"] for record in progress}) == 4
    assert all(record["status"] in ("kept", "rejected") for record in progress)
    # The latest version is the last run that changed the rows (a run adding nothing new writes none).
    report = json.loads(((out / "latest").resolve() / "report.json").read_text())
    kept = [record["row"] for record in progress if record["status"] == "kept"]
    assert report["model"] == "SmolLM2-135M-Instruct" and 1 <= report["counts"]["sections_tried"] <= 4
    with open((out / "latest").resolve() / "qa.csv", encoding="utf-8", newline="") as lines:
        rows = list(csv.DictReader(lines))
    # One row per question: the two pages here are the same text, so the same question may come twice.
    assert rows and list(rows[0]) == ["question", "answer", "url", "license", "section"] if kept else rows == []
    assert len(rows) == len({question_key(r["question"]) for r in kept}) == report["counts"]["rows"]
    assert all(row["license"] == "CC-BY-SA-4.0" and row["url"].startswith("https://www.jenkins.io/") for row in kept)
    third = run(5)  # nothing left to try: nothing new written
    assert third.returncode == 0 and "0 of 0 this run; unchanged" in third.stdout


def test_grounded_gives_each_pair_the_served_passages_and_cites_the_one_that_supports_it(sample_index, tmp_path):
    """`dataset grounded` on the tests' sample index (real embedder, FAISS and BM25, as the service searches): pairs
    whose answers are sentences of indexed chunks keep the served passages and cite a supporting one; a pair nothing
    in the index supports is dropped, a golden question is left out, and the trainer reads the passages back."""
    from jenkins_assistant.common.grounded_prompt import Passage
    from jenkins_assistant.datasets.generate import support
    from jenkins_assistant.evaluation.golden import load_golden
    from jenkins_assistant.training.data import read_pairs

    chunks = [json.loads(line) for line in (sample_index / "chunks.jsonl").read_text().splitlines()]
    prose = [c for c in chunks if c["source"] == "jenkins_docs" and len(c["text"]) > 500 and "```" not in c["text"]]
    pairs = []
    for chunk in prose[:: max(1, len(prose) // 3)][:3]:
        sentences = [s for s in chunk["text"].replace("\n", " ").split(". ") if len(s.split()) > 8]
        pairs.append((f"What does the {chunk['section']} documentation say?", sentences[0].strip() + "."))
    pairs.append(("Which quantum scheduler does Jenkins ship?",
                  "Jenkins ships zorblaxQuantumScheduler, which reorders builds by entanglement."))
    pairs.append((load_golden()[0].question, "Whatever the answer is."))
    qa_csv = tmp_path / "qa.csv"
    with open(qa_csv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Question", "Answer"])
        writer.writerows(pairs)
    out = tmp_path / "grounded"
    done = subprocess.run([sys.executable, "-m", "jenkins_assistant.cli", "dataset", "grounded", "--qa-csv",
                           str(qa_csv), "--index-dir", str(sample_index), "--k", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    version = (out / "latest").resolve()
    report = json.loads((version / "report.json").read_text())
    assert report["counts"]["golden_excluded"] == 1 and report["counts"]["pairs"] == 5
    assert report["dropped"].get("no indexed passage supports the answer", 0) >= 1
    with open(version / "grounded.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(not row["answer"].startswith("Jenkins ships zorblax") for row in rows)
    assert len(rows) == report["counts"].get("retrieved", 0) + report["counts"].get("inserted", 0)
    for row in rows:
        passages = [Passage(**p) for p in json.loads(row["passages"])]
        cited = int(row["answer"].rsplit("[", 1)[1].split("]")[0])
        assert len(passages) == 3 and passages[cited - 1].url == row["url"]
        assert support(row["answer"], f"{passages[cited - 1].heading}\n{passages[cited - 1].text}")[0]
    trained = read_pairs(version / "grounded.csv")  # the training job's reader: passages and all
    assert [len(pair.passages) for pair in trained] == [3] * len(rows)
    assert trained[0].user_turn.startswith("Documentation passages:\n\n[1] ")
