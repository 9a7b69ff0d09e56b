"""The chat model: one llama.cpp context per slot over one memory-mapped GGUF.

A llama.cpp context is not thread-safe, so each slot owns its own `Llama` (the weights are mmapped
once by the OS and shared; each slot adds only its KV cache). Slots take turns on the CPU through a
FIFO gate per token (`FairGate`), so N answers progress evenly instead of first-come-first-served,
and no more threads compute at once than the cores given to generation (a prompt evaluation may take
several slots' share when INFERENCE_BATCH_THREADS asks for it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.model_source import ResolvedModel
from jenkins_assistant.inference.templates import FormattedPrompt, Message, PromptFormatter, formatter_for_model

log = logging.getLogger(__name__)


class FairGate:
    """CPU permits (one per thread) handed out strictly first-come-first-served.

    threading.Semaphore lets the releasing thread take a permit straight back (it still holds the GIL),
    which starves the others; here released permits go to the longest waiter. A waiter may need several
    permits (a prompt evaluation uses every generation thread): it waits at the head of the line until
    that many are free, and nobody overtakes it.
    """

    def __init__(self, permits: int) -> None:
        self._lock = threading.Lock()
        self.permits = permits
        self._free = permits
        self._waiters: deque[tuple[int, threading.Event]] = deque()

    def acquire(self, count: int = 1) -> None:
        if not 1 <= count <= self.permits:
            raise ValueError(f"cannot take {count} of {self.permits} permits")
        with self._lock:
            if self._free >= count and not self._waiters:
                self._free -= count
                return
            turn = threading.Event()
            self._waiters.append((count, turn))
        turn.wait()

    def release(self, count: int = 1) -> None:
        with self._lock:
            self._free += count
            while self._waiters and self._waiters[0][0] <= self._free:
                wanted, turn = self._waiters.popleft()
                self._free -= wanted
                turn.set()


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float
    top_p: float
    repeat_penalty: float
    stop: list[str]
    seed: int | None = None


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for one engine: token ids for llama.cpp in process, chat messages for an upstream server
    (engine.OpenAIEngine); its size in tokens (counted, or estimated upstream) and its template's stop sequences."""

    n_tokens: int
    stop: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


class SlotRunner(Protocol):
    """What a slot's stream needs from the answer holding it (core._SlotLease): a worker thread that keeps the
    slot until it is done, and the flag raised when the answer is abandoned."""

    cancelled: threading.Event

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future: ...


@dataclass
class GenerationResult:
    text: str
    finish_reason: str  # "stop" | "length" | "cancelled" | "repetition" | "readout" (set by the core, never by an engine)
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float
    generation_s: float


class _TokenCounter:
    """A llama.cpp logits processor that only counts sampling steps (= generated tokens)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, input_ids, scores):
        self.count += 1
        return scores


# Prompt tokens always evaluated again when the slot's cache already holds (nearly) the whole prompt.
# llama.cpp computes a one-token batch with other kernels than a longer batch, and the logits differ slightly:
# enough for greedy decoding of the same prompt, served from the cache (llama-cpp-python replays only its
# last token), to diverge into garbage ("\nJenkins:\nJenkins:..." with SmolLM2). Replaying two tokens uses the
# batch kernels the prompt was first evaluated with, and the answer is the same as on a cold cache.
REPLAYED_PROMPT_TOKENS = 2


def limit_prefix_reuse(llama, prompt_tokens: list[int], replay: int = REPLAYED_PROMPT_TOKENS) -> None:
    """Drop cached tokens so that at least `replay` prompt tokens are evaluated again."""
    if llama.n_tokens == 0:
        return
    shared = llama.longest_token_prefix(llama._input_ids.tolist(), prompt_tokens)
    keep = max(0, len(prompt_tokens) - replay)
    if shared > keep:
        llama._ctx.kv_cache_seq_rm(-1, keep, -1)
        llama.n_tokens = keep


def tokenize_formatted(llama, prompt: FormattedPrompt) -> list[int]:
    """A formatted prompt's token ids: the template's scaffolding may be control tokens, message contents never
    (a question or a passage spelling `<|im_start|>system` stays text)."""
    tokens: list[int] = []
    for number, (piece, scaffolding) in enumerate(prompt.segments):
        tokens += llama.tokenize(piece.encode("utf-8"), add_bos=number == 0, special=scaffolding)
    return tokens


def prepare_prompt(llama, formatter: PromptFormatter, messages: list[Message]) -> Prompt:
    """The messages in the model's template, tokenized here (tokenize_formatted): what both local engines send."""
    formatted = formatter.format(messages)
    tokens = tokenize_formatted(llama, formatted)
    return Prompt(n_tokens=len(tokens), stop=formatted.stop, tokens=tokens)


def served_name(resolved: ResolvedModel, metadata: dict[str, str]) -> str:
    """The model's name in answers and metrics: the manifest's, else the GGUF's general.name, else the file's."""
    return resolved.name or metadata.get("general.name") or Path(resolved.path).stem


def fit_window(n_ctx: int, prompt_tokens: int, max_tokens: int) -> int:
    """max_tokens reduced to what an n_ctx window leaves after the prompt; InvalidInput when nothing is left."""
    room = n_ctx - prompt_tokens
    if room < 16:
        raise InvalidInput(f"the question and history take {prompt_tokens} tokens of a {n_ctx}-token window")
    return min(max_tokens, room)


class ModelSlot:
    """One llama.cpp context; used by one answer at a time (the SlotPool guarantees it)."""

    def __init__(self, index: int, llama, gate: FairGate, prompt_permits: int = 1) -> None:
        self.index = index
        self.llama = llama
        self._gate = gate
        self._prompt_permits = prompt_permits

    def generate(
        self,
        prompt_tokens: list[int],
        params: SamplingParams,
        on_text: Callable[[str], None],
        cancelled: threading.Event,
    ) -> GenerationResult:
        """Generate in the calling (worker) thread, calling on_text per delta; stops at the next token once
        `cancelled` is set."""
        from llama_cpp import LogitsProcessorList

        counter = _TokenCounter()
        started = time.perf_counter()
        first_token_at: float | None = None
        pieces: list[str] = []
        finish_reason = "stop"
        limit_prefix_reuse(self.llama, prompt_tokens)
        stream = self.llama.create_completion(
            prompt_tokens,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            repeat_penalty=params.repeat_penalty,
            stop=params.stop,
            seed=params.seed,
            stream=True,
            logits_processor=LogitsProcessorList([counter]),
        )
        # The first step evaluates the whole prompt (with n_threads_batch threads, possibly more than this
        # slot's share); each later step decodes one token on this slot's own threads.
        permits = self._prompt_permits
        try:
            while True:
                if cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                self._gate.acquire(permits)
                try:
                    chunk = next(stream, None)
                finally:
                    self._gate.release(permits)
                permits = 1
                if chunk is None:
                    break
                choice = chunk["choices"][0]
                if choice["text"]:
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    pieces.append(choice["text"])
                    on_text(choice["text"])
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
        finally:
            stream.close()
        ended = time.perf_counter()
        first = first_token_at if first_token_at is not None else ended
        return GenerationResult(
            text="".join(pieces),
            finish_reason=finish_reason,
            prompt_tokens=len(prompt_tokens),
            completion_tokens=counter.count,
            time_to_first_token_s=first - started,
            generation_s=ended - started,
        )

    async def stream(self, prompt: Prompt, params: SamplingParams,
                     runner: SlotRunner) -> AsyncIterator[str | GenerationResult]:
        """The text deltas of `generate`, run on the runner's worker thread, then its result. Abandoning the stream
        raises the cancel flag (the worker stops at the next token)."""
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        future = runner.run(self.generate, prompt.tokens, params,
                            lambda text: loop.call_soon_threadsafe(deltas.put_nowait, text), runner.cancelled)
        future.add_done_callback(lambda _f: deltas.put_nowait(None))
        try:
            while (text := await deltas.get()) is not None:
                yield text
            yield future.result()
        finally:
            runner.cancelled.set()

    def complete(self, prompt: Prompt, params: SamplingParams) -> GenerationResult:
        return self.generate(prompt.tokens, params, lambda _text: None, threading.Event())


class ChatModel:
    """The loaded model: its slots, prompt format and tokenizer."""

    def __init__(self, settings: InferenceSettings, resolved: ResolvedModel) -> None:
        from llama_cpp import Llama

        self.settings = settings
        self.resolved = resolved
        threads = settings.slot_threads
        self.gate = FairGate(settings.decode_permits)
        self.slots: list[ModelSlot] = []
        started = time.perf_counter()
        for index in range(settings.parallel_slots):
            llama = Llama(
                model_path=str(resolved.path),
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_threads=threads,
                n_threads_batch=settings.prompt_threads,
                verbose=False,
            )
            self.slots.append(ModelSlot(index, llama, self.gate, max(1, settings.prompt_threads // threads)))
        first = self.slots[0].llama
        self.metadata: dict[str, str] = dict(first.metadata)
        self.n_ctx = first.n_ctx()
        self.formatter: PromptFormatter = formatter_for_model(first, settings.chat_template, resolved.manifest_template)
        self.name = served_name(resolved, self.metadata)
        self.system_prompt = resolved.system_prompt
        log.info("model %s from %s: %d slots x %d threads, %d computing at once, n_ctx=%d, template=%s (%.1fs)",
                 self.name, resolved.source, len(self.slots), threads, settings.decode_permits, self.n_ctx,
                 self.formatter.name, time.perf_counter() - started)

    def format(self, messages: list[Message]) -> FormattedPrompt:
        return self.formatter.format(messages)

    def tokenize(self, text: str) -> list[int]:
        """Plain text: special-token strings in it stay text (see tokenize_prompt)."""
        # The tokenizer is read-only state shared by contexts; slot 0's is as good as any.
        return self.slots[0].llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def tokenize_prompt(self, prompt: FormattedPrompt) -> list[int]:
        return tokenize_formatted(self.slots[0].llama, prompt)

    def prepare(self, messages: list[Message]) -> Prompt:
        return prepare_prompt(self.slots[0].llama, self.formatter, messages)

    @property
    def source(self) -> str:
        return self.resolved.source

    @property
    def template_name(self) -> str:
        return self.formatter.name

    def fit(self, prompt_tokens: int, max_tokens: int) -> int:
        """max_tokens reduced to what the context window leaves; InvalidInput when nothing is left."""
        return fit_window(self.n_ctx, prompt_tokens, max_tokens)

    def probe(self) -> bool:
        """Health probe: a trivial real call into the model."""
        return len(self.tokenize("Jenkins")) > 0

    def close(self) -> None:
        for slot in self.slots:
            slot.llama.close()
        self.slots.clear()
