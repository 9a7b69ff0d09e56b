"""The Java client (clients/java) against the real services (issue 12): its JUnit tests run in Maven, offline on
Debian's repository, while this test holds the same Redis, memory and inference processes the Python tests use
(tests/inference/fixtures.py: SmolLM2, one slot, a one-chat queue, bearer token TEST_TOKEN). What the JUnit tests
prove is listed in AssistantClientTest; here we check that they all ran (none skipped) and passed."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import REPO_ROOT
from tests.inference.fixtures import TEST_TOKEN

JAVA_DIR = REPO_ROOT / "clients" / "java"
REPORTS = JAVA_DIR / "target" / "surefire-reports"
MAVEN = ["mvn", "-o", "-q", "-s", "/etc/maven/settings-debian.xml"]
# The JUnit tests against the services (AssistantClientTest): fewer means some were not compiled or not found.
SERVICE_SUITE, SERVICE_TESTS = "io.jenkins.plugins.assistant.grpc.AssistantClientTest", 11


def missing_java_tools() -> list[str]:
    tools = ["java", "mvn", "protoc", "/usr/bin/grpc_java_plugin", "/etc/maven/settings-debian.xml"]
    return [tool for tool in tools if not (shutil.which(tool) or os.path.exists(tool))]


def run(args: list[str], timeout_s: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=False, cwd=JAVA_DIR, env=env, capture_output=True, text=True, timeout=timeout_s)


def surefire_output() -> str:
    """The JUnit failures and each test's own output (surefire writes them to files, not to mvn's output)."""
    texts = [path.read_text(errors="replace")[-6000:] for path in sorted(REPORTS.glob("*.txt"))]
    return "\n".join(texts)


@pytest.mark.slow
def test_the_java_client_passes_its_junit_tests_against_the_real_services(request):
    missing = missing_java_tools()
    if missing:
        # `make setup` installs them with apt as root (Makefile: JAVA_PACKAGES); only where it cannot is this a skip.
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail(f"missing {missing}: run `make setup`, which installs the Java toolchain with apt")
        pytest.skip(f"Java toolchain missing ({', '.join(missing)}) and apt-get is not usable here: "
                    "install the Makefile's JAVA_PACKAGES to run the Java client's tests")

    # Stubs from the protos as they are now, then compile, before any service starts: a contract change that breaks
    # the client fails here in seconds, without loading a model.
    stubs = subprocess.run(["make", "-s", "java-stubs"], check=False, cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=120)
    assert stubs.returncode == 0, stubs.stdout + stubs.stderr
    compiled = run([*MAVEN, "test-compile"], timeout_s=600)
    assert compiled.returncode == 0, compiled.stdout[-8000:] + compiled.stderr[-4000:]

    inference = request.getfixturevalue("inference_process")
    shutil.rmtree(REPORTS, ignore_errors=True)
    env = {
        **os.environ,
        "ASSISTANT_TEST_TARGET": inference.target,
        "ASSISTANT_TEST_TOKEN": TEST_TOKEN,
        "ASSISTANT_TEST_METRICS_URL": f"http://127.0.0.1:{inference.metrics_port}/metrics",
    }
    # package, as `make java-client` builds it: the tests, then the jar a plugin would embed.
    result = run([*MAVEN, "package"], timeout_s=840, env=env)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:] + surefire_output()
    assert list((JAVA_DIR / "target").glob("jenkins-assistant-grpc-client-*.jar"))

    suites = {suite.get("name"): suite for suite in (ET.parse(p).getroot() for p in REPORTS.glob("TEST-*.xml"))}
    assert all(int(s.get("failures")) == int(s.get("errors")) == 0 for s in suites.values()), surefire_output()
    service = suites[SERVICE_SUITE]
    # None skipped: they skip themselves when the ASSISTANT_TEST_* variables do not reach them.
    assert (int(service.get("tests")), int(service.get("skipped"))) == (SERVICE_TESTS, 0), surefire_output()
