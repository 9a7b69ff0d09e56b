"""The protobuf contracts: lint-clean, usable from Java, stubs generated from them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROTOS = sorted((REPO_ROOT / "protos" / "jenkins_assistant" / "v1").glob("*.proto"))


def test_buf_lint_passes():
    buf = shutil.which("buf")
    if buf is None:
        pytest.fail("buf is not installed (pip install buf-bin; part of the dev extra)")
    result = subprocess.run([buf, "lint"], check=False, cwd=REPO_ROOT / "protos", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_every_proto_is_versioned_and_has_java_options(proto: Path):
    text = proto.read_text()
    assert "package jenkins_assistant.v1;" in text
    assert 'option java_package = "io.jenkins.plugins.assistant.grpc.v1";' in text
    assert "option java_multiple_files = true;" in text
    assert re.search(r'option java_outer_classname = "\w+Proto";', text)


def test_generated_stubs_cover_every_service():
    from jenkins_assistant.v1 import build_log_pb2, inference_pb2, memory_pb2, scraper_pb2

    services = {
        name
        for module in (build_log_pb2, inference_pb2, memory_pb2, scraper_pb2)
        for name in module.DESCRIPTOR.services_by_name
    }
    assert services == {"BuildLogService", "InferenceService", "MemoryService", "ScraperService"}
    chat = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].methods_by_name["Chat"]
    assert chat.server_streaming and not chat.client_streaming
