"""JenkinsContext over gRPC against the real inference process (SmolLM2, the tests' index, the real update center
file): what the metadata reports, CheckPlugins, and the limits (INVALID_ARGUMENT naming them)."""

from __future__ import annotations

import grpc
import pytest

from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc

QUICK = common_pb2.GenerationOptions(temperature=0.0, max_tokens=8)
SLACK_Q = "How do I send a Slack notification from a pipeline?"


def context(*plugins: tuple[str, str], core: str = "2.452.3") -> common_pb2.JenkinsContext:
    return common_pb2.JenkinsContext(
        core_version=core, locale="de-DE",
        plugins=[common_pb2.JenkinsPlugin(plugin_id=p, version=v) for p, v in plugins],
        page=common_pb2.JenkinsPage(name="team-a/app", type="WorkflowJob", last_build_result="FAILURE"))


def test_the_metadata_lists_the_context_used_and_findings_of_the_answers_plugins(channel, auth):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    missing = stub.Ask(inference_pb2.AskRequest(question=SLACK_Q, owner="tester", options=QUICK,
                                                context=context(("git", "5.10.1"))), metadata=auth)
    use = missing.metadata.jenkins_context
    assert (use.core_version, use.installed_plugins, use.locale, use.page.name) == ("2.452.3", 1, "de-DE",
                                                                                    "team-a/app")
    assert list(use.missing_plugins) == ["slack"] and list(use.installed_plugins_used) == []
    assert list(missing.metadata.plugin_findings) == []
    assert all("plugins.jenkins.io/slack/" in s.url for s in missing.sources)

    events = list(stub.Chat(inference_pb2.ChatRequest(question=SLACK_Q, owner="tester", options=QUICK,
                                                      context=context(("slack", "2.0"))), metadata=auth))
    metadata = events[0].metadata
    assert list(metadata.jenkins_context.installed_plugins_used) == ["slack"]
    [gap] = metadata.jenkins_context.outdated_plugins
    assert (gap.plugin_id, gap.installed_version) == ("slack", "2.0") and gap.passage_version
    [finding] = metadata.plugin_findings
    assert (finding.kind, finding.plugin_id, finding.warning_id) == \
        (common_pb2.PLUGIN_FINDING_KIND_SECURITY_WARNING, "slack", "SECURITY-976")
    assert finding.url.startswith("https://jenkins.io/security/advisory/2019-03-25/") and finding.message

    plain = stub.Ask(inference_pb2.AskRequest(question=SLACK_Q, owner="tester", options=QUICK), metadata=auth)
    assert not plain.metadata.HasField("jenkins_context") and list(plain.metadata.plugin_findings) == []
    # Same passages (every candidate is about slack, so the order is unchanged), and the prompt the model was given
    # is longer by the note about the user's Jenkins.
    assert [s.passage for s in plain.sources] == [s.passage for s in events[1].sources.sources]
    assert events[-1].finished.usage.prompt_tokens > plain.finished.usage.prompt_tokens + 40


def test_check_plugins_returns_findings_for_the_whole_installed_list(channel, auth):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    reply = stub.CheckPlugins(inference_pb2.CheckPluginsRequest(context=context(
        ("ssh", "158.ve2a_e90fb_7319"), ("elastest", "1.2.1"), ("git", "5.10.1"), ("our-private-plugin", "1.0"),
        core="2.452.3")), metadata=auth)
    found = [(f.kind, f.plugin_id, f.warning_id) for f in reply.findings]
    warning, deprecated = common_pb2.PLUGIN_FINDING_KIND_SECURITY_WARNING, common_pb2.PLUGIN_FINDING_KIND_DEPRECATED
    assert (warning, "ssh", "SECURITY-2093") in found and (warning, "ssh", "SECURITY-2315") in found
    assert (warning, "core", "core-2_471") in found and (deprecated, "elastest", "") in found
    assert not any(plugin == "git" for _k, plugin, _w in found)
    assert found.index((deprecated, "elastest", "")) == len(found) - 1  # warnings first
    assert list(reply.unknown_plugins) == ["our-private-plugin"]
    assert reply.update_center_generated_at == "2026-06-14T01:50:16Z"


def test_context_limits_are_invalid_argument_naming_the_limit(channel, auth):
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    too_many = context(*[(f"plugin-{i}", "1.0") for i in range(501)])
    too_long = context(("git", "5" * 201))
    calls = [
        (lambda c: stub.Ask(inference_pb2.AskRequest(question="q?", owner="t", options=QUICK, context=c),
                            metadata=auth)),
        (lambda c: list(stub.Chat(inference_pb2.ChatRequest(question="q?", owner="t", options=QUICK, context=c),
                                  metadata=auth))),
        (lambda c: stub.CheckPlugins(inference_pb2.CheckPluginsRequest(context=c), metadata=auth)),
        (lambda c: build_log_pb2_grpc.BuildLogServiceStub(channel).GetBuildLogExplanation(
            build_log_pb2.GetBuildLogExplanationRequest(log=b"ERROR: failed\n", owner="t", options=QUICK, context=c),
            metadata=auth)),
    ]
    for call in calls:
        for bad, limit in ((too_many, "501 plugins; the limit is 500"),
                           ("long", "context.plugins[0].version has 201 characters; the limit is 200")):
            with pytest.raises(grpc.RpcError) as refused:
                call(too_many if bad is too_many else too_long)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert limit in refused.value.details()


def test_explain_requests_take_the_context_in_place_of_the_older_fields():
    from jenkins_assistant.inference.servicer import build_query_from_pb

    old = build_log_pb2.ExplainBuildLogRequest(log=b"x", job_name="j", jenkins_version="2.401.1",
                                               plugins=[build_log_pb2.InstalledPlugin(plugin_id="git", version="5.0")])
    query = build_query_from_pb(old)
    assert (query.jenkins_version, query.plugins, query.job_name) == ("2.401.1", [("git", "5.0")], "j")
    new = build_log_pb2.GetBuildLogExplanationRequest(log=b"x", jenkins_version="2.401.1",
                                                      context=context(("git", "5.10.1")))
    query = build_query_from_pb(new)
    assert (query.jenkins_version, query.plugins, query.job_name) == ("2.452.3", [("git", "5.10.1")], "team-a/app")


def test_an_explanation_reports_the_context_its_passages_were_ranked_with(channel, auth):
    """The controller's plugins re-rank an explanation's passages as they do a chat answer's, and the metadata says
    which context was used; a request without one reports none."""
    from pathlib import Path

    log = (Path(__file__).resolve().parents[1] / "build_log" / "logs" / "missing_credentials.log").read_bytes()
    stub = build_log_pb2_grpc.BuildLogServiceStub(channel)
    with_context = stub.GetBuildLogExplanation(build_log_pb2.GetBuildLogExplanationRequest(
        log=log, owner="tester", options=QUICK, refresh=True,
        context=context(("credentials-binding", "1.0"), ("git", "5.10.1"))), metadata=auth)
    use = with_context.metadata.answer.jenkins_context
    assert (use.core_version, use.installed_plugins) == ("2.452.3", 2)
    plain = stub.GetBuildLogExplanation(build_log_pb2.GetBuildLogExplanationRequest(
        log=log, owner="tester", options=QUICK, refresh=True), metadata=auth)
    assert not plain.metadata.answer.HasField("jenkins_context")
