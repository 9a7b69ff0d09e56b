"""Explain a failed build: console log -> facts (no model) -> retrieval -> grounded prompt -> streamed explanation.

No gRPC here. The log goes through `jenkins_assistant.build_log.extract` first, which masks secrets before anything
else reads it: the model, the retrieval query, the warnings and the facts returned only ever see the masked text,
and the raw log is dropped once extracted (never logged). The model gets the facts and the bounded excerpt, not the
log. Generation is the chat's own (`InferenceCore.turn` / `generate`: admission, slots, cancellation, trimming), so
an explanation queues, streams and stops exactly like an answer.

With a cache (`explain_cache.ExplanationCache`, Redis), a failure whose fingerprint was explained before gets that
explanation back at once: the facts are still extracted from this log (they are this build's), but there is no
retrieval, no slot and no model call; the metadata says `reused`. Only explanations the model ended by itself are
stored: one cut at max_tokens, cancelled or failed would be served incomplete for the whole TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from jenkins_assistant.build_log import BuildLogSettings, LogFacts, check_size, extract, fingerprint
from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.common.grounded_prompt import Passage, passages_block
from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.inference import metrics
from jenkins_assistant.inference.core import (
    MAX_OWNER_CHARS,
    AnswerMetadata,
    ChatOptions,
    ChatQuery,
    Finished,
    Generated,
    InferenceCore,
    SourceList,
    TextDelta,
    Usage,
    collect,
    sources_from_passages,
)
from jenkins_assistant.inference.explain_cache import CachedExplanation, ExplanationCache
from jenkins_assistant.inference.explain_sections import ExplanationSections, parse_explanation
from jenkins_assistant.inference.jenkins_context import JenkinsContext, assess
from jenkins_assistant.inference.model import Prompt
from jenkins_assistant.inference.templates import Message

# The three sections are what the structured result is parsed from (explain_sections.parse_explanation, which
# also copes when a small model does not follow them); the shape is spelled out because a 135M-0.5B model copies
# a template far more reliably than it follows a description of one.
EXPLAIN_SYSTEM_PROMPT = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "A Jenkins build failed. From the facts extracted from its console log, the log excerpt and the numbered "
    "documentation passages, explain concisely why it failed and how to fix it, in exactly this markdown shape:\n"
    "**Summary**: one sentence saying what failed.\n"
    "**Probable cause**: why it failed.\n"
    "**Fix**:\n1. first step\n2. next step\n"
    "Cite the passage a fact comes from as [1], [2]. Values shown as **** were secrets, masked on purpose. "
    "If the log does not show the cause, say so instead of guessing."
)

MAX_PLUGINS = 2000
MAX_PLUGIN_FIELD_CHARS = 200
MAX_JOB_NAME_CHARS = 1000
MAX_VERSION_CHARS = 64
# Plugins named in the log are the ones worth the model's attention; a controller has hundreds.
MAX_PLUGINS_IN_PROMPT = 20
MAX_QUERY_CHARS = 600
# The excerpt is halved (head and tail kept) until the prompt fits; below this it is dropped.
MIN_EXCERPT_CHARS = 200
# How much of a log is looked at to tell text from binary data (its head and its tail).
BINARY_SAMPLE_BYTES = 64 * 1024
MAX_NON_TEXT_SHARE = 0.10
_NON_TEXT = {*range(9), 11, 12, *range(14, 27), *range(28, 32), 127}


@dataclass
class BuildQuery:
    log: bytes
    job_name: str = ""
    build_number: int = 0
    jenkins_version: str = ""
    plugins: list[tuple[str, str]] = field(default_factory=list)  # (plugin id, version)
    owner: str = ""
    options: ChatOptions = field(default_factory=ChatOptions)
    refresh: bool = False  # generate even when the failure's explanation is cached (and replace it)


def build_context(query: BuildQuery) -> JenkinsContext | None:
    """The controller's version and plugins as a Jenkins context (None when the request names neither)."""
    if not query.jenkins_version and not query.plugins:
        return None
    return JenkinsContext(core_version=query.jenkins_version, plugins=tuple(query.plugins))


def context_digest(context: JenkinsContext | None) -> str:
    """Short, order-independent digest of a context: the passages it ranks first may differ between controllers."""
    if context is None:
        return ""
    text = context.core_version + "\0" + "\0".join(sorted(f"{pid.lower()}={v}" for pid, v in context.plugins))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class ExplainMetadata:
    answer: AnswerMetadata
    facts: LogFacts
    fingerprint: str
    reused: bool = False  # the explanation is the cached one of an earlier build with the same fingerprint


@dataclass
class Explanation:
    """A whole explanation: what the stream carries, collected, and its text parsed into sections."""

    metadata: ExplainMetadata
    text: str
    sources: list[SourceRef]
    finished: Finished
    sections: ExplanationSections


ExplainEvent = ExplainMetadata | SourceList | TextDelta | Finished


def refuse_binary(log: bytes) -> None:
    """InvalidInput when the log's head or tail is mostly not text (NUL and other control bytes, invalid UTF-8):
    an archive or an image sent by mistake. A text log with a few bad sequences is read, with them replaced."""
    sample = log if len(log) <= 2 * BINARY_SAMPLE_BYTES else log[:BINARY_SAMPLE_BYTES] + log[-BINARY_SAMPLE_BYTES:]
    text = sample.decode("utf-8", "replace")
    bad = text.count("\ufffd") + sum(1 for ch in text if ord(ch) in _NON_TEXT)
    if bad > MAX_NON_TEXT_SHARE * len(text):
        raise InvalidInput(f"console log looks like binary data ({bad} of {len(text)} characters sampled are "
                           "control bytes or invalid UTF-8): send the console text")


def retrieval_query(facts: LogFacts) -> str:
    """What the documentation is searched for: the signature, the exception chain, the first error."""
    parts = [facts.signature_label if facts.signature_id != "unknown" else "",
             facts.root_cause_class or "", facts.root_cause_message or "",
             facts.exception_class if facts.exception_class != facts.root_cause_class else "",
             facts.first_error_line or facts.signature_line or ""]
    query = " ".join(" ".join(p.split()) for p in parts if p)
    return query[:MAX_QUERY_CHARS].strip() or "Jenkins build failed"


def facts_block(facts: LogFacts, query: BuildQuery) -> str:
    """The facts as lines `Name: value`, only those known."""
    plugins = [(pid, version) for pid, version in query.plugins if pid.lower() in facts.excerpt.lower()]
    rows = [
        ("Job", query.job_name + (f" #{query.build_number}" if query.build_number else "")),
        ("Jenkins version", query.jenkins_version),
        ("Result", facts.result or ""),
        ("Failing stage", " > ".join(facts.stage_path)),
        ("Parallel branch", facts.parallel_branch or ""),
        ("Failing step", facts.step or ""),
        ("Error signature", f"{facts.signature_label} ({facts.signature_id})"),
        ("Signature line", facts.signature_line or ""),
        ("First error", facts.first_error_line or ""),
        ("Exception", " ".join(filter(None, [facts.exception_class, facts.exception_message]))),
        ("Root cause", " ".join(filter(None, [facts.root_cause_class, facts.root_cause_message]))
         if facts.root_cause_class != facts.exception_class else ""),
        ("Exit code", "" if facts.exit_code is None else str(facts.exit_code)),
        ("Plugins named in the log", ", ".join(f"{pid} {v}" for pid, v in plugins[:MAX_PLUGINS_IN_PROMPT])),
    ]
    return "\n".join(f"{name}: {value}" for name, value in rows if value)


def shorten_excerpt(excerpt: str, chars: int) -> str:
    """The excerpt's head and tail, `chars` in all: the first error is near the head, the end of the run at the
    tail."""
    if len(excerpt) <= chars:
        return excerpt
    half = chars // 2
    return f"{excerpt[:half]}\n[... cut to fit the context window ...]\n{excerpt[-half:]}"


def explain_messages(facts: LogFacts, query: BuildQuery, excerpt: str, passages: list[Passage]) -> list[Message]:
    user = f"Facts extracted from the console log:\n{facts_block(facts, query)}"
    if excerpt:
        user += f"\n\nLog excerpt:\n```\n{excerpt}\n```"
    if passages:
        user += f"\n\nDocumentation passages:\n{passages_block(passages)}"
    user += "\n\nWhy did this build fail, and how do I fix it?"
    return [{"role": "system", "content": EXPLAIN_SYSTEM_PROMPT}, {"role": "user", "content": user}]


class BuildLogExplainer:
    """ExplainBuildLog's core, on the inference core's model, index and slots."""

    def __init__(self, core: InferenceCore, settings: BuildLogSettings, cache: ExplanationCache | None = None) -> None:
        self.core = core
        self.settings = settings
        self.cache = cache

    def _validate(self, query: BuildQuery) -> None:
        if not isinstance(query.log, bytes | bytearray):
            raise InvalidInput("log must be bytes")
        if not query.log.strip():
            raise InvalidInput("console log is empty")
        check_size(query.log, self.settings)  # refused, not cut: the caller knows best which tail to send
        refuse_binary(bytes(query.log))
        if len(query.job_name) > MAX_JOB_NAME_CHARS or not query.job_name.isprintable():
            raise InvalidInput(f"job_name must be at most {MAX_JOB_NAME_CHARS} printable characters")
        if query.build_number < 0:
            raise InvalidInput("build_number must be 0 (unknown) or positive")
        if len(query.jenkins_version) > MAX_VERSION_CHARS or not query.jenkins_version.isprintable():
            raise InvalidInput(f"jenkins_version must be at most {MAX_VERSION_CHARS} printable characters")
        if len(query.plugins) > MAX_PLUGINS:
            raise InvalidInput(f"{len(query.plugins)} plugins; the limit is {MAX_PLUGINS}")
        for pid, version in query.plugins:
            if not pid or any(len(x) > MAX_PLUGIN_FIELD_CHARS or not x.isprintable() for x in (pid, version)):
                raise InvalidInput(f"each plugin needs a plugin_id, and plugin_id and version of at most "
                                   f"{MAX_PLUGIN_FIELD_CHARS} printable characters")
        if len(query.owner) > MAX_OWNER_CHARS or (query.owner and not query.owner.isprintable()):
            raise InvalidInput(f"owner must be at most {MAX_OWNER_CHARS} printable characters")
        self.core.validate_options(query.options)

    def _build_prompt(self, facts: LogFacts, query: BuildQuery, passages: list[Passage],
                      max_tokens: int) -> tuple[Prompt, int, int]:
        """The prompt, how many passages it kept and how much of the excerpt: the excerpt is halved down to
        MIN_EXCERPT_CHARS first (the facts carry the key lines), then passages go, then the excerpt."""
        model = self.core.model
        passages = list(passages)
        excerpt = facts.excerpt
        wanted_room = min(max_tokens, model.n_ctx // 4)
        while True:
            prompt = model.prepare(explain_messages(facts, query, excerpt, passages))
            if prompt.n_tokens + wanted_room <= model.n_ctx:
                break
            if len(excerpt) > MIN_EXCERPT_CHARS * 2:
                excerpt = shorten_excerpt(excerpt, len(excerpt) // 2)
            elif passages:
                passages.pop()
            elif excerpt:
                excerpt = ""
            else:
                break  # the facts alone: model.fit refuses if even they leave no room
        return prompt, len(passages), len(excerpt)

    async def explain(self, query: BuildQuery) -> AsyncIterator[ExplainEvent]:
        self._validate(query)
        core = self.core
        started = time.perf_counter()
        asked_at = time.time()
        options = query.options
        # The CPU-bound part (a 5 MB log: a second or so) stays off the event loop.
        facts = await asyncio.to_thread(extract, bytes(query.log), self.settings)
        query.log = b""  # the unmasked log is not kept beyond extraction
        warnings: list[str] = []
        if facts.truncated:
            warnings.append(f"the log was read from its last {self.settings.max_log_bytes} bytes")
        failure = fingerprint(facts)
        # The controller's core version and plugins re-rank the passages as for a chat answer (an installed plugin's
        # page moves up, a missing one's down) and so are part of the cache key; the prompt already names the
        # plugins the log mentions.
        context = build_context(query)
        cache_key = ""
        if self.cache is not None:
            cache_key = self.cache.key(failure, core.model.name, not options.disable_retrieval,
                                       context_digest(context))
            cached = None if query.refresh else await self.cache.get(cache_key)
            if cached is not None:
                async for event in self._reuse(cached, facts, failure, query, warnings, started, asked_at):
                    yield event
                return
        turn = core.turn()
        finished = False
        try:
            search = retrieval_query(facts)
            hits, passages, retrieval_ms, reranked = await core.retrieve_in_context(search, options, warnings,
                                                                                   "explained", context)
            max_tokens = options.max_tokens or core.settings.default_max_tokens
            prompt, used_passages, excerpt_chars = await asyncio.to_thread(
                self._build_prompt, facts, query, passages, max_tokens)
            if used_passages < len(passages):
                warnings.append(f"context window: used {used_passages} of {len(passages)} passages")
            if excerpt_chars < len(facts.excerpt):
                warnings.append(f"context window: the model saw {excerpt_chars} of the excerpt's "
                                f"{len(facts.excerpt)} characters")
            params = core.sampling(options, core.model.fit(prompt.n_tokens, max_tokens), prompt.stop)
            answer_id = uuid.uuid4().hex
            sources: list[SourceRef] = sources_from_passages(hits[:used_passages], passages[:used_passages],
                                                             core.settings.snippet_chars)
            context_use = None if context is None else assess(context, passages[:used_passages],
                                                                   core.update_center, reranked)
            answer = AnswerMetadata(answer_id=answer_id, standalone_question=search, history_turns_used=0,
                                    memory_available=core.memory is not None, warnings=warnings,
                                    model=core.model.name, jenkins_context=context_use)
            yield ExplainMetadata(answer=answer, facts=facts, fingerprint=failure)
            yield SourceList(sources)

            out = Generated()
            async with contextlib.aclosing(core.generate(turn, prompt, params, out,
                                                                passages[:used_passages])) as deltas:
                async for delta in deltas:
                    yield delta
            assert out.result is not None
            usage = core.usage(out.result, started, out.first_delta_at, retrieval_ms, turn.queue_ms)
            # Recorded like an answer, so it can be rated (SubmitFeedback with no session); the question is the
            # retrieval query made of the masked facts: the log itself is never stored.
            core.remember_answer(answer_id, ChatQuery(question="", owner=query.owner), answer=out.text,
                                 standalone=search, sources=sources, finish_reason=out.result.finish_reason,
                                 usage=usage, asked_at=asked_at, kind="explain")
            metrics.ANSWERS.labels(out.result.finish_reason).inc()
            finished = True
            if cache_key and out.result.finish_reason == "stop" and out.text.strip():
                # Before the finish event: a client leaving once it has the whole text must not lose the entry.
                await self.cache.put(cache_key, CachedExplanation(  # type: ignore[union-attr]
                    text=out.text, sources=sources, model=core.model.name,
                    completion_tokens=out.result.completion_tokens))
            yield Finished(finish_reason=out.result.finish_reason, usage=usage)
        except (GeneratorExit, asyncio.CancelledError):
            if not finished:
                metrics.ANSWERS.labels("cancelled").inc()
            raise
        except Exception:
            metrics.ANSWERS.labels("error").inc()
            raise
        finally:
            turn.close()

    async def _reuse(self, cached: CachedExplanation, facts: LogFacts, failure: str, query: BuildQuery,
                     warnings: list[str], started: float, asked_at: float) -> AsyncIterator[ExplainEvent]:
        """The cached explanation as a stream of the usual events: this log's facts, the stored sources, the text in
        one delta. No admission: nothing is generated, so a full queue does not delay it."""
        core = self.core
        answer_id = uuid.uuid4().hex
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cached.explained_at))
        warnings.append(f"reused the explanation generated on {when} for the same failure ({failure})")
        answer = AnswerMetadata(answer_id=answer_id, standalone_question="", history_turns_used=0,
                                memory_available=core.memory is not None, warnings=warnings,
                                model=cached.model or core.model.name)
        yield ExplainMetadata(answer=answer, facts=facts, fingerprint=failure, reused=True)
        yield SourceList(cached.sources)
        yield TextDelta(cached.text)
        elapsed_ms = (time.perf_counter() - started) * 1000
        usage = Usage(time_to_first_token_ms=elapsed_ms, total_ms=elapsed_ms)
        core.remember_answer(answer_id, ChatQuery(question="", owner=query.owner), answer=cached.text,
                             standalone=retrieval_query(facts), sources=cached.sources, finish_reason="stop",
                             usage=usage, asked_at=asked_at, kind="explain")
        yield Finished(finish_reason="stop", usage=usage)

    async def explain_whole(self, query: BuildQuery) -> Explanation:
        """The whole explanation of `explain`, collected, with its sections parsed."""
        metadata, text, sources, finished = await collect(self.explain(query))
        return Explanation(metadata=metadata, text=text, sources=sources, finished=finished,
                           sections=parse_explanation(text))
