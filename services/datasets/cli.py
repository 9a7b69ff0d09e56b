"""`jenkins-assistant dataset ...`: training data from rated answers (and, later, from the documents).

    jenkins-assistant dataset export --memory-target 127.0.0.1:50061 \
        --training-set ../shared/data/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv \
        --out var/datasets/feedback

writes a new version `var/datasets/feedback/<version>/` with `sft.jsonl` (trl SFTTrainer "messages" rows),
`dpo.jsonl` (trl DPOTrainer prompt/chosen/rejected rows) and `report.json` (counts, drops by reason), and points
`latest` at it; nothing when the content is unchanged. The memory service must grant the caller the export-feedback
scope when it checks credentials.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.datasets.feedback import Rated, build_export, pair_identity, question_key, row_question
from jenkins_assistant.datasets.versions import jsonl, write_version

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])

SFT_FILE, DPO_FILE = "sft.jsonl", "dpo.jsonl"


def fetch_rated(target: str, token: str, page_size: int = 500, timeout_s: float = 30.0) -> list[Rated]:
    """Every rated answer the memory service still keeps (ListRatedAnswers, page by page)."""
    import grpc

    from jenkins_assistant.common.auth import bearer_metadata
    from jenkins_assistant.common.channels import client_channel
    from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord
    from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

    rated: list[Rated] = []
    with client_channel(target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        token_seen = ""
        while True:
            try:
                page = stub.ListRatedAnswers(memory_pb2.ListRatedAnswersRequest(page_size=page_size,
                                                                                page_token=token_seen),
                                             timeout=timeout_s, metadata=bearer_metadata(token or None))
            except grpc.RpcError as exc:
                raise typer.BadParameter(f"memory service {target}: {exc.code().name}: {exc.details()}") from None
            rated += [Rated(AnswerRecord.from_pb(r.answer), AnswerFeedback.from_pb(r.feedback)) for r in page.answers]
            if not page.next_page_token:
                return rated
            token_seen = page.next_page_token


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as lines:
            return [{(k or "").strip().lower(): v for k, v in row.items()} for row in csv.DictReader(lines)]
    if path.suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    raise typer.BadParameter(f"{path}: training sets are .csv (a question column) or .jsonl (trl rows)")


def read_training_sets(paths: list[Path]) -> tuple[set[str], set[tuple[str, str, str]], int]:
    """Question keys and pair identities of the given training files (a folder: its .csv and .jsonl files); and how
    many rows were read."""
    questions: set[str] = set()
    pairs: set[tuple[str, str, str]] = set()
    count = 0
    for path in paths:
        files = sorted([*path.glob("*.csv"), *path.glob("*.jsonl")]) if path.is_dir() else [path]
        for file in files:
            for row in _rows(file):
                count += 1
                if (identity := pair_identity(row)) is not None:
                    pairs.add(identity)
                elif question := row_question(row):
                    questions.add(question_key(question))
    return questions, pairs, count


@app.command()
def export(
    memory_target: Annotated[str, typer.Option(envvar="MEMORY_TARGET",
                                               help="host:port of the memory service keeping the rated answers.")]
    = "127.0.0.1:50061",
    token: Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_MEMORY_TOKEN",
                                       help="Bearer token of a client with the export-feedback scope.")] = "",
    training_set: Annotated[list[Path], typer.Option(
        exists=True, help="Existing training data to deduplicate against (repeatable): a CSV with a question column, "
        "trl JSONL rows, or a folder of them (e.g. an earlier export version).")] = [],  # noqa: B006
    out: Annotated[Path, typer.Option(help="Folder of the versioned exports.")] = Path("var/datasets/feedback"),
) -> None:
    """Rated answers as trl SFT rows and DPO preference pairs, without owners or session ids."""
    rated = fetch_rated(memory_target, token)
    questions, pairs, known_rows = read_training_sets(training_set)
    result = build_export(rated, questions, pairs)
    ratings = {"helpful": 0, "not_helpful": 0, "corrected": 0}
    for item in rated:
        ratings[item.feedback.rating] = ratings.get(item.feedback.rating, 0) + 1
        ratings["corrected"] += bool(item.correction)
    report = {"counts": {"rated_answers": len(rated), **ratings, "sft_rows": len(result.sft),
                         "preference_pairs": len(result.pairs), "training_set_rows": known_rows},
              "dropped": result.dropped, "training_sets": [str(p) for p in training_set],
              "formats": {SFT_FILE: "trl SFTTrainer conversational (messages)",
                          DPO_FILE: "trl DPOTrainer conversational (prompt, chosen, rejected)"}}
    folder, written = write_version(out, {SFT_FILE: jsonl(result.sft), DPO_FILE: jsonl(result.pairs)}, report)
    state = "written" if written else "unchanged, nothing written"
    typer.echo(f"{folder}: {len(result.sft)} SFT rows, {len(result.pairs)} preference pairs from {len(rated)} rated "
               f"answers ({state}); dropped: {json.dumps(result.dropped, sort_keys=True)}")
