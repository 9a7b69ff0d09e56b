"""extract(): the fixture logs' stage, step and signature; cleaning; bad input; the limit keeps the tail."""

from __future__ import annotations

import dataclasses
import random

import pytest

from jenkins_assistant.build_log import BuildLogSettings, check_size, extract
from jenkins_assistant.build_log.extract import clean
from jenkins_assistant.common.errors import InvalidInput
from tests.build_log.conftest import MANIFEST, read_log

OPTIONAL_FIELDS = ("exit_code", "exception_class", "parallel_branch", "result")


def test_the_manifest_covers_enough_logs_and_signatures():
    assert len(MANIFEST) >= 12
    assert len({expected["signature_id"] for expected in MANIFEST.values()}) >= 12


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_log_facts(name):
    expected = MANIFEST[name]
    facts = extract(read_log(name))
    assert (facts.stage, facts.step, facts.signature_id) == (
        expected["stage"],
        expected["step"],
        expected["signature_id"],
    )
    for field in OPTIONAL_FIELDS:
        if field in expected:
            assert getattr(facts, field) == expected[field], field
    if "stage_path" in expected:
        assert list(facts.stage_path) == expected["stage_path"]
    assert facts.first_error_line
    assert facts.excerpt and facts.lines_before_end


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["secrets"]))
def test_planted_secrets_are_masked_in_every_fact(name):
    facts = extract(read_log(name))
    assert facts.masked_count >= len(MANIFEST[name]["secrets"])
    everything = repr(dataclasses.asdict(facts))
    for secret in MANIFEST[name]["secrets"]:
        assert secret in read_log(name).decode()  # planted, so its absence below means something
        assert secret not in everything


def test_text_and_bytes_give_the_same_facts():
    raw = read_log("git_auth_failed.log")
    assert extract(raw) == extract(raw.decode("utf-8"))


def test_clean_drops_colours_console_notes_and_both_timestamp_forms():
    raw = (
        "[2024-05-01T10:00:00.123Z] \x1b[1;31m[ERROR]\x1b[m boom\r\n"
        "14:02:03 \x1b[8mha:////4IlTOFdAxo=\x1b[0mERROR: script returned exit code 1\n"
        "2024-05-01 is not a prefix\n"
    )
    assert clean(raw) == "[ERROR] boom\nERROR: script returned exit code 1\n2024-05-01 is not a prefix\n"


def test_exception_chain_gives_the_root_cause():
    lines = [
        "[Pipeline] stage",
        "[Pipeline] { (Publish)",
        "[Pipeline] nexusArtifactUploader",
        "java.io.IOException: Upload of app-1.0.jar failed",
        "\tat org.sonatype.nexus.Uploader.upload(Uploader.java:88)",
        "\t... 12 more",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
        "Caused by: javax.net.ssl.SSLException: Connection reset",
        "\tat java.base/sun.security.ssl.Alert.createSSLException(Alert.java:132)",
        "[Pipeline] }",
        "some later line",
        "Caused by: java.lang.IllegalStateException: from another trace",
        "Finished: FAILURE",
    ]
    log = "\n".join(lines)
    facts = extract(log)
    assert (facts.exception_class, facts.exception_message) == ("java.io.IOException", "Upload of app-1.0.jar failed")
    assert (facts.root_cause_class, facts.root_cause_message) == ("javax.net.ssl.SSLException", "Connection reset")
    assert (facts.stage, facts.step) == ("Publish", "nexusArtifactUploader")


def test_waiting_for_an_executor_is_not_the_cause_once_a_step_ran():
    lines = [
        "[Pipeline] node",
        "Waiting for next available executor on ‘linux’",
        "Running on agent-2 in /ws",
        "[Pipeline] {",
        "[Pipeline] stage",
        "[Pipeline] { (Build)",
        "[Pipeline] sh",
        "+ mvn package",
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-jar-plugin:3.3.0:jar (default-jar)",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] }",
        "[Pipeline] // node",
        "ERROR: script returned exit code 1",
        "Finished: FAILURE",
    ]
    log = "\n".join(lines)
    assert extract(log).signature_id == "maven-build-failed"
    waiting = "[Pipeline] node\nWaiting for next available executor on ‘linux’\nAborted by admin\nFinished: ABORTED\n"
    facts = extract(waiting)
    assert (facts.signature_id, facts.step, facts.result) == ("agent-unavailable", "node", "ABORTED")


def test_a_log_without_anything_known():
    facts = extract("Started by user admin\nhello\nFinished: SUCCESS\n")
    assert (facts.signature_id, facts.stage, facts.step, facts.first_error_line) == ("unknown", None, None, None)
    assert facts.result == "SUCCESS"


@pytest.mark.parametrize("log", ["", b"", "  \n\n\t", b"\n"])
def test_an_empty_log_is_invalid_input(log):
    with pytest.raises(InvalidInput, match="empty"):
        extract(log)


def test_not_text_is_invalid_input():
    with pytest.raises(InvalidInput, match="text or bytes"):
        extract(12345)  # type: ignore[arg-type]


def test_binary_bytes_give_a_partial_result():
    data = random.Random(7).randbytes(200_000)
    assert b"\x00" in data and b"\x1b" in data
    facts = extract(data)
    assert facts.excerpt
    assert not any(ord(c) < 32 and c not in "\t\n" for c in facts.excerpt)  # control characters are not handed on


def test_invalid_utf8_inside_a_real_log_still_gives_its_facts():
    raw = read_log("docker_pull_denied.log").replace(b"Login Succeeded", b"Login \xff\xfe\xc3(Succeeded\xed\xa0\x80")
    facts = extract(raw)
    assert (facts.stage, facts.step, facts.signature_id) == ("Prepare build image", "sh", "docker-pull-denied")
    assert "Login \ufffd" in facts.excerpt


def test_a_single_10_mb_line_is_clipped_not_a_crash():
    line = "npm ERR! " + "x" * (10 * 1024 * 1024)
    facts = extract(line.encode())
    settings = BuildLogSettings()
    assert facts.truncated  # over the 5 MB default: the tail of the line is read
    assert facts.long_lines == 1
    assert len(facts.excerpt) <= settings.max_excerpt_chars + 200
    assert len(facts.first_error_line or "") <= settings.max_line_chars + 40
    whole = extract(line, BuildLogSettings(max_log_bytes=20 * 1024 * 1024))
    assert (whole.truncated, whole.signature_id) == (False, "npm-error")


def test_a_50_mb_log_is_cut_to_its_tail():
    head = "[Pipeline] stage\n[Pipeline] { (Head)\n[Pipeline] sh\nERROR: No such DSL method 'headOnly'\n"
    block = (
        "[2024-05-01T10:00:00.123Z] \x1b[1;34m[INFO]\x1b[m Downloaded from central: "
        "https://repo.maven.apache.org/maven2/org/acme/lib/1.0/lib-1.0.jar (12 kB at 310 kB/s)\n"
        "[2024-05-01T10:00:00.124Z] [INFO] Tests run: 4, Failures: 0, Errors: 0, Skipped: 0\n"
    ) * 100
    tail = (
        "[Pipeline] }\n[Pipeline] stage\n[Pipeline] { (Package)\n[Pipeline] sh\n+ tar czf out.tgz build\n"
        "gzip: stdout: No space left on device\n[Pipeline] }\n[Pipeline] End of Pipeline\n"
        "ERROR: script returned exit code 2\nFinished: FAILURE\n"
    )
    log = head + block * (50 * 1024 * 1024 // len(block) + 1) + tail
    assert len(log) >= 50 * 1024 * 1024
    facts = extract(log)
    assert facts.truncated and facts.input_bytes == len(log)
    assert (facts.stage, facts.step, facts.signature_id, facts.exit_code) == ("Package", "sh", "disk-full", 2)
    assert "headOnly" not in facts.excerpt
    assert facts.lines_before_end[-1] == "ERROR: script returned exit code 2"


def test_check_size_names_the_limit():
    settings = BuildLogSettings(max_log_bytes=1000)
    check_size("x" * 1000, settings)
    with pytest.raises(InvalidInput, match="limit of 1000 bytes"):
        check_size("é" * 501, settings)  # 1002 UTF-8 bytes


def test_seeded_fuzz_never_crashes():
    """Fixture lines shuffled, cut, spliced with random bytes and odd markers: facts or InvalidInput, nothing else."""
    rng = random.Random(2024)
    pool = [line for name in sorted(MANIFEST) for line in read_log(name).split(b"\n")]
    odd = [
        b"[Pipeline] {",
        b"[Pipeline] }",
        b"[Pipeline] { (",
        b"[Pipeline] ",
        b"Caused by: ",
        b"\tat x.Y(Y.java:1)",
        b"Failed in branch ",
        b"Finished: ",
        b"-----BEGIN RSA PRIVATE KEY-----",
        b"\x1b[8mha:",
        b"\x1b[",
        b"\r",
    ]
    settings = BuildLogSettings(max_log_bytes=4096, max_line_chars=100)
    outcomes = {"facts": 0, "invalid": 0}
    for _ in range(400):
        parts = [rng.choice(pool + odd) for _ in range(rng.randint(0, 60))]
        if rng.random() < 0.3:
            parts.insert(rng.randint(0, len(parts)), rng.randbytes(rng.randint(1, 300)))
        data = b"\n".join(parts)
        if rng.random() < 0.3:
            data = data[rng.randint(0, len(data)) :]
        try:
            facts = extract(data if rng.random() < 0.5 else data.decode("utf-8", "replace"), settings)
        except InvalidInput:
            outcomes["invalid"] += 1
            continue
        outcomes["facts"] += 1
        assert len(facts.excerpt) <= settings.max_excerpt_chars + 200
        assert facts.signature_id
    assert outcomes["facts"] > 300 and outcomes["invalid"] > 0
