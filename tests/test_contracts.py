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


# ------------------------------------------------------------------------------ wire compatibility
# tests/contracts/previous/ holds the messages as they were before JenkinsContext (issue 12) was added: clients built
# from them (a Jenkins plugin released earlier) must keep working against today's servers, and the other way round.
PREVIOUS_PROTOS = REPO_ROOT / "tests" / "contracts" / "previous"


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """The previous messages, compiled into a descriptor pool of their own (same full names as today's)."""
    import grpc_tools
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("previous") / "previous.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = sorted(str(p.relative_to(PREVIOUS_PROTOS)) for p in PREVIOUS_PROTOS.rglob("*.proto"))
    assert protoc.main(["protoc", f"-I{PREVIOUS_PROTOS}", f"-I{well_known}", "--include_imports",
                        f"--descriptor_set_out={out}", *files]) == 0
    pool = descriptor_pool.DescriptorPool()
    for file_proto in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        pool.Add(file_proto)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"jenkins_assistant.v1.{name}"))


def _current(name: str):
    from google.protobuf import symbol_database

    return symbol_database.Default().GetSymbol(f"jenkins_assistant.v1.{name}")


def test_every_previous_field_keeps_its_number_name_and_type(previous):
    from jenkins_assistant.v1 import build_log_pb2, common_pb2, inference_pb2  # noqa: F401  (registers the types)

    checked = 0
    for name in ("ChatRequest", "AskRequest", "AnswerMetadata", "ChatResponse", "AskResponse",
                 "ExplainBuildLogRequest", "GetBuildLogExplanationRequest", "ExplainBuildLogMetadata",
                 "InstalledPlugin", "Source", "GenerationOptions"):
        old, new = previous(name).DESCRIPTOR, _current(name).DESCRIPTOR
        for field in old.fields:
            now = new.fields_by_number.get(field.number)
            assert now is not None, f"{name}.{field.name} ({field.number}) was removed"
            assert (now.name, now.type, now.is_repeated) == (field.name, field.type, field.is_repeated), \
                f"{name} field {field.number} changed"
            checked += 1
    assert checked > 40


def test_old_requests_parse_with_new_stubs_and_new_ones_with_old_stubs(previous):
    from jenkins_assistant.v1 import build_log_pb2, common_pb2, inference_pb2

    old_chat = previous("ChatRequest")(session_id="s1", owner="ann", question="How do I archive artifacts?")
    old_chat.options.retrieval_k = 3
    new_chat = inference_pb2.ChatRequest.FromString(old_chat.SerializeToString())
    assert (new_chat.session_id, new_chat.owner, new_chat.question, new_chat.options.retrieval_k) == \
        ("s1", "ann", "How do I archive artifacts?", 3)
    assert not new_chat.HasField("context")  # an old client sends no context: answered as before

    context = common_pb2.JenkinsContext(core_version="2.452.3", locale="de-DE",
                                        plugins=[common_pb2.JenkinsPlugin(plugin_id="git", version="5.2.1")],
                                        page=common_pb2.JenkinsPage(name="team/app", type="WorkflowJob",
                                                                    last_build_result="FAILURE"))
    for new_type, old_name in ((inference_pb2.ChatRequest, "ChatRequest"), (inference_pb2.AskRequest, "AskRequest")):
        sent = new_type(session_id="s1", owner="ann", question="q?", context=context)
        seen_by_old = previous(old_name).FromString(sent.SerializeToString())
        assert (seen_by_old.session_id, seen_by_old.owner, seen_by_old.question) == ("s1", "ann", "q?")
        # Relayed by an old proxy, the context survives as an unknown field.
        assert new_type.FromString(seen_by_old.SerializeToString()).context == context

    old_explain = previous("ExplainBuildLogRequest")(log=b"ERROR", jenkins_version="2.401.1")
    old_explain.plugins.add(plugin_id="git", version="5.0.0")
    new_explain = build_log_pb2.ExplainBuildLogRequest.FromString(old_explain.SerializeToString())
    assert new_explain.jenkins_version == "2.401.1" and new_explain.plugins[0].plugin_id == "git"
    assert not new_explain.HasField("context")
    sent = build_log_pb2.GetBuildLogExplanationRequest(log=b"ERROR", context=context)
    assert previous("GetBuildLogExplanationRequest").FromString(sent.SerializeToString()).log == b"ERROR"


def test_new_metadata_reaches_old_clients_and_old_metadata_new_ones(previous):
    from jenkins_assistant.v1 import common_pb2, inference_pb2

    metadata = common_pb2.AnswerMetadata(
        answer_id="a1", standalone_question="q", model="m", warnings=["w"],
        jenkins_context=common_pb2.JenkinsContextUse(core_version="2.452.3", missing_plugins=["slack"]),
        plugin_findings=[common_pb2.PluginFinding(kind=common_pb2.PLUGIN_FINDING_KIND_SECURITY_WARNING,
                                                  plugin_id="slack", warning_id="SECURITY-976")])
    wire = inference_pb2.ChatResponse(metadata=metadata).SerializeToString()
    old = previous("ChatResponse").FromString(wire)
    assert old.WhichOneof("event") == "metadata"
    assert (old.metadata.answer_id, old.metadata.model, list(old.metadata.warnings)) == ("a1", "m", ["w"])
    old_wire = previous("AskResponse")(metadata=previous("AnswerMetadata")(answer_id="a2")).SerializeToString()
    new = inference_pb2.AskResponse.FromString(old_wire)
    assert new.metadata.answer_id == "a2" and not new.metadata.HasField("jenkins_context")
    assert list(new.metadata.plugin_findings) == []
