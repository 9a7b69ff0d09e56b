"""The inference core: question -> memory -> standalone question -> retrieval -> prompt -> streamed answer.

No gRPC here. `InferenceCore.chat` is an async generator of domain events (metadata, sources, text
deltas, finished) that the servicer converts to protobuf. What is known before generation (the standalone
question, the sources) goes out first: a first token takes seconds on a small CPU, the sources milliseconds.

A chat is admitted first (a full queue is refused at once), then reads its history and retrieves without
holding a slot; it takes a slot only to generate (or earlier, when the model must condense a follow-up).
Generation runs on a slot from the SlotPool, through the configured engine (`engine.py`: llama.cpp in a
worker thread, or an OpenAI-compatible server's stream); when the consumer goes away (client cancel,
deadline) the engine's stream is closed (the worker stops at the next token, an upstream's HTTP response
is closed) and the slot is released once the engine has really let go of it. The slot is freed before the
exchange is stored in memory; see `_store` for how the finish event and the memory write relate.

Every finished answer is also recorded in the memory service (`remember_answer`: question, answer, sources' URLs,
model, corpus, timings), in the background: the finish event never waits for it. Feedback goes there too, so this
process keeps no answer state and a restart or another replica loses no rating.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jenkins_assistant.common.errors import FailedPrecondition, InvalidInput, Overloaded
from jenkins_assistant.common.pasted_output import search_text
from jenkins_assistant.common.records import RATINGS, AnswerFeedback, AnswerRecord, SourceRef
from jenkins_assistant.inference import metrics
from jenkins_assistant.inference.condense import concat_question, condense_with_model
from jenkins_assistant.inference.config import CondenseMode, InferenceSettings
from jenkins_assistant.inference.engine import GenerationEngine, GenerationSlot
from jenkins_assistant.inference.jenkins_context import (
    ContextUse,
    Finding,
    JenkinsContext,
    UpdateCenter,
    assess,
    candidates,
    context_note,
    rerank,
    validate,
    with_note,
)
from jenkins_assistant.inference.memory_client import MemoryClient, MemoryUnavailable
from jenkins_assistant.inference.model import GenerationResult, Prompt, SamplingParams
from jenkins_assistant.inference.prompts import Exchange, Passage, answer_messages
from jenkins_assistant.inference.quoting import choose_quotes, quotes_markdown, rank_excerpts, without_quotes
from jenkins_assistant.inference.retrieval.index import Hit, RetrievalIndex
from jenkins_assistant.inference.slots import SlotPool
from jenkins_assistant.inference.trimming import (
    TURN_STOP_SEQUENCES,
    HeadingEchoes,
    ReadoutGuard,
    RepetitionGuard,
    StreamTrimmer,
)

log = logging.getLogger(__name__)

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_OWNER_CHARS = 256
MAX_STOP_SEQUENCES = 8
MAX_STOP_CHARS = 64
MAX_FEEDBACK_COMMENT_CHARS = 2000
# The memory service's default text limit; it checks its own (configurable) one as well.
MAX_CORRECTED_ANSWER_CHARS = 32_000
# The quantization in a GGUF file name ("SmolLM2-135M-Instruct.Q4_1.gguf", "...-q4_k_m.gguf").
_QUANT = re.compile(r"[._-]((?:i?q\d\w*?)|bf16|f16|f32)\.gguf$", re.IGNORECASE)


def quant_of(source: str) -> str:
    """The quantization named in a model's file name, upper case; empty when it names none."""
    found = _QUANT.search(source)
    return found.group(1).upper() if found else ""


@dataclass
class ChatOptions:
    max_tokens: int = 0
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    retrieval_k: int = 0
    disable_retrieval: bool = False
    seed: int = 0
    disable_quotes: bool = False


@dataclass
class ChatQuery:
    question: str
    session_id: str = ""
    owner: str = ""
    options: ChatOptions = field(default_factory=ChatOptions)
    context: JenkinsContext | None = None  # the user's Jenkins (jenkins_context.py); None = not sent


@dataclass
class AnswerMetadata:
    answer_id: str
    standalone_question: str
    history_turns_used: int
    memory_available: bool
    warnings: list[str]
    model: str
    jenkins_context: ContextUse | None = None  # what the request's context changed; None without one


@dataclass
class TextDelta:
    text: str
    quoted: bool = False  # verbatim excerpts of the sources, after the generated text (quoting.py)


@dataclass
class SourceList:
    sources: list[SourceRef]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_ms: float = 0.0
    tokens_per_s: float = 0.0
    retrieval_ms: float = 0.0
    total_ms: float = 0.0
    queue_ms: float = 0.0


@dataclass
class Finished:
    finish_reason: str  # "stop" | "length" | "cancelled" | "repetition" | "readout"
    usage: Usage
    warnings: list[str] = field(default_factory=list)  # what went wrong after the metadata (storing the exchange)


ChatEvent = AnswerMetadata | TextDelta | SourceList | Finished


def snippet(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def sources_from_passages(hits: list[Hit], passages: list[Passage], snippet_chars: int) -> list[SourceRef]:
    """One source per passage given to the model, in prompt order, numbered as the answer cites them: `[2]` is
    the second source even when two passages come from the same page."""
    return [
        SourceRef(url=passage.url, title=passage.title, snippet=snippet(passage.text, snippet_chars), score=hit.score,
                  license=hit.chunk.license, citation=number, section=passage.section, passage=passage.text)
        for number, (hit, passage) in enumerate(zip(hits, passages, strict=True), 1)
    ]


async def collect(events: AsyncIterator) -> tuple[Any, str, list[SourceRef], Finished]:
    """A whole answer from its stream of events: its metadata (whatever kind of answer it describes), text,
    sources and finish event."""
    metadata, parts, sources, finished = None, [], [], None
    async for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, SourceList):
            sources = event.sources
        elif isinstance(event, Finished):
            finished = event
        else:
            metadata = event
    assert metadata is not None and finished is not None
    return metadata, "".join(parts), sources, finished


class _SlotLease:
    """A slot held by one answer; its work runs on the generation executor, and the slot goes back to the
    pool only after the last piece of work on it has finished (even if the answer was abandoned)."""

    def __init__(self, pool: SlotPool[GenerationSlot], slot: GenerationSlot, executor: ThreadPoolExecutor) -> None:
        self.slot = slot
        self._pool = pool
        self._executor = executor
        self._running: asyncio.Future | None = None
        self.cancelled = threading.Event()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        self._running = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        return self._running

    async def settle(self) -> None:
        """Waits until the work on the slot has ended (a generation told to stop ends at its next token)."""
        if self._running is not None and not self._running.done():
            await asyncio.wait([self._running])

    def release(self) -> None:
        self.cancelled.set()
        if self._running is not None and not self._running.done():
            self._running.add_done_callback(lambda _f: self._give_back())
        else:
            self._give_back()

    def _give_back(self) -> None:
        self._pool.release(self.slot)
        metrics.ACTIVE_SLOTS.set(self._pool.active)


@dataclass
class Generated:
    """What `InferenceCore.generate` leaves behind once its deltas are consumed."""

    text: str = ""
    result: GenerationResult | None = None
    first_delta_at: float | None = None


class _Turn:
    """One admitted answer's place in the service: counted as preparing (no slot yet) until it takes a slot, then
    by the pool until the slot goes back. `close` undoes whichever holds, so every way out of an answer frees it."""

    def __init__(self, core: InferenceCore) -> None:
        core._admit()
        self._core = core
        self._preparing = True
        self.lease: _SlotLease | None = None
        self.queue_ms = 0.0

    async def take_slot(self) -> None:
        if self.lease is not None:
            return
        self._preparing = False
        self._core._preparing -= 1
        self.lease, self.queue_ms = await self._core._take_slot()

    def release_slot(self) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def close(self) -> None:
        if self._preparing:
            self._preparing = False
            self._core._preparing -= 1
        self.release_slot()


class InferenceCore:
    def __init__(
        self,
        settings: InferenceSettings,
        model: GenerationEngine,
        index: RetrievalIndex | None,
        memory: MemoryClient | None,
        update_center: UpdateCenter | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.index = index
        self.memory = memory
        self.update_center = update_center  # plugin versions, security warnings, deprecations; None = not loaded
        self.pool: SlotPool[GenerationSlot] = SlotPool(list(model.slots), settings.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=len(model.slots), thread_name_prefix="generate")
        # Answers still being recorded (answer id -> task): feedback on one waits for it, close() too.
        self._recording: dict[str, asyncio.Task] = {}
        # Chats admitted but not yet in the pool (reading history, retrieving): they count against its capacity.
        self._preparing = 0
        # Memory writes still running after their answer finished: kept referenced (a bare task may be collected
        # mid-flight) and awaited by close().
        self._writes: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ validation
    def _validate(self, query: ChatQuery) -> None:
        s = self.settings
        question = query.question.strip()
        if not question:
            raise InvalidInput("question is empty")
        if len(query.question) > s.max_question_chars:
            raise InvalidInput(f"question has {len(query.question)} characters; the limit is {s.max_question_chars}")
        if "\x00" in query.question:
            raise InvalidInput("question contains a NUL character")
        if query.session_id and not SESSION_ID_PATTERN.fullmatch(query.session_id):
            raise InvalidInput("session_id must be 1-128 characters of [A-Za-z0-9._-]")
        if len(query.owner) > MAX_OWNER_CHARS or (query.owner and not query.owner.isprintable()):
            raise InvalidInput(f"owner must be at most {MAX_OWNER_CHARS} printable characters")
        if query.session_id and not query.owner:
            # An empty owner once mapped to one shared default: every such caller read every such session.
            raise InvalidInput("a session_id needs an owner (the user the session belongs to)")
        if query.context is not None:
            validate(query.context)
        self.validate_options(query.options)

    def validate_options(self, o: ChatOptions) -> None:
        s = self.settings
        if not 0 <= o.max_tokens <= s.max_tokens_limit:
            raise InvalidInput(f"max_tokens must be 0 (default) to {s.max_tokens_limit}")
        if o.temperature is not None and not 0.0 <= o.temperature <= 2.0:
            raise InvalidInput("temperature must be between 0 and 2")
        if o.top_p is not None and not 0.0 < o.top_p <= 1.0:
            raise InvalidInput("top_p must be in (0, 1]")
        if not 0 <= o.retrieval_k <= s.max_retrieval_k:
            raise InvalidInput(f"retrieval_k must be 0 (default) to {s.max_retrieval_k}")
        if len(o.stop) > MAX_STOP_SEQUENCES or any(not x or len(x) > MAX_STOP_CHARS for x in o.stop):
            raise InvalidInput(f"at most {MAX_STOP_SEQUENCES} stop sequences of 1-{MAX_STOP_CHARS} characters")

    # ------------------------------------------------------------------ memory
    async def _history(self, query: ChatQuery, warnings: list[str]) -> tuple[list[Exchange], bool]:
        if not query.session_id or self.settings.history_turns == 0:
            return [], self.memory is not None
        if self.memory is None:
            warnings.append("no memory service configured: answered without history")
            return [], False
        try:
            history = await self.memory.get_history(query.session_id, query.owner, self.settings.history_turns)
            # The model reads its past answers without their quotes: shown them, it would write quote blocks of
            # its own, text it invented under a heading that says it is the documentation's.
            return [dataclasses.replace(e, answer=without_quotes(e.answer)) for e in history], True
        except MemoryUnavailable as exc:
            log.warning("memory service %s unavailable: %s", self.memory.target, exc)
            warnings.append("memory service unavailable: answered without history")
            return [], False

    async def _remember(self, query: ChatQuery, answer: str, sources: list[SourceRef], asked_at: float) -> bool:
        """Stores the exchange (retrying an unavailable memory service until memory_append_deadline_s); whether
        it was stored."""
        assert self.memory is not None
        try:
            # Memory keeps where an answer came from, not the passages' whole text.
            stored = [dataclasses.replace(source, passage="") for source in sources]
            await self.memory.append_turn(query.session_id, query.owner, query.question, answer, stored,
                                          asked_at, time.time(), deadline_s=self.settings.memory_append_deadline_s)
            return True
        except MemoryUnavailable as exc:
            metrics.EXCHANGES_NOT_STORED.inc()
            log.warning("could not store the exchange of session %s: %s", query.session_id, exc)
            return False
        except Exception:  # a bug here must not turn an answer the client already has into an error
            metrics.EXCHANGES_NOT_STORED.inc()
            log.exception("could not store the exchange of session %s", query.session_id)
            return False

    def _write_done(self, task: asyncio.Task) -> None:
        self._writes.discard(task)
        metrics.MEMORY_WRITES_IN_FLIGHT.set(len(self._writes))

    async def _store(self, query: ChatQuery, answer: str, sources: list[SourceRef], asked_at: float) -> list[str]:
        """Stores the exchange; the warnings of the finish event.

        Two wishes pull apart here: the finish event should not wait for memory (up to its deadline, and longer
        with retries), and the client must learn when its exchange was not stored. The write runs as a task of
        its own that the finish event waits for at most memory_finish_wait_s. A healthy write takes
        milliseconds, so in the normal case the finish event confirms it and a follow-up sent at once sees the
        exchange. When memory fails or is slow, the finish event goes out after that wait saying the exchange
        is not stored (or not yet), and the write goes on retrying in the background until
        memory_append_deadline_s, counted in exchanges_not_stored_total if it never succeeds. A client that goes
        away during the wait does not cancel the write."""
        task = asyncio.create_task(self._remember(query, answer, sources, asked_at))
        self._writes.add(task)
        metrics.MEMORY_WRITES_IN_FLIGHT.set(len(self._writes))
        task.add_done_callback(self._write_done)
        done, _pending = await asyncio.wait({task}, timeout=self.settings.memory_finish_wait_s)
        if not done:
            still_trying = (f"memory service slow or unavailable: this exchange is not stored yet (still trying for "
                            f"up to {self.settings.memory_append_deadline_s:g} s)")
            return [still_trying]
        if not task.result():
            return ["memory service unavailable: this exchange was not stored"]
        return []

    # ------------------------------------------------------------------ prompt
    def _build_prompt(
        self, question: str, passages: list[Passage], history: list[Exchange], max_tokens: int,
        note: Callable[[list[Passage]], str] | None = None,
    ) -> tuple[Prompt, int, int]:
        """The engine's prompt and how many passages and past exchanges it kept: drops passages, then the oldest
        history, until the answer fits. `note` adds sentences about the passages kept to the user's turn."""
        passages, history = list(passages), list(history)
        wanted_room = min(max_tokens, self.model.n_ctx // 4)
        while True:
            messages = answer_messages(question, passages, history, self.settings.history_answer_chars,
                                       self.model.system_prompt)
            if note is not None:
                messages = with_note(messages, note(passages))
            prompt = self.model.prepare(messages)
            if prompt.n_tokens + wanted_room <= self.model.n_ctx:
                break
            if passages:
                passages.pop()
            elif history:
                history.pop(0)
            else:
                break
        return prompt, len(passages), len(history)

    def sampling(self, options: ChatOptions, max_tokens: int, stop: list[str]) -> SamplingParams:
        s = self.settings
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=s.temperature if options.temperature is None else options.temperature,
            top_p=s.top_p if options.top_p is None else options.top_p,
            repeat_penalty=s.repeat_penalty,
            stop=list(dict.fromkeys([*stop, *TURN_STOP_SEQUENCES, *options.stop])),
            seed=options.seed or None,
        )

    def _condenses_with_model(self, history: list[Exchange]) -> bool:
        return bool(history) and self.settings.condense is CondenseMode.LLM

    async def _standalone(self, lease: _SlotLease | None, question: str, history: list[Exchange]) -> str:
        if not history or self.settings.condense is CondenseMode.OFF:
            return question
        if self.settings.condense is CondenseMode.CONCAT:
            metrics.CONDENSED_QUESTIONS.labels("concat").inc()
            return concat_question(question, history)
        assert lease is not None  # the model condenses on the slot the answer will use
        standalone, rewritten = await lease.run(condense_with_model, self.model, lease.slot, question, history)
        metrics.CONDENSED_QUESTIONS.labels("rewrite" if rewritten else "concat").inc()
        return standalone

    # ------------------------------------------------------------------ admission and slots
    def _admit(self) -> None:
        """Refuses a chat at once when it could only wait beyond the queue's bound: chats still preparing (no slot
        yet) count as queued, so a full queue is refused before any memory or retrieval work."""
        in_flight = self._preparing + self.pool.active + self.pool.queued
        if in_flight >= len(self.model.slots) + self.settings.max_queue:
            raise Overloaded(f"all {len(self.model.slots)} generation slots are busy and {self.settings.max_queue} "
                             "chats are queued; retry later")
        self._preparing += 1

    async def _take_slot(self) -> tuple[_SlotLease, float]:
        """A slot for this chat (waiting in the FIFO queue when all are busy); the lease and the wait in ms. The
        caller has left `_preparing` just before: from here the pool counts the chat."""
        waiting_from = time.perf_counter()
        metrics.QUEUE_DEPTH.set(self.pool.queued + 1)
        try:
            slot = await self.pool.acquire()
        finally:
            metrics.QUEUE_DEPTH.set(self.pool.queued)
        metrics.ACTIVE_SLOTS.set(self.pool.active)
        return _SlotLease(self.pool, slot, self._executor), (time.perf_counter() - waiting_from) * 1000

    # ------------------------------------------------------------------ turns and generation (chat, explain)
    async def retrieve(self, text: str, options: ChatOptions, warnings: list[str],
                       done: str) -> tuple[list[Hit], list[Passage], float]:
        """The passages for `text` (none when retrieval is off or no index is loaded, with a warning saying the
        answer was `done` without documentation) and the retrieval time in ms."""
        hits, passages, retrieval_ms, _reranked = await self.retrieve_in_context(text, options, warnings, done, None)
        return hits, passages, retrieval_ms

    async def retrieve_in_context(self, text: str, options: ChatOptions, warnings: list[str], done: str,
                                  context: JenkinsContext | None) -> tuple[list[Hit], list[Passage], float, bool]:
        """`retrieve`, with the hits re-ranked for the user's Jenkins (a few more candidates are searched so that
        one just below the cut can move in); whether the context changed the order."""
        if options.disable_retrieval:
            return [], [], 0.0, False
        if self.index is None:
            warnings.append(f"no retrieval index loaded: {done} without documentation")
            return [], [], 0.0, False
        k = options.retrieval_k or self.settings.retrieval_k
        if (searched := search_text(text)) != text:
            metrics.PASTED_OUTPUT_REDUCED.inc()
        hits, retrieval_ms = await asyncio.to_thread(self.index.timed_search, searched, candidates(k, context))
        hits, reranked = rerank(hits, context, k)
        metrics.RETRIEVAL_LATENCY.observe(retrieval_ms / 1000)
        metrics.NAMED_PASSAGES.inc(sum(1 for hit in hits if hit.named))
        passages = [hit.passage for hit in hits]
        return hits, passages, retrieval_ms, reranked

    def turn(self) -> _Turn:
        """Admits one answer (raises Overloaded when the queue is full); close it in a `finally`."""
        return _Turn(self)

    async def generate(self, turn: _Turn, prompt: Prompt, params: SamplingParams, out: Generated,
                       passages: Sequence[Passage] = ()) -> AsyncIterator[TextDelta]:
        """The answer's text deltas, trimmed (of lines that only repeat the heading of one of the `passages` in the
        prompt too) and stopped where the answer starts repeating itself or reading the `passages` out one after
        another; takes the turn's slot if it has none yet and gives it back once generation is over. `out` receives
        the text, the engine's result and when the first delta came."""
        await turn.take_slot()
        assert turn.lease is not None
        trimmer = StreamTrimmer(HeadingEchoes.of(passages))
        readout = ReadoutGuard(passages if self.settings.readout_stop else ())
        guard = RepetitionGuard(self.settings.repetition_stop_chars)
        parts: list[str] = []
        started, first_piece_at, pieces_seen = time.perf_counter(), None, 0
        # Closed before the slot goes back, whichever way this ends (a repetition stop included): the engine stops
        # generating (the embedded worker at its next token, an upstream's HTTP stream at once).
        async with contextlib.aclosing(turn.lease.slot.stream(prompt, params, turn.lease)) as pieces:
            async for piece in pieces:
                if isinstance(piece, GenerationResult):
                    out.result = piece
                    continue
                pieces_seen += 1
                first_piece_at = first_piece_at or time.perf_counter()
                if text := guard.feed(readout.feed(trimmer.feed(piece))):
                    out.first_delta_at = out.first_delta_at or time.perf_counter()
                    parts.append(text)
                    yield TextDelta(text)
                if guard.stopped or readout.stopped:
                    break
        if guard.stopped or readout.stopped:
            # The answer is over only once the engine is: the slot then goes back at once, not from a callback on
            # this event loop after the worker's last token (a loop that may have ended by then).
            await turn.lease.settle()
            # The engine was closed before its own result: the counts are the pieces it streamed (a token each).
            ended = time.perf_counter()
            out.result = GenerationResult(text="".join(parts), finish_reason="repetition" if guard.stopped else "readout",
                                          prompt_tokens=prompt.n_tokens, completion_tokens=pieces_seen,
                                          time_to_first_token_s=(first_piece_at or ended) - started,
                                          generation_s=ended - started)
        assert out.result is not None
        if text := guard.feed(readout.feed(trimmer.finish()) + readout.finish()) + guard.finish():
            out.first_delta_at = out.first_delta_at or time.perf_counter()
            parts.append(text)
            yield TextDelta(text)
        turn.release_slot()  # generation is over: the next answer may use the slot (e.g. while memory is written)
        metrics.HEADING_ECHOES.inc(trimmer.echoes_removed)
        out.text = "".join(parts)

    # ------------------------------------------------------------------ chat
    async def chat(self, query: ChatQuery) -> AsyncIterator[ChatEvent]:
        self._validate(query)
        started = time.perf_counter()
        asked_at = time.time()
        options = query.options
        question = query.question.strip()
        warnings: list[str] = []
        turn = self.turn()
        finished = False
        try:
            history, memory_ok = await self._history(query, warnings)
            if self._condenses_with_model(history):
                # Condensing needs the model, so this chat takes its slot now and keeps it for the answer
                # (giving it back for the ~20 ms of retrieval would send the chat to the back of the queue).
                await turn.take_slot()
            standalone = await self._standalone(turn.lease, question, history)
            hits, passages, retrieval_ms, reranked = await self.retrieve_in_context(standalone, options, warnings,
                                                                                    "answered", query.context)
            max_tokens = options.max_tokens or self.settings.default_max_tokens
            ctx, center = query.context, self.update_center
            note = (None if ctx is None or ctx.empty
                    else lambda kept: context_note(ctx, assess(ctx, kept, center, reranked), center))
            # Tokenizing needs no slot: the vocabulary is read-only state shared by the contexts.
            prompt, used_passages, used_history = await asyncio.to_thread(
                self._build_prompt, question, passages, history, max_tokens, note
            )
            if used_passages < len(passages):
                warnings.append(f"context window: used {used_passages} of {len(passages)} passages")
            if used_history < len(history):
                warnings.append(f"context window: used {used_history} of {len(history)} past exchanges")
            params = self.sampling(options, self.model.fit(prompt.n_tokens, max_tokens), prompt.stop)
            answer_id = uuid.uuid4().hex
            sources = sources_from_passages(hits[:used_passages], passages[:used_passages], self.settings.snippet_chars)
            context_use = (None if ctx is None or ctx.empty
                           else assess(ctx, passages[:used_passages], center, reranked))
            yield AnswerMetadata(answer_id=answer_id, standalone_question=standalone, history_turns_used=used_history,
                                 memory_available=memory_ok, warnings=warnings, model=self.model.name,
                                 jenkins_context=context_use)
            yield SourceList(sources)

            out = Generated()
            # Closed with this chat (not when collected), so a client leaving stops the engine at once.
            async with contextlib.aclosing(self.generate(turn, prompt, params, out,
                                                                passages[:used_passages])) as deltas:
                async for delta in deltas:
                    yield delta
            assert out.result is not None
            # Quotes answer what the user just asked: the passages carry the conversation's topic already (they were
            # searched with it), and ranked against the joined questions the excerpts answered the first question
            # again (followups.jsonl, make eval: keyfact_recall 0.474 -> 0.596; see the README).
            if out.result.finish_reason != "cancelled" and (
                    quoted := await self._quotes(question, passages[:used_passages], out.text, options)):
                yield TextDelta(quoted, quoted=True)
                out.text += quoted  # what the user read: memory and the answer record keep the excerpts too
            usage = self.usage(out.result, started, out.first_delta_at, retrieval_ms, turn.queue_ms)
            self.remember_answer(answer_id, query, answer=out.text, standalone=standalone, sources=sources,
                                 finish_reason=out.result.finish_reason, usage=usage, asked_at=asked_at)
            metrics.ANSWERS.labels(out.result.finish_reason).inc()
            finished = True  # a client leaving while the exchange is stored has had its whole answer
            finish_warnings: list[str] = []
            # Stored even when the history could not be read: memory may be back by now, and the exchange happened.
            if query.session_id and self.memory is not None and out.result.finish_reason != "cancelled":
                finish_warnings = await self._store(query, out.text, sources, asked_at)
            yield Finished(finish_reason=out.result.finish_reason, usage=usage, warnings=finish_warnings)
        except (GeneratorExit, asyncio.CancelledError):
            if not finished:  # the client went away (cancel, deadline): generation stops at the next token
                metrics.ANSWERS.labels("cancelled").inc()
            raise
        except Exception:
            metrics.ANSWERS.labels("error").inc()
            raise
        finally:
            turn.close()

    async def _quotes(self, question: str, passages: list[Passage], answer: str, options: ChatOptions) -> str:
        """The markdown of the excerpts quoted after the answer; empty when quotes are off or nothing is left
        to quote. Chosen after generation, so they cost no time to the first token and can skip what the
        answer already says."""
        if options.disable_quotes or not self.settings.quotes or not passages:
            return ""
        assert self.index is not None  # passages come from it
        started = time.perf_counter()
        ranked = await asyncio.to_thread(rank_excerpts, question, passages, self.index.embed,
                                         self.settings.quote_chars)
        markdown = quotes_markdown(choose_quotes(ranked, passages, self.settings.quotes, answer), answer)
        metrics.QUOTE_LATENCY.observe(time.perf_counter() - started)
        return markdown

    async def ask(self, query: ChatQuery) -> tuple[AnswerMetadata, str, list[SourceRef], Finished]:
        """The whole answer of `chat`, collected."""
        return await collect(self.chat(query))

    def usage(self, result: GenerationResult, started: float, first_delta_at: float | None,
               retrieval_ms: float, queue_ms: float) -> Usage:
        ended = time.perf_counter()
        decode_s = result.generation_s - result.time_to_first_token_s
        tokens_per_s = (result.completion_tokens - 1) / decode_s if result.completion_tokens > 1 and decode_s > 0 else 0.0
        ttft_s = (first_delta_at or ended) - started
        metrics.TIME_TO_FIRST_TOKEN.observe(ttft_s)
        if tokens_per_s:
            metrics.TOKENS_PER_SECOND.observe(tokens_per_s)
        metrics.COMPLETION_TOKENS.inc(result.completion_tokens)
        return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                     time_to_first_token_ms=ttft_s * 1000, tokens_per_s=tokens_per_s, retrieval_ms=retrieval_ms,
                     total_ms=(ended - started) * 1000, queue_ms=queue_ms)

    # ------------------------------------------------------------------ feedback and info
    def remember_answer(self, answer_id: str, query: ChatQuery, *, answer: str = "", standalone: str = "",
                        sources: list[SourceRef] | tuple = (), finish_reason: str = "", usage: Usage | None = None,
                        asked_at: float = 0.0, kind: str = "chat") -> None:
        """Records a finished answer in the memory service, in the background (the finish event does not wait; a
        failure is logged and counted in answers_not_recorded_total). Without a memory service nothing is kept and
        feedback is refused."""
        if self.memory is None:
            return
        record = AnswerRecord(
            answer_id=answer_id, session_id=query.session_id, owner=query.owner, kind=kind, question=query.question,
            standalone_question=standalone, answer_text=answer, source_urls=[s.url for s in sources],
            model=self.model.name, model_quant=self.settings.model_quant.upper() or quant_of(self.model.source),
            corpus_sha256=self.index.manifest.get("corpus_sha256", "") if self.index is not None else "",
            finish_reason=finish_reason, usage=dataclasses.asdict(usage) if usage else {}, asked_at=asked_at,
            answered_at=time.time(),
        )
        task = asyncio.create_task(self._record(record))
        self._recording[answer_id] = task
        task.add_done_callback(lambda _t: self._recording.pop(answer_id, None))

    async def _record(self, record: AnswerRecord) -> None:
        assert self.memory is not None
        try:
            await self.memory.record_answer(record, deadline_s=self.settings.memory_append_deadline_s)
        except MemoryUnavailable as exc:
            metrics.ANSWERS_NOT_RECORDED.inc()
            log.warning("could not record answer %s (it cannot be rated): %s", record.answer_id, exc)
        except Exception:  # never an error for an answer the client already has
            metrics.ANSWERS_NOT_RECORDED.inc()
            log.exception("could not record answer %s", record.answer_id)

    async def submit_feedback(self, answer_id: str, session_id: str, owner: str, rating: str, comment: str,
                              corrected_answer: str = "") -> None:
        """Stores the owner's rating of an answer it was given (the last one wins), in the memory service."""
        if rating not in RATINGS:
            raise InvalidInput(f"rating must be one of {RATINGS}")
        if len(comment) > MAX_FEEDBACK_COMMENT_CHARS:
            raise InvalidInput(f"comment has {len(comment)} characters; the limit is {MAX_FEEDBACK_COMMENT_CHARS}")
        if len(corrected_answer) > MAX_CORRECTED_ANSWER_CHARS:
            raise InvalidInput(f"corrected_answer has {len(corrected_answer)} characters; the limit is "
                               f"{MAX_CORRECTED_ANSWER_CHARS}")
        if self.memory is None:
            raise FailedPrecondition("no memory service configured (INFERENCE_MEMORY_TARGET): feedback cannot be "
                                     "stored")
        if (pending := self._recording.get(answer_id)) is not None:
            # Rated right after it finished, on this replica: its record may still be on its way.
            await asyncio.wait({pending}, timeout=self.settings.memory_append_deadline_s)
        model = await self.memory.rate_answer(answer_id, session_id, owner,
                                              AnswerFeedback(rating, comment, corrected_answer))
        metrics.FEEDBACK.labels(rating, model).inc()

    def check_plugins(self, context: JenkinsContext) -> tuple[list[Finding], str, list[str]]:
        """Security warnings and deprecations of every installed plugin and of the core version; when the update
        center data was generated; the plugins it does not know."""
        validate(context)
        if self.update_center is None:
            raise FailedPrecondition("no update center data loaded (INFERENCE_UPDATE_CENTER_PATH): plugins cannot be "
                                     "checked")
        center = self.update_center
        findings = center.findings(context.installed, context.core_version)
        unknown = [pid for pid, _v in context.plugins if not center.knows(pid)]
        return findings, center.generated_at, unknown

    def model_info(self) -> dict[str, Any]:
        manifest = self.index.manifest if self.index is not None else {}
        return {
            "model": self.model.name,
            "model_source": self.model.source,
            "chat_template": self.model.template_name,
            "context_tokens": self.model.n_ctx,
            "parallel_slots": len(self.model.slots),
            "embedding_model": manifest.get("embedding_model", ""),
            "indexed_documents": manifest.get("documents", 0),
            "indexed_chunks": manifest.get("chunks", 0),
            "corpus_sha256": manifest.get("corpus_sha256", ""),
        }

    async def close(self) -> None:
        # Exchanges and answers still being stored finish first (each is bounded by memory_append_deadline_s).
        if self._writes or self._recording:
            await asyncio.gather(*self._writes, *self._recording.values(), return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.memory is not None:
            await self.memory.close()
