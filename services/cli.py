"""`jenkins-assistant`: ask the inference service a Jenkins question from the terminal.

    jenkins-assistant ask "How do I archive artifacts in a declarative pipeline?"
    jenkins-assistant chat --session my-session          # interactive; the session keeps the conversation
    jenkins-assistant explain build.log                  # why did this build fail? (- reads stdin; --json)
    jenkins-assistant eval --out var/eval/full.json      # answer quality on the golden set
    jenkins-assistant eval --compare before.json after.json

The sources are printed as soon as they are found (before the model's first token, which takes seconds on
a small CPU), then the answer streams as it is generated.
"""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.common.grounded_prompt import heading_path
from jenkins_assistant.datasets.cli import app as dataset_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
# `jenkins-assistant dataset export ...`: training data from rated answers (its own module: no service imports here).
app.add_typer(dataset_app, name="dataset")

Target = Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TARGET", help="host:port of the inference service, or a gRPC target such as dns:///host:port (calls spread "
                                  "round-robin over every address it resolves to).")]
Token = Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TOKEN", help="Bearer token, if the service needs one.")]
Owner = Annotated[str, typer.Option(help="Who is asking (sessions belong to their owner).")]
MaxTokens = Annotated[int, typer.Option(min=0, help="Longest answer in tokens; 0 = server default.")]
Timeout = Annotated[float, typer.Option(min=1, help="Seconds before giving up on an answer.")]
NoRetrieval = Annotated[bool, typer.Option("--no-retrieval", help="Answer without searching the documentation.")]
DEFAULT_TARGET = "127.0.0.1:50052"
DEFAULT_TIMEOUT_S = 300.0
# The inference service's default console-log limit (BUILD_LOG_MAX_LOG_BYTES).
DEFAULT_MAX_LOG_BYTES = 5 * 1024 * 1024


def _default_owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return os.environ.get("USER", "anonymous")


def _stream_answer(stub, question: str, session: str, owner: str, token: str, max_tokens: int, timeout: float,
                   no_retrieval: bool) -> int:
    import grpc

    from jenkins_assistant.common.auth import bearer_metadata
    from jenkins_assistant.v1 import common_pb2, inference_pb2

    request = inference_pb2.ChatRequest(
        question=question, session_id=session, owner=owner or _default_owner(),
        options=common_pb2.GenerationOptions(max_tokens=max_tokens, disable_retrieval=no_retrieval),
    )
    out = sys.stdout
    wrote_text = False
    try:
        for event in stub.Chat(request, timeout=timeout, metadata=bearer_metadata(token or None)):
            kind = event.WhichOneof("event")
            if kind == "metadata":
                standalone = event.metadata.standalone_question
                if standalone and standalone.strip().lower() != question.strip().lower():
                    typer.secho(f"searched for: {standalone}", dim=True, err=True)
                for warning in event.metadata.warnings:
                    typer.secho(f"note: {warning}", fg=typer.colors.YELLOW, err=True)
            elif kind == "delta":
                out.write(event.delta.text)
                out.flush()
                wrote_text = True
            elif kind == "sources" and event.sources.sources:
                # Before the answer from this service; after it from older ones, which sent sources last.
                _print_sources(out, event.sources.sources, wrote_text)
            elif kind == "finished":
                _print_finished(event.finished)
    except grpc.RpcError as exc:
        typer.secho(f"\nerror: {exc.code().name}: {exc.details()}", fg=typer.colors.RED, err=True)
        return 1
    out.write("\n")
    return 0


def _print_sources(out, sources, wrote_text: bool) -> None:
    out.write("\n\nSources:\n" if wrote_text else "Sources:\n")
    for number, source in enumerate(sources, 1):
        out.write(f"  [{source.citation or number}] {heading_path(source.title, source.section)} - {source.url}\n")
    if not wrote_text:
        out.write("\n")
    out.flush()


def _print_finished(finished) -> None:
    for warning in finished.warnings:
        typer.secho(f"\nnote: {warning}", fg=typer.colors.YELLOW, err=True)
    usage = finished.usage
    typer.secho(f"\n({usage.completion_tokens} tokens, first after {usage.time_to_first_token_ms:.0f} ms, "
                f"{usage.tokens_per_s:.1f} tokens/s)", dim=True, err=True)


def _stub(target: str):
    from jenkins_assistant.common.channels import client_channel
    from jenkins_assistant.v1 import inference_pb2_grpc

    channel = client_channel(target)
    return channel, inference_pb2_grpc.InferenceServiceStub(channel)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your Jenkins question.")],
    target: Target = DEFAULT_TARGET,
    token: Token = "",
    session: Annotated[str, typer.Option(help="Session to read and extend; empty = a one-off question.")] = "",
    owner: Owner = "",
    max_tokens: MaxTokens = 0,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    no_retrieval: NoRetrieval = False,
) -> None:
    """Stream one answer with its sources."""
    channel, stub = _stub(target)
    with channel:
        code = _stream_answer(stub, question, session, owner, token, max_tokens, timeout, no_retrieval)
    raise typer.Exit(code)


@app.command()
def chat(
    target: Target = DEFAULT_TARGET,
    token: Token = "",
    session: Annotated[str, typer.Option(help="Session id to continue; empty = a new one.")] = "",
    owner: Owner = "",
    max_tokens: MaxTokens = 0,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    no_retrieval: NoRetrieval = False,
) -> None:
    """Interactive chat: each question sees the previous exchanges of the session. Empty line or Ctrl-D quits."""
    session = session or f"cli-{uuid.uuid4().hex[:12]}"
    typer.secho(f"session {session} (continue it later with --session {session})", dim=True, err=True)
    channel, stub = _stub(target)
    with channel:
        while True:
            try:
                question = input("\nyou> ").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not question:
                break
            _stream_answer(stub, question, session, owner, token, max_tokens, timeout, no_retrieval)


def read_log_tail(path: str, max_bytes: int) -> tuple[bytes, int]:
    """The log (`-` = stdin) and its full size; a log over `max_bytes` is cut to its last `max_bytes`, from the
    first whole line: a build fails at the end of its log, and the server refuses (not cuts) an oversized one. A
    file is read from its tail only, so a 50 MB log costs 5 MB of memory."""
    if path == "-":
        data = sys.stdin.buffer.read()
        size = len(data)
        data = data[-max_bytes:] if size > max_bytes else data
    else:
        with open(path, "rb") as log_file:
            size = log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, size - max_bytes))
            data = log_file.read(max_bytes)
    if size > max_bytes:
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            data = data[newline + 1:]
    return data, size


def _print_facts(facts, reused: bool) -> None:
    """What the log says, before the model's first token (seconds away on a CPU)."""
    stage = " > ".join(facts.stage_path) or facts.stage
    rows = [
        ("Result", facts.result),
        ("Failure", f"{facts.signature_label} ({facts.signature_id})"),
        ("Stage", stage + (f" (branch {facts.parallel_branch})" if facts.parallel_branch else "")),
        ("Step", facts.step),
        ("Exception", ": ".join(filter(None, [facts.exception_class, facts.exception_message]))),
        ("Root cause", ": ".join(filter(None, [facts.root_cause_class, facts.root_cause_message]))
         if facts.root_cause_class != facts.exception_class else ""),
        ("Exit code", str(facts.exit_code) if facts.HasField("exit_code") else ""),
        ("First error", f"line {facts.first_error_line_number}: {facts.first_error_line}"
         if facts.first_error_line else ""),
        ("Masked", f"{facts.masked_count} secret value(s)" if facts.masked_count else ""),
        ("Fingerprint", facts.fingerprint + (" (explained before: reused)" if reused else "")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        if value:
            typer.echo(f"{name + ':':<{width + 1}} {value}")
    typer.echo("")


@app.command()
def explain(
    log: Annotated[str, typer.Argument(help="The build's console log file, or - to read it from stdin.")],
    target: Target = DEFAULT_TARGET,
    token: Token = "",
    owner: Owner = "",
    job: Annotated[str, typer.Option(help="Job name, e.g. folder/my-pipeline.")] = "",
    build: Annotated[int, typer.Option(min=0, help="Build number; 0 = unknown.")] = 0,
    jenkins_version: Annotated[str, typer.Option(help="Jenkins version of the controller, e.g. 2.452.3.")] = "",
    max_bytes: Annotated[int, typer.Option(
        min=1024, help="Send at most the log's last N bytes (the server's BUILD_LOG_MAX_LOG_BYTES; it refuses a "
        "longer log).")] = DEFAULT_MAX_LOG_BYTES,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole structured result as JSON (facts, "
                                                         "summary, probable cause, fix steps, sources).")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Explain anew even if this failure was explained "
                                                            "before.")] = False,
    max_tokens: MaxTokens = 0,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    no_retrieval: NoRetrieval = False,
) -> None:
    """Explain why a build failed: the facts found in its log, then the cause and fix, citing the documentation."""
    import grpc
    from google.protobuf.json_format import MessageToJson

    from jenkins_assistant.common.auth import bearer_metadata
    from jenkins_assistant.common.channels import client_channel
    from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2

    try:
        data, size = read_log_tail(log, max_bytes)
    except OSError as exc:
        typer.secho(f"error: cannot read {log}: {exc.strerror or exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if size > max_bytes:
        typer.secho(f"note: the log has {size} bytes; explaining its last {len(data)} (--max-bytes {max_bytes})",
                    fg=typer.colors.YELLOW, err=True)
    fields = {"log": data, "job_name": job, "build_number": build, "jenkins_version": jenkins_version,
              "owner": owner or _default_owner(), "refresh": refresh,
              "options": common_pb2.GenerationOptions(max_tokens=max_tokens, disable_retrieval=no_retrieval)}
    metadata = bearer_metadata(token or None)
    with client_channel(target) as channel:
        stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
        try:
            if as_json:
                reply = stub.GetBuildLogExplanation(build_log_pb2.GetBuildLogExplanationRequest(**fields),
                                                    timeout=timeout, metadata=metadata)
                typer.echo(MessageToJson(reply, preserving_proto_field_name=True, ensure_ascii=False))
                raise typer.Exit(0)
            out = sys.stdout
            wrote_text = False
            for event in stub.ExplainBuildLog(build_log_pb2.ExplainBuildLogRequest(**fields), timeout=timeout,
                                              metadata=metadata):
                kind = event.WhichOneof("event")
                if kind == "metadata":
                    _print_facts(event.metadata.facts, event.metadata.reused)
                    for warning in event.metadata.answer.warnings:
                        typer.secho(f"note: {warning}", fg=typer.colors.YELLOW, err=True)
                elif kind == "sources" and event.sources.sources:
                    _print_sources(out, event.sources.sources, wrote_text)
                elif kind == "delta":
                    out.write(event.delta.text)
                    out.flush()
                    wrote_text = True
                elif kind == "finished":
                    _print_finished(event.finished)
            out.write("\n")
        except grpc.RpcError as exc:
            typer.secho(f"\nerror: {exc.code().name}: {exc.details()}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None


class Sampling(str, Enum):
    """How the harness's answers are decoded."""

    greedy = "greedy"
    served = "served"


@app.command("eval")
def evaluate(
    target: Target = DEFAULT_TARGET,
    token: Token = "",
    out: Annotated[Path, typer.Option(help="Report path (JSON; a .md table is written beside it).")] = Path(
        "var/eval/report.json"),
    mode: Annotated[str, typer.Option(help="full (retrieval + model), bare (the model alone) or retrieval (the "
                                            "passages of --index pasted as the answer; no service needed).")] = "full",
    index: Annotated[Path, typer.Option(help="Index of --mode retrieval.")] = Path("var/index"),
    hybrid: Annotated[bool, typer.Option(help="--mode retrieval: fuse BM25 with dense retrieval.")] = True,
    split: Annotated[str, typer.Option(help="tune, holdout or empty for both.")] = "",
    category: Annotated[list[str], typer.Option(help="Only these categories (repeatable).")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(min=0, help="At most this many items, spread over the categories.")] = 0,
    max_tokens: Annotated[int, typer.Option(
        min=0, help="Longest answer in tokens; 0 = the server's default, as users get it.")] = 0,
    sampling: Annotated[Sampling, typer.Option(
        help="greedy (reproducible, to compare settings) or served (the server's default temperature and top_p, "
             "as users get them).")] = Sampling.greedy,
    seed: Annotated[int, typer.Option(min=1, help="Sampling seed of every request (--sampling served: another "
                                                  "seed is another sample of the answers).")] = 1,
    retrieval_k: Annotated[int, typer.Option(min=0, help="Passages per answer; 0 = server default.")] = 0,
    quotes: Annotated[bool, typer.Option(help="Answers close with quoted excerpts of their sources (--no-quotes: "
                                              "the generated text only).")] = True,
    label: Annotated[str, typer.Option(help="Name of this run in the report.")] = "",
    golden: Annotated[Path | None, typer.Option(help="Golden set JSONL; default: the packaged one.")] = None,
    compare: Annotated[tuple[Path, Path] | None, typer.Option(help="Compare two reports (A then B) instead.")] = None,
    timeout: Timeout = 600.0,
) -> None:
    """Answer quality on the golden set through the real gRPC API; prints `name=value` figures."""
    import json

    from jenkins_assistant.evaluation import report
    from jenkins_assistant.evaluation.golden import GOLDEN_PATH, load_golden
    from jenkins_assistant.evaluation.runner import RunConfig, run

    if compare:
        first, second = (json.loads(path.read_text(encoding="utf-8")) for path in compare)
        lines, table = report.compare(first, second)
        typer.echo(table)
        typer.echo("\n".join(lines))
        return
    items = load_golden(golden or GOLDEN_PATH, split=split, categories=tuple(category), limit=limit)
    if not items:
        raise typer.BadParameter("no golden items match")
    if mode == "retrieval":
        import time

        from jenkins_assistant.evaluation.retrieval_only import run_retrieval_only

        started = time.perf_counter()
        results = run_retrieval_only(items, index, retrieval_k, hybrid)
        seconds = time.perf_counter() - started
        model = f"retrieval only ({'hybrid' if hybrid else 'dense'}, {index})"
    else:
        config = RunConfig(target=target, token=token, mode=mode, max_tokens=max_tokens,
                           temperature=0.0 if sampling is Sampling.greedy else None, seed=seed,
                           retrieval_k=retrieval_k, quotes=quotes, timeout_s=timeout)
        results, seconds = run(items, config)
        model = _model_name(target)
    meta = {"label": label or mode, "mode": mode, "split": split or "all", "limit": limit, "max_tokens": max_tokens,
            "sampling": sampling.value, "seed": seed, "retrieval_k": retrieval_k, "quotes": quotes, "target": target,
            "seconds": round(seconds, 1), "model": model}
    written = report.write_report(out, meta, [r.to_dict() for r in results])
    typer.echo(report.markdown_table(written["summary"], written["by_category"]))
    typer.echo("\n".join(report.figure_lines(written["summary"])))
    typer.echo(f"report: {out} ({seconds:.0f} s)")


def _model_name(target: str) -> str:
    from jenkins_assistant.v1 import inference_pb2

    channel, stub = _stub(target)
    with channel:
        info = stub.GetModelInfo(inference_pb2.GetModelInfoRequest(), timeout=30)
    return info.model


if __name__ == "__main__":
    app()
