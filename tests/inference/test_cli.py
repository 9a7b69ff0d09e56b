"""The `jenkins-assistant` console script against the running inference service."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.inference.fixtures import TEST_TOKEN


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    binary = shutil.which("jenkins-assistant")
    assert binary, "the jenkins-assistant console script is not installed (pip install -e .)"
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "JENKINS_ASSISTANT_TOKEN": TEST_TOKEN})


def test_ask_streams_an_answer_with_sources(inference_process):
    result = run_cli("ask", "How do I run Jenkins in Docker?", "--target", inference_process.target,
                     "--max-tokens", "24")
    assert result.returncode == 0, result.stderr
    # The sources are printed first (as soon as they are found), then the answer after a blank line.
    assert result.stdout.startswith("Sources:\n"), result.stdout
    sources, _, answer = result.stdout.removeprefix("Sources:\n").partition("\n\n")
    assert sources.splitlines() and all(line.startswith("  [") for line in sources.splitlines())
    assert "https://www.jenkins.io/" in sources or "https://plugins.jenkins.io/" in sources
    # Each source is named once by its heading path, not by its title and then the path that starts with it.
    for line in sources.splitlines():
        label = line.split("] ", 1)[1].rsplit(" - ", 1)[0]
        parts = label.split(" > ")
        assert len(parts) < 2 or parts[0] != parts[1], line
    assert answer.strip()
    assert "tokens/s" in result.stderr


def test_chat_keeps_the_session_between_questions(inference_process, memory_process):
    import grpc

    from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

    result = run_cli("chat", "--target", inference_process.target, "--session", "cli-session", "--owner", "cli-user",
                     "--max-tokens", "16", stdin="What is a Jenkins agent?\nHow do I add one?\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Sources:") == 2
    with grpc.insecure_channel(memory_process.target) as channel:
        history = memory_pb2_grpc.MemoryServiceStub(channel).GetHistory(
            memory_pb2.GetHistoryRequest(session_id="cli-session", owner="cli-user", k=5))
    assert [t.user_text for t in history.turns] == ["What is a Jenkins agent?", "How do I add one?"]


def test_bad_token_is_reported_as_an_error(inference_process):
    binary = shutil.which("jenkins-assistant")
    result = subprocess.run([binary, "ask", "What is Jenkins?", "--target", inference_process.target,
                             "--token", "wrong"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "UNAUTHENTICATED" in result.stderr
