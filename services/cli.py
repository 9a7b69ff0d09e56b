"""`jenkins-assistant`: ask the inference service a Jenkins question from the terminal.

    jenkins-assistant ask "How do I archive artifacts in a declarative pipeline?"
    jenkins-assistant chat --session my-session          # interactive; the session keeps the conversation

The answer streams as it is generated, followed by its sources.
"""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])

Target = Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TARGET", help="host:port of the inference service.")]
Token = Annotated[str, typer.Option(envvar="JENKINS_ASSISTANT_TOKEN", help="Bearer token, if the service needs one.")]
Owner = Annotated[str, typer.Option(help="Who is asking (sessions belong to their owner).")]
MaxTokens = Annotated[int, typer.Option(min=0, help="Longest answer in tokens; 0 = server default.")]
Timeout = Annotated[float, typer.Option(min=1, help="Seconds before giving up on an answer.")]
NoRetrieval = Annotated[bool, typer.Option("--no-retrieval", help="Answer without searching the documentation.")]
DEFAULT_TARGET = "127.0.0.1:50052"
DEFAULT_TIMEOUT_S = 300.0


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
    try:
        for event in stub.Chat(request, timeout=timeout, metadata=bearer_metadata(token or None)):
            kind = event.WhichOneof("event")
            if kind == "metadata":
                for warning in event.metadata.warnings:
                    typer.secho(f"note: {warning}", fg=typer.colors.YELLOW, err=True)
            elif kind == "delta":
                out.write(event.delta.text)
                out.flush()
            elif kind == "sources" and event.sources.sources:
                out.write("\n\nSources:\n")
                for number, source in enumerate(event.sources.sources, 1):
                    out.write(f"  [{number}] {source.title} - {source.url}\n")
            elif kind == "finished":
                usage = event.finished.usage
                typer.secho(f"\n({usage.completion_tokens} tokens, first after {usage.time_to_first_token_ms:.0f} ms, "
                            f"{usage.tokens_per_s:.1f} tokens/s)", dim=True, err=True)
    except grpc.RpcError as exc:
        typer.secho(f"\nerror: {exc.code().name}: {exc.details()}", fg=typer.colors.RED, err=True)
        return 1
    out.write("\n")
    return 0


def _stub(target: str):
    import grpc

    from jenkins_assistant.v1 import inference_pb2_grpc

    channel = grpc.insecure_channel(target)
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


if __name__ == "__main__":
    app()
