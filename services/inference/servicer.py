"""gRPC transport of the inference service: protobuf <-> core objects, nothing else.

A request's `owner` counts only from a client trusted to assert owners; any other client's owner is its own name
(`jenkins_assistant.common.clients.owner_for`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from jenkins_assistant.build_log import LogFacts
from jenkins_assistant.common.clients import current_client, owner_for
from jenkins_assistant.common.records import finish_reason_to_pb, rating_from_pb
from jenkins_assistant.inference.core import (
    AnswerMetadata,
    ChatOptions,
    ChatQuery,
    Finished,
    InferenceCore,
    SourceList,
    TextDelta,
)
from jenkins_assistant.inference.explain import BuildLogExplainer, BuildQuery, ExplainMetadata
from jenkins_assistant.inference.jenkins_context import ContextUse, Finding, JenkinsContext, JenkinsPage, validate
from jenkins_assistant.v1 import build_log_pb2, build_log_pb2_grpc, common_pb2, inference_pb2, inference_pb2_grpc

_FINDING = {"security_warning": common_pb2.PLUGIN_FINDING_KIND_SECURITY_WARNING,
            "deprecated": common_pb2.PLUGIN_FINDING_KIND_DEPRECATED}


def options_from_pb(o: common_pb2.GenerationOptions) -> ChatOptions:
    return ChatOptions(
        max_tokens=o.max_tokens,
        temperature=o.temperature if o.HasField("temperature") else None,
        top_p=o.top_p if o.HasField("top_p") else None,
        stop=list(o.stop),
        retrieval_k=o.retrieval_k,
        disable_retrieval=o.disable_retrieval,
        seed=o.seed,
        disable_quotes=o.disable_quotes,
    )


def context_from_pb(c: common_pb2.JenkinsContext) -> JenkinsContext:
    return JenkinsContext(
        core_version=c.core_version, plugins=tuple((p.plugin_id, p.version) for p in c.plugins),
        page=JenkinsPage(c.page.name, c.page.type, c.page.last_build_result), locale=c.locale,
    )


def query_from_pb(request: inference_pb2.ChatRequest | inference_pb2.AskRequest) -> ChatQuery:
    return ChatQuery(
        question=request.question,
        session_id=request.session_id,
        owner=owner_for(request.owner, current_client()),
        options=options_from_pb(request.options),
        context=context_from_pb(request.context) if request.HasField("context") else None,
    )


def finding_to_pb(f: Finding) -> common_pb2.PluginFinding:
    return common_pb2.PluginFinding(kind=_FINDING[f.kind], plugin_id=f.plugin_id, installed_version=f.installed_version,
                                    warning_id=f.warning_id, message=f.message, url=f.url)


def context_use_to_pb(u: ContextUse) -> common_pb2.JenkinsContextUse:
    return common_pb2.JenkinsContextUse(
        core_version=u.core_version, installed_plugins=u.installed_plugins,
        page=common_pb2.JenkinsPage(name=u.page.name, type=u.page.type, last_build_result=u.page.last_build_result),
        locale=u.locale, reranked=u.reranked, installed_plugins_used=u.installed_plugins_used,
        missing_plugins=u.missing_plugins, required_core_version=u.required_core_version,
        outdated_plugins=[common_pb2.PluginVersionGap(plugin_id=g.plugin_id, installed_version=g.installed_version,
                                                      passage_version=g.passage_version) for g in u.outdated_plugins],
    )


def metadata_to_pb(m: AnswerMetadata) -> common_pb2.AnswerMetadata:
    use = m.jenkins_context
    return common_pb2.AnswerMetadata(
        answer_id=m.answer_id, standalone_question=m.standalone_question, history_turns_used=m.history_turns_used,
        memory_available=m.memory_available, warnings=m.warnings, model=m.model,
        jenkins_context=context_use_to_pb(use) if use is not None else None,
        plugin_findings=[finding_to_pb(f) for f in use.findings] if use is not None else [],
    )


def finished_to_pb(f: Finished) -> common_pb2.AnswerFinished:
    u = f.usage
    return common_pb2.AnswerFinished(
        finish_reason=finish_reason_to_pb(f.finish_reason),
        usage=common_pb2.Usage(
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
            time_to_first_token_ms=u.time_to_first_token_ms, tokens_per_s=u.tokens_per_s,
            retrieval_ms=u.retrieval_ms, total_ms=u.total_ms, queue_ms=u.queue_ms,
        ),
        warnings=f.warnings,
    )


def event_fields(event, metadata_to_pb: Callable[[Any], Any]) -> dict[str, Any]:
    """The oneof field of a streamed answer's response (Chat and ExplainBuildLog share the event kinds; only
    their metadata differs)."""
    if isinstance(event, TextDelta):
        return {"delta": common_pb2.TextDelta(text=event.text, quoted=event.quoted)}
    if isinstance(event, SourceList):
        return {"sources": common_pb2.SourceList(sources=[s.to_pb() for s in event.sources])}
    if isinstance(event, Finished):
        return {"finished": finished_to_pb(event)}
    return {"metadata": metadata_to_pb(event)}


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, core: InferenceCore) -> None:
        self._core = core

    async def Chat(self, request, context) -> AsyncIterator[inference_pb2.ChatResponse]:
        async for event in self._core.chat(query_from_pb(request)):
            yield inference_pb2.ChatResponse(**event_fields(event, metadata_to_pb))

    async def Ask(self, request, context) -> inference_pb2.AskResponse:
        metadata, text, sources, finished = await self._core.ask(query_from_pb(request))
        return inference_pb2.AskResponse(metadata=metadata_to_pb(metadata), text=text,
                                         sources=[s.to_pb() for s in sources], finished=finished_to_pb(finished))

    async def SubmitFeedback(self, request, context) -> inference_pb2.SubmitFeedbackResponse:
        await self._core.submit_feedback(request.answer_id, request.session_id,
                                         owner_for(request.owner, current_client()),
                                         rating_from_pb(request.rating), request.comment, request.corrected_answer)
        return inference_pb2.SubmitFeedbackResponse()

    async def GetModelInfo(self, request, context) -> inference_pb2.GetModelInfoResponse:
        return inference_pb2.GetModelInfoResponse(**self._core.model_info())

    async def CheckPlugins(self, request, context) -> inference_pb2.CheckPluginsResponse:
        findings, generated_at, unknown = self._core.check_plugins(context_from_pb(request.context))
        return inference_pb2.CheckPluginsResponse(findings=[finding_to_pb(f) for f in findings],
                                                  update_center_generated_at=generated_at, unknown_plugins=unknown)


def build_query_from_pb(
    request: build_log_pb2.ExplainBuildLogRequest | build_log_pb2.GetBuildLogExplanationRequest,
) -> BuildQuery:
    # The context's version and plugins replace the older fields when it sets them; its limits are checked here
    # (the explainer checks the fields it reads).
    ctx = context_from_pb(request.context) if request.HasField("context") else JenkinsContext()
    validate(ctx)
    return BuildQuery(
        log=request.log,
        job_name=request.job_name or ctx.page.name,
        build_number=request.build_number,
        jenkins_version=ctx.core_version or request.jenkins_version,
        plugins=list(ctx.plugins) or [(p.plugin_id, p.version) for p in request.plugins],
        owner=owner_for(request.owner, current_client()),
        options=options_from_pb(request.options),
        refresh=request.refresh,
    )


def facts_to_pb(facts: LogFacts, fingerprint: str) -> build_log_pb2.BuildLogFacts:
    return build_log_pb2.BuildLogFacts(
        result=facts.result or "", stage=facts.stage or "", stage_path=list(facts.stage_path),
        parallel_branch=facts.parallel_branch or "", step=facts.step or "", signature_id=facts.signature_id,
        signature_label=facts.signature_label, signature_line=facts.signature_line or "",
        first_error_line=facts.first_error_line or "", first_error_line_number=facts.first_error_line_number or 0,
        exception_class=facts.exception_class or "", exception_message=facts.exception_message or "",
        root_cause_class=facts.root_cause_class or "", root_cause_message=facts.root_cause_message or "",
        exit_code=facts.exit_code, excerpt=facts.excerpt, masked_count=facts.masked_count,
        truncated=facts.truncated, input_bytes=facts.input_bytes, fingerprint=fingerprint,
    )


def explain_metadata_to_pb(m: ExplainMetadata) -> build_log_pb2.ExplainBuildLogMetadata:
    return build_log_pb2.ExplainBuildLogMetadata(answer=metadata_to_pb(m.answer),
                                                 facts=facts_to_pb(m.facts, m.fingerprint), reused=m.reused)


class BuildLogServicer(build_log_pb2_grpc.BuildLogServiceServicer):
    def __init__(self, explainer: BuildLogExplainer) -> None:
        self._explainer = explainer

    async def ExplainBuildLog(self, request, context) -> AsyncIterator[build_log_pb2.ExplainBuildLogResponse]:
        async for event in self._explainer.explain(build_query_from_pb(request)):
            yield build_log_pb2.ExplainBuildLogResponse(**event_fields(event, explain_metadata_to_pb))

    async def GetBuildLogExplanation(self, request, context) -> build_log_pb2.GetBuildLogExplanationResponse:
        whole = await self._explainer.explain_whole(build_query_from_pb(request))
        return build_log_pb2.GetBuildLogExplanationResponse(
            metadata=explain_metadata_to_pb(whole.metadata), text=whole.text,
            sources=[s.to_pb() for s in whole.sources], finished=finished_to_pb(whole.finished),
            summary=whole.sections.summary, probable_cause=whole.sections.probable_cause,
            fix_steps=whole.sections.fix_steps,
        )
