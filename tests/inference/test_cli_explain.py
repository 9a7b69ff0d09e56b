"""`jenkins-assistant explain` against the running inference service (SmolLM2, the sample index): facts first, then
sources and the explanation; `-` reads stdin; `--json` prints the structured result; a log over the limit is sent
as its tail, and one the server still refuses is an error naming the limit."""

from __future__ import annotations

import json

from tests.build_log.conftest import MANIFEST, read_log
from tests.inference.fixtures import BUILD_LOG_LIMIT_BYTES
from tests.inference.test_cli import run_cli

LOG_NAME = "script_security.log"


def test_explain_prints_the_facts_then_sources_then_the_explanation(inference_process, tmp_path):
    path = tmp_path / "build.log"
    path.write_bytes(read_log(LOG_NAME))
    result = run_cli("explain", str(path), "--target", inference_process.target, "--max-tokens", "16", "--refresh")
    assert result.returncode == 0, result.stderr
    expected = MANIFEST[LOG_NAME]
    facts, _, rest = result.stdout.partition("\n\n")
    assert f"({expected['signature_id']})" in facts and "Step:" in facts and expected["step"] in facts
    assert "Fingerprint:" in facts
    assert rest.startswith("Sources:\n"), rest
    sources, _, explanation = rest.partition("\n\n")
    assert all(line.startswith("  [") for line in sources.splitlines()[1:])
    assert explanation.strip()
    assert "tokens/s" in result.stderr


def test_explain_reads_stdin_and_prints_the_structured_result_as_json(inference_process):
    result = run_cli("explain", "-", "--json", "--target", inference_process.target, "--max-tokens", "24",
                     stdin=read_log(LOG_NAME).decode())
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    facts = reply["metadata"]["facts"]
    assert facts["signature_id"] == MANIFEST[LOG_NAME]["signature_id"] and facts["stage"] == MANIFEST[LOG_NAME]["stage"]
    assert reply["text"].strip() and reply["summary"].strip()
    assert reply["sources"] and reply["finished"]["usage"]


def fifty_mb_log() -> bytes:
    """50 MB of a passing build's chatter, then the failure: only the tail says what went wrong."""
    chatter = b"[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/acme/lib/1.0/lib.jar\n"
    tail = read_log("disk_full.log")
    return chatter * (50 * 1024 * 1024 // len(chatter) + 1) + tail


def test_a_50_mb_log_is_explained_from_its_tail(inference_process, tmp_path):
    path = tmp_path / "huge.log"
    path.write_bytes(fifty_mb_log())
    result = run_cli("explain", str(path), "--target", inference_process.target, "--max-tokens", "4",
                     "--max-bytes", str(BUILD_LOG_LIMIT_BYTES), "--refresh")
    assert result.returncode == 0, result.stderr
    assert "explaining its last" in result.stderr and str(path.stat().st_size) in result.stderr
    assert f"({MANIFEST['disk_full.log']['signature_id']})" in result.stdout


def test_a_log_the_server_refuses_is_an_error_naming_the_limit(inference_process, tmp_path):
    path = tmp_path / "huge.log"
    path.write_bytes(fifty_mb_log())
    # More than the server's limit (but within what its transport takes): the server's own INVALID_ARGUMENT.
    result = run_cli("explain", str(path), "--target", inference_process.target,
                     "--max-bytes", str(BUILD_LOG_LIMIT_BYTES + 4096))
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and f"limit of {BUILD_LOG_LIMIT_BYTES} bytes" in result.stderr


def test_a_single_10_mb_line_gives_a_partial_result_not_a_crash(inference_process, tmp_path):
    path = tmp_path / "one-line.log"
    path.write_bytes(b"+ ./build.sh " + b"x" * (10 * 1024 * 1024))
    result = run_cli("explain", str(path), "--target", inference_process.target, "--max-tokens", "4",
                     "--max-bytes", str(BUILD_LOG_LIMIT_BYTES), "--no-retrieval")
    assert result.returncode == 0, result.stderr
    assert "Fingerprint:" in result.stdout


def test_a_missing_file_is_a_usage_error():
    result = run_cli("explain", "/nonexistent/build.log")
    assert result.returncode == 2 and "cannot read" in result.stderr
