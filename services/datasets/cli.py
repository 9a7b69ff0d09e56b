"""`jenkins-assistant dataset ...`: training data from rated answers and from the documents.

    jenkins-assistant dataset export --memory-target 127.0.0.1:50061 \
        --training-set ../shared/data/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv \
        --out var/datasets/feedback

writes a new version `var/datasets/feedback/<version>/` with `sft.jsonl` (trl SFTTrainer "messages" rows),
`dpo.jsonl` (trl DPOTrainer prompt/chosen/rejected rows) and `report.json` (counts, drops by reason), and points
`latest` at it; nothing when the content is unchanged. The memory service must grant the caller the export-feedback
scope when it checks credentials.

    jenkins-assistant dataset generate --shared-data ../shared/data --source jenkins-docs \
        --inference-target 127.0.0.1:50052 --limit 20 --out var/datasets/generated

asks the served model (or `--openai-url`, any OpenAI-compatible server) for a question/answer pair per document
section, keeps those the section supports (`generate.py`) and writes a version with `qa.csv` (question, answer,
url, license, section: the training job's CSV) and `rows.jsonl`; a second run resumes where the last one stopped.

    jenkins-assistant dataset grounded --qa-csv ../shared/data/qa/.../jenkins_docs_qa_pairs.csv --index-dir var/index \
        --out var/datasets/grounded

gives each question/answer pair the passages the service would put in its prompt (the index searched as the service
is configured), cites the one that supports the answer, drops pairs no indexed passage supports and the golden
questions, and writes a version with `grounded.csv` (question, answer, passages: the training job's served-layout
CSV) and `report.json` (counts by outcome, drops by reason).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.datasets.feedback import Rated, build_export, pair_identity, question_key, row_question
from jenkins_assistant.datasets.versions import jsonl, write_version

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])

SFT_FILE, DPO_FILE = "sft.jsonl", "dpo.jsonl"
QA_FILE, ROWS_FILE, PROGRESS_FILE = "qa.csv", "rows.jsonl", "progress.jsonl"
QA_COLUMNS = ["question", "answer", "url", "license", "section"]


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


class InferenceGenerator:
    """Completes a prompt with the served model: the inference service's Ask, without retrieval (the section is in
    the prompt), greedy."""

    def __init__(self, target: str, token: str, timeout_s: float = 600.0) -> None:
        from jenkins_assistant.common.auth import bearer_metadata
        from jenkins_assistant.common.channels import client_channel
        from jenkins_assistant.v1 import inference_pb2, inference_pb2_grpc

        self._pb = inference_pb2
        self._channel = client_channel(target)
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._metadata = bearer_metadata(token or None)
        self._timeout_s = timeout_s
        self.name = self._stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), timeout=30,
                                            metadata=self._metadata).model

    def complete(self, prompt: str, max_tokens: int) -> str:
        from jenkins_assistant.v1 import common_pb2

        options = common_pb2.GenerationOptions(max_tokens=max_tokens, temperature=0.0, disable_retrieval=True)
        reply = self._stub.Ask(self._pb.AskRequest(question=prompt, owner="dataset-generate", options=options),
                               timeout=self._timeout_s, metadata=self._metadata)
        return reply.text

    def close(self) -> None:
        self._channel.close()


class OpenAIGenerator:
    """Completes a prompt with an OpenAI-compatible server's /chat/completions (vLLM, llama-server, ...)."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout_s: float = 600.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.name = model or self._http.get("/models").raise_for_status().json()["data"][0]["id"]

    def complete(self, prompt: str, max_tokens: int) -> str:
        reply = self._http.post("/chat/completions", json={
            "model": self.name, "messages": [{"role": "user", "content": prompt}], "temperature": 0.0,
            "max_tokens": max_tokens}).raise_for_status().json()
        return reply["choices"][0]["message"]["content"] or ""

    def close(self) -> None:
        self._http.close()


def _documents(documents: Path | None, shared_data: Path | None, sources: list[str]):
    from jenkins_assistant.common.records import read_documents_jsonl

    if documents is not None:
        return read_documents_jsonl(documents)
    if shared_data is None:
        raise typer.BadParameter("give --documents (a documents.jsonl) or --shared-data")
    from jenkins_assistant.scraper.shared_sources import SHARED_FOLDERS, iter_shared_documents

    return iter_shared_documents(shared_data, sources or SHARED_FOLDERS)


def _read_progress(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                break  # a line cut by a kill: that section is tried again
    return records


@app.command()
def generate(
    documents: Annotated[Path | None, typer.Option(exists=True, help="A documents.jsonl (the scraper's).")] = None,
    shared_data: Annotated[Path | None, typer.Option(exists=True, help="Or the shared data folder.")] = None,
    source: Annotated[list[str], typer.Option(help="Shared data folders to use (repeatable); default: all.")]
    = [],  # noqa: B006
    inference_target: Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TARGET",
                                                  help="host:port of the inference service.")] = "127.0.0.1:50052",
    token: Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TOKEN", help="Its bearer token.")] = "",
    openai_url: Annotated[str, typer.Option(help="Use this OpenAI-compatible API instead (e.g. "
                                                 "http://127.0.0.1:8080/v1).")] = "",
    openai_model: Annotated[str, typer.Option(help="Model name for --openai-url; default: its first.")] = "",
    openai_api_key: Annotated[str, typer.Option(envvar="OPENAI_API_KEY", help="Key for --openai-url.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="Sections to try in this run (then it stops; the next run "
                                                   "resumes).")] = 20,
    max_tokens: Annotated[int, typer.Option(min=16, help="Longest generated reply.")] = 200,
    out: Annotated[Path, typer.Option(help="Folder of the versions and of progress.jsonl.")] = Path(
        "var/datasets/generated"),
) -> None:
    """Question/answer pairs per document section from the served model, kept when the section supports them."""
    from jenkins_assistant.datasets.generate import pending_sections, try_section

    out.mkdir(parents=True, exist_ok=True)
    progress_path = out / PROGRESS_FILE
    progress = _read_progress(progress_path)
    done = {record["key"] for record in progress}
    generator = (OpenAIGenerator(openai_url, openai_model, openai_api_key) if openai_url
                 else InferenceGenerator(inference_target, token))
    tried = kept = 0
    try:
        with open(progress_path, "a", encoding="utf-8") as log:
            for section in pending_sections(_documents(documents, shared_data, source), done):
                if tried >= limit:
                    break
                outcome = try_section(section, generator, max_tokens)
                record = outcome.progress_record(generator.name)
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
                log.flush()  # one line per section: a stop anywhere loses at most the section in hand
                progress.append(record)
                tried += 1
                kept += outcome.status == "kept"
                why = f": {outcome.reason}" if outcome.reason else ""
                typer.echo(f"{outcome.status}: {section.url} ({section.heading}){why}", err=True)
    finally:
        generator.close()
    rows, questions = [], set()
    for record in progress:
        # One row per question: two sections may well raise the same one (the first kept wins).
        if record.get("status") == "kept" and (key := question_key(record["row"]["question"])) not in questions:
            questions.add(key)
            rows.append(record["row"])
    reasons: dict[str, int] = {}
    for record in progress:
        if record.get("status") != "kept":
            reason = record.get("reason", "").split(":")[0].split(" (")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
    report = {"counts": {"sections_tried": len(progress), "rows": len(rows),
                         "kept": sum(record.get("status") == "kept" for record in progress), "tried_this_run": tried,
                         "kept_this_run": kept}, "rejected": reasons, "model": generator.name}
    folder, written = write_version(out, {QA_FILE: _qa_csv(rows), ROWS_FILE: jsonl(rows)}, report)
    typer.echo(f"{folder}: {len(rows)} pairs kept of {len(progress)} sections tried ({kept} of {tried} this run; "
               f"{'written' if written else 'unchanged'})")


def _qa_csv(rows: list[dict]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QA_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


GROUNDED_FILE = "grounded.csv"
GROUNDED_COLUMNS = ["question", "answer", "passages", "url", "section", "status"]


def _read_qa(path: Path) -> list[tuple[str, str]]:
    rows = _rows(path)
    if rows and not {"question", "answer"} <= rows[0].keys():
        raise typer.BadParameter(f"{path} needs question and answer columns (has {sorted(rows[0])})")
    pairs = [(str(row["question"] or "").strip(), str(row["answer"] or "").strip()) for row in rows]
    return [(question, answer) for question, answer in pairs if question and answer]


@app.command()
def grounded(
    qa_csv: Annotated[list[Path], typer.Option(exists=True, help="Question/answer CSVs (repeatable): the seed's "
                                                                   "pairs, `dataset generate`'s qa.csv.")],
    index_dir: Annotated[Path, typer.Option(exists=True, help="The retrieval index the service answers from.")] = Path(
        "var/index"),
    k: Annotated[int, typer.Option(min=0, max=20, help="Passages per prompt; 0: the service's own "
                                                      "(INFERENCE_RETRIEVAL_K).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the supporting passage's position among the others.")] = 0,
    exclude_golden: Annotated[bool, typer.Option(help="Leave out the evaluation harness's golden questions.")] = True,
    limit: Annotated[int, typer.Option(min=0, help="Pairs to try (0: all).")] = 0,
    out: Annotated[Path, typer.Option(help="Folder of the versions.")] = Path("var/datasets/grounded"),
) -> None:
    """Question/answer pairs in the served layout: the passages the index gives each question, the one that supports
    the answer among them, and the answer citing it (`grounded.py`); the training job reads the CSV's passages."""
    import random
    from collections import Counter

    from jenkins_assistant.common.grounded_prompt import Passage
    from jenkins_assistant.datasets.grounded import DROPPED, ground_pair
    from jenkins_assistant.inference.config import InferenceSettings
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex

    # Retrieval exactly as the service is configured (INFERENCE_* variables: passages, hybrid, neighbours, fusion
    # weights), so that the model is trained on the prompt it is served.
    settings = InferenceSettings(index_dir=str(index_dir))
    k = k or settings.retrieval_k
    index = RetrievalIndex.from_settings(settings, load_embedder(settings))

    def search(query: str, depth: int) -> list[Passage]:
        return [hit.passage for hit in index.search(query, depth)]

    excluded: set[str] = set()
    if exclude_golden:
        from jenkins_assistant.evaluation.golden import load_golden

        excluded = {question_key(item.question) for item in load_golden()}
    pairs, seen = [], set()
    for path in qa_csv:
        for question, answer in _read_qa(path):
            if (key := question_key(question)) not in seen:
                seen.add(key)
                pairs.append((question, answer))
    rng = random.Random(seed)
    rows, counts, reasons = [], Counter({"pairs": len(pairs), "golden_excluded": 0}), Counter()
    for question, answer in pairs[: limit or None]:
        if question_key(question) in excluded:
            counts["golden_excluded"] += 1
            continue
        example = ground_pair(question, answer, search, k, rng)
        counts[example.status] += 1
        if example.status == DROPPED:
            reasons[example.reason] += 1
        else:
            rows.append(example.row())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GROUNDED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "passages": json.dumps(row["passages"], ensure_ascii=False)} for row in rows)
    report = {"counts": dict(counts), "dropped": dict(reasons), "k": k, "seed": seed, "index": str(index_dir.resolve()),
              "index_corpus_sha256": index.manifest.get("corpus_sha256"), "inputs": [str(path) for path in qa_csv],
              "retrieval": {"hybrid": index.hybrid, "passage_neighbors": settings.passage_neighbors}}
    folder, written = write_version(out, {GROUNDED_FILE: buffer.getvalue()}, report)
    typer.echo(f"{folder}: {len(rows)} examples of {len(pairs)} pairs ({dict(counts)}; dropped: {dict(reasons)}; "
               f"{'written' if written else 'unchanged'})")
