"""ExplainBuildLog over gRPC: the inference service process with SmolLM2 and the sample index, fed the console logs
of tests/build_log/logs/."""

from __future__ import annotations

import os

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2
from tests.build_log.conftest import MANIFEST, read_log
from tests.inference.fixtures import BUILD_LOG_LIMIT_BYTES, scrape_metric, wait_for_metric

LOG_NAME = "maven_compile_error.log"
# Planted next to the fixture's own secret (a password in a repository URL): a GitHub token in a header.
PLANTED_TOKEN = "ghp_Zq8RkT2vLm4Nw6Xy0Bc3Df5Gh7Jk9Lp1Qs2T"
OPTIONS = common_pb2.GenerationOptions(max_tokens=24, temperature=0.0, retrieval_k=2)


def log_with_planted_secret() -> bytes:
    lines = read_log(LOG_NAME).split(b"\n")
    curl = f"+ curl -fsS -H 'Authorization: token {PLANTED_TOKEN}' https://api.github.com/repos/acme/shop".encode()
    return b"\n".join([*lines[:5], curl, *lines[5:]])


def secrets() -> list[str]:
    return [*MANIFEST[LOG_NAME]["secrets"], PLANTED_TOKEN]


def request(log: bytes, **fields) -> build_log_pb2.ExplainBuildLogRequest:
    return build_log_pb2.ExplainBuildLogRequest(log=log, owner="tester", options=OPTIONS, **fields)


def assert_expected_facts(facts: build_log_pb2.BuildLogFacts) -> None:
    expected = MANIFEST[LOG_NAME]
    assert facts.stage == expected["stage"]
    assert facts.step == expected["step"]
    assert facts.signature_id == expected["signature_id"] and facts.signature_label
    assert facts.HasField("exit_code") and facts.exit_code == expected["exit_code"]
    assert facts.result == expected["result"]
    assert facts.masked_count >= len(secrets())
    assert not facts.truncated and facts.excerpt
    assert facts.fingerprint.startswith(expected["signature_id"] + ":")


def test_explain_streams_facts_sources_text_then_finished_and_no_secret_leaves(channel, auth):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    events = list(stub.ExplainBuildLog(request(log_with_planted_secret(), job_name="shop/main", build_number=42,
                                               jenkins_version="2.452.3",
                                               plugins=[build_log_pb2.InstalledPlugin(plugin_id="git",
                                                                                      version="5.2.1")]),
                                       metadata=auth))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["metadata", "sources"] and kinds[-1] == "finished"
    assert set(kinds[2:-1]) == {"delta"}
    metadata = events[0].metadata
    assert_expected_facts(metadata.facts)
    assert metadata.answer.answer_id and metadata.answer.model
    # Retrieval ran on the facts (signature label, first error), not on the log.
    assert metadata.answer.standalone_question.strip()
    sources = events[1].sources.sources
    assert sources and [s.citation for s in sources] == list(range(1, len(sources) + 1))
    assert "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta").strip()
    finished = events[-1].finished
    assert finished.finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)
    assert finished.usage.prompt_tokens > 0 and finished.usage.completion_tokens > 0
    # Masked before anything else read the log: no event carries a secret, in any field.
    wire = b"".join(e.SerializeToString() for e in events)
    for secret in secrets():
        assert secret.encode() not in wire, secret


def test_the_unary_twin_returns_the_same_facts_and_an_explanation(channel, auth):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    log = log_with_planted_secret()
    streamed = next(iter(stub.ExplainBuildLog(request(log), metadata=auth))).metadata.facts
    reply = stub.GetBuildLogExplanation(
        build_log_pb2.GetBuildLogExplanationRequest(log=log, owner="tester", options=OPTIONS), metadata=auth)
    assert reply.metadata.facts == streamed
    assert_expected_facts(reply.metadata.facts)
    assert reply.text.strip() and reply.sources and reply.finished.usage.completion_tokens > 0
    for secret in secrets():
        assert secret.encode() not in reply.SerializeToString(), secret


def test_a_text_log_with_invalid_utf8_is_explained_with_the_bytes_replaced(channel, auth):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    lines = read_log(LOG_NAME).split(b"\n")
    log = b"\n".join([*lines[:5], b"Started by user \xff\xfe adm\xc3in", *lines[5:]])
    reply = stub.GetBuildLogExplanation(build_log_pb2.GetBuildLogExplanationRequest(
        log=log, owner="tester", options=common_pb2.GenerationOptions(max_tokens=4, disable_retrieval=True)),
        metadata=auth)
    assert reply.metadata.facts.signature_id == MANIFEST[LOG_NAME]["signature_id"]


def test_cancel_mid_explanation_frees_the_only_slot(channel, auth, inference_process):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    cancelled_before = scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                                     'finish_reason="cancelled"')
    long = common_pb2.GenerationOptions(max_tokens=1000, temperature=0.7, seed=5, retrieval_k=1)
    call = stub.ExplainBuildLog(build_log_pb2.ExplainBuildLogRequest(log=read_log(LOG_NAME), options=long),
                                metadata=auth)
    for event in call:
        if event.WhichOneof("event") == "delta":
            break
    call.cancel()
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0
    assert scrape_metric(inference_process, "jenkins_assistant_inference_answers_total",
                         'finish_reason="cancelled"') == cancelled_before + 1
    # The slot serves the next explanation.
    events = list(stub.ExplainBuildLog(request(read_log(LOG_NAME)), metadata=auth))
    assert events[-1].WhichOneof("event") == "finished"


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (b"", "empty"),
        (b" \n\n\t ", "empty"),
        (os.urandom(4096), "binary"),
        (b"\x00" * 2048, "binary"),
        (b"[Pipeline] sh\n" + b"x" * (BUILD_LOG_LIMIT_BYTES + 1), f"limit of {BUILD_LOG_LIMIT_BYTES} bytes"),
    ],
    ids=["empty", "whitespace", "random-bytes", "nul-bytes", "over-limit"],
)
def test_bad_logs_are_refused_with_invalid_argument(channel, auth, log, message):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    with pytest.raises(grpc.RpcError) as streamed:
        list(stub.ExplainBuildLog(request(log), metadata=auth))
    assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in streamed.value.details()
    with pytest.raises(grpc.RpcError) as whole:
        stub.GetBuildLogExplanation(build_log_pb2.GetBuildLogExplanationRequest(log=log, owner="tester"),
                                    metadata=auth)
    assert whole.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in whole.value.details()
    # Still serving after each refusal.
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="jenkins_assistant.v1.BuildLogService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_bad_request_fields_are_refused(channel, auth):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    log = read_log(LOG_NAME)
    bad = [
        request(log, build_number=-1),
        request(log, job_name="a\nb"),
        request(log, plugins=[build_log_pb2.InstalledPlugin(plugin_id="", version="1.0")]),
        build_log_pb2.ExplainBuildLogRequest(log=log, options=common_pb2.GenerationOptions(max_tokens=-1)),
    ]
    for req in bad:
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ExplainBuildLog(req, metadata=auth))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, req


def test_explaining_needs_the_credential(channel):
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.ExplainBuildLog(request(read_log(LOG_NAME))))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_50_mb_log_is_refused_by_the_transport_and_the_service_keeps_serving(channel, auth):
    """Beyond the log limit + 1 MiB the request is not even read (gRPC's own limit: RESOURCE_EXHAUSTED naming both
    sizes), so a 50 MB log costs the server no more than the limit. The CLI and the page send a log's tail instead
    (tests/inference/test_cli_explain.py, tests/gateway/test_explain_page.py)."""
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    log = b"[Pipeline] sh\n" * (50 * 1024 * 1024 // 14 + 1)
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.ExplainBuildLog(request(log), metadata=auth))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(len(request(log).SerializeToString())) in refused.value.details()
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="jenkins_assistant.v1.BuildLogService"))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
