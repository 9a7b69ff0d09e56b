"""Generation engines: one interface for the core, two implementations chosen by INFERENCE_ENGINE.

- `embedded` (the default): llama.cpp in this process, `model.ChatModel`, one context per slot.
- `llama-server`: llama.cpp's own server as this service's child process (`llama_server.LlamaServerEngine`): the
  same GGUF and prompts as `embedded`, generated with continuous batching. Prompts are rendered and tokenized here
  and sent as token ids (/v1/completions), so nothing below about estimates and defusing applies to it.
- `openai`: any OpenAI-compatible streaming server (llama-server, vLLM, TGI, Ollama), for GPUs and shared serving:
  `OpenAIEngine` below. Retrieval, memory, condensing, trimming and sources stay in the core and are the same
  either way; only generation goes upstream, at most parallel_slots requests at once (the slot pool stays the
  concurrency limit and the queue bound, so RESOURCE_EXHAUSTED means the same thing with both engines).

Why /v1/chat/completions with the messages, not /v1/completions with the prompt text we would render:
- The server knows the model it serves and applies that model's chat template and end-of-turn tokens. A vLLM or TGI
  server serves a Hugging Face checkpoint we hold no copy of, so we could not render its template here; for a GGUF on
  a llama.cpp server it is the same Jinja template our embedded engine renders.
- Neither route keeps our segment-wise tokenization (message contents are never control tokens): servers tokenize
  the rendered template, or a text prompt, with special tokens parsed (llama_cpp.server: `tokenize(..., special=True)`;
  llama-server and vLLM likewise). A prompt of token ids would keep it, but needs the served model's tokenizer here
  and not every server takes one (llama_cpp.server accepts strings only). So contents are defused before they are
  sent (`defuse_control_tokens`): a question or passage cannot open a system turn upstream either.
- What it costs: prompt sizes are estimated (upstream_chars_per_token) to fit passages and history into n_ctx, since
  the upstream's tokenizer is not at hand; usage comes from the upstream when it reports it (stream_options
  include_usage: llama-server, vLLM), otherwise the streamed chunks are counted (one token each on llama.cpp servers)
  and the prompt's size is the estimate.

Cancellation: the stream is read on the event loop, so a client cancel or deadline (the handler's task is cancelled)
or an abandoned answer (the core closes the stream) closes the HTTP response at once, even while the upstream is still
evaluating the prompt; the server sees the disconnect and stops generating. Upstream failures become the domain
errors the interceptor maps to gRPC statuses (`upstream_error`).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from jenkins_assistant.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidInput,
    Overloaded,
    ServiceError,
    Unavailable,
)
from jenkins_assistant.inference.config import Engine, InferenceSettings
from jenkins_assistant.inference.model import GenerationResult, Prompt, SamplingParams, SlotRunner, fit_window
from jenkins_assistant.inference.templates import Message

log = logging.getLogger(__name__)


class GenerationSlot(Protocol):
    """One answer's worth of generation capacity (the SlotPool hands it to one answer at a time)."""

    def stream(self, prompt: Prompt, params: SamplingParams,
               runner: SlotRunner) -> AsyncIterator[str | GenerationResult]:
        """Text deltas, then one GenerationResult; closing it early stops the generation."""
        ...

    def complete(self, prompt: Prompt, params: SamplingParams) -> GenerationResult:
        """The whole text, blocking (called on a worker thread, e.g. to condense a follow-up)."""
        ...


class GenerationEngine(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def template_name(self) -> str: ...

    n_ctx: int
    system_prompt: str
    slots: Sequence[GenerationSlot]

    def prepare(self, messages: list[Message]) -> Prompt: ...
    def fit(self, prompt_tokens: int, max_tokens: int) -> int: ...
    def probe(self) -> bool: ...
    def close(self) -> None: ...


def load_engine(settings: InferenceSettings) -> GenerationEngine:
    """The configured engine (blocking: the embedded one loads the model)."""
    if settings.engine is Engine.OPENAI:
        return OpenAIEngine(settings)
    from jenkins_assistant.inference.model_source import resolve_model

    if settings.engine is Engine.LLAMA_SERVER:
        from jenkins_assistant.inference.llama_server import LlamaServerEngine

        return LlamaServerEngine(settings, resolve_model(settings))
    from jenkins_assistant.inference.model import ChatModel

    return ChatModel(settings, resolve_model(settings))


# Control-token spellings of common template families: ChatML / Llama-3 / Phi `<|...|>`, DeepSeek's full-width
# `<｜...｜>`, Llama-2 `<s>` `[INST]` `<<SYS>>`, Gemma `<start_of_turn>`, and bare `<bos>`-style names.
_CONTROL_TOKEN = re.compile(r"<[|｜][^<>\s]{1,64}[|｜]>|</?s>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>"
                            r"|</?(?:bos|eos|pad|unk)>")
_ZERO_WIDTH_SPACE = "\u200b"


def defuse_control_tokens(text: str) -> str:
    """A zero-width space after the first character of anything spelled like a control token: the text reads the
    same to the model, but no tokenizer matches it as the special token."""
    return _CONTROL_TOKEN.sub(lambda m: m.group(0)[0] + _ZERO_WIDTH_SPACE + m.group(0)[1:], text)


def upstream_error(exc: Exception, url: str) -> ServiceError:
    """The domain error (-> gRPC status) for a failed call to the upstream."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return DeadlineExceeded(f"the generation server {url} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):  # refused, reset, or the stream broke off mid-answer
        return Unavailable(f"the generation server {url} is unreachable or dropped the answer")
    if isinstance(exc, openai.APIStatusError):
        status, detail = exc.status_code, str(exc.message)[:300]
        if status == 429:
            return Overloaded(f"the generation server is at capacity (HTTP 429); retry later: {detail}")
        if status in (400, 413, 422) and "context" in detail.lower():
            return InvalidInput(f"the prompt does not fit the generation server's context window: {detail}")
        if status in (401, 403, 404):  # a wrong key, URL or model name: retrying will not help
            return FailedPrecondition(f"the generation server refused the request (HTTP {status}): {detail}")
        if status == 504:
            return DeadlineExceeded(f"the generation server timed out (HTTP 504): {detail}")
        return Unavailable(f"the generation server failed (HTTP {status}): {detail}")
    return Unavailable(f"the generation server {url} sent an error: {exc}")


class OpenAIEngine:
    """Generation by an OpenAI-compatible server; nothing of the model is loaded here."""

    # Template tokens around each message (role markers, newlines), added to the estimate of a prompt's size.
    TOKENS_PER_MESSAGE = 8

    def __init__(self, settings: InferenceSettings, url: str = "", api_key: str = "") -> None:
        import openai

        self.settings = settings
        self.url = url or settings.upstream_url
        self.n_ctx = settings.n_ctx
        self.system_prompt = ""  # the served default (prompts.SYSTEM_PROMPT)
        self._model = settings.upstream_model
        # No retries: a retried generation would be a second answer, and a client asked to retry later (429, 503)
        # decides that itself. The read timeout bounds each silence of the stream, not the whole answer.
        options: dict[str, Any] = {
            "base_url": self.url,
            # the client insists on a key; servers without auth ignore it
            "api_key": api_key or settings.upstream_api_key or "unused",
            "timeout": openai.Timeout(settings.upstream_read_timeout_s, connect=settings.upstream_connect_timeout_s),
            "max_retries": 0,
        }
        self.async_client = openai.AsyncOpenAI(**options)
        self.client = openai.OpenAI(**options)
        self.slots = [UpstreamSlot(self) for _ in range(settings.parallel_slots)]
        log.info("generation by the OpenAI-compatible server %s (model %s), %d requests at once, n_ctx=%d",
                 self.url, self._model or "<first of /models>", len(self.slots), self.n_ctx)

    @property
    def name(self) -> str:
        return self._model or "upstream"

    @property
    def source(self) -> str:
        return self.url

    @property
    def template_name(self) -> str:
        return "upstream"  # the server applies its model's own template

    def prepare(self, messages: list[Message]) -> Prompt:
        sent = [{**m, "content": defuse_control_tokens(m["content"])} for m in messages]
        chars = sum(len(m["content"]) for m in sent)
        estimate = math.ceil(chars / self.settings.upstream_chars_per_token) + self.TOKENS_PER_MESSAGE * len(sent)
        return Prompt(n_tokens=estimate, messages=sent)

    def fit(self, prompt_tokens: int, max_tokens: int) -> int:
        return fit_window(self.n_ctx, prompt_tokens, max_tokens)

    def probe(self) -> bool:
        """Readiness: the upstream lists its models (GET /models, which every such server has); learns the model's
        name when none is configured."""
        try:
            models = self.client.models.list(timeout=self.settings.upstream_connect_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is logged
            log.warning("generation server %s not ready: %s", self.url, exc)
            return False
        if not self._model and models.data:
            self._model = models.data[0].id
        return True

    def request(self, prompt: Prompt, params: SamplingParams) -> dict[str, Any]:
        """The request of a prompt with these sampling settings: a chat completion of its messages, or a completion
        of its token ids when it was tokenized here (Prompt.tokens; llama-server and vLLM take token-id prompts)."""
        extra: dict[str, Any] = {}
        if self.settings.upstream_repeat_penalty_field:
            extra[self.settings.upstream_repeat_penalty_field] = params.repeat_penalty
        if not self.settings.upstream_cache_prompt:
            extra["cache_prompt"] = False  # llama.cpp's field; sent only to turn its default off
        request: dict[str, Any] = {
            "model": self.name,
            **({"prompt": prompt.tokens} if prompt.tokens else {"messages": prompt.messages}),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "extra_body": extra,
        }
        if params.stop:
            request["stop"] = params.stop
        if params.seed is not None:
            request["seed"] = params.seed
        return request

    def close(self) -> None:
        self.client.close()


def _create(client, prompt: Prompt):
    """The endpoint for a prompt: /completions for token ids tokenized here, /chat/completions for messages."""
    return client.completions.create if prompt.tokens else client.chat.completions.create


def _text(choice, prompt: Prompt, streamed: bool) -> str | None:
    """A choice's text: completions carry `text`, a chat stream a `delta`, a whole chat reply a `message`."""
    if prompt.tokens:
        return choice.text
    return (choice.delta if streamed else choice.message).content


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


class UpstreamSlot:
    """The right to have one request in flight upstream."""

    def __init__(self, engine: OpenAIEngine) -> None:
        self.engine = engine

    async def stream(self, prompt: Prompt, params: SamplingParams,
                     runner: SlotRunner) -> AsyncIterator[str | GenerationResult]:
        import openai

        started = time.perf_counter()
        first_at: float | None = None
        pieces: list[str] = []
        chunks = 0
        finish: str | None = None
        usage = None
        try:
            stream = await _create(self.engine.async_client, prompt)(
                **self.engine.request(prompt, params), stream=True, stream_options={"include_usage": True})
            # Leaving this block any way (end, error, the consumer closing us, a cancelled task) closes the response.
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if text := _text(choice, prompt, streamed=True):
                            chunks += 1
                            first_at = first_at or time.perf_counter()
                            pieces.append(text)
                            yield text
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except openai.OpenAIError as exc:
            raise upstream_error(exc, self.engine.url) from exc
        if finish is None:  # a clean end of the body without a finish reason: the server gave up on the answer
            raise Unavailable(f"the generation server {self.engine.url} ended the answer early")
        ended = time.perf_counter()
        yield GenerationResult(
            text="".join(pieces),
            finish_reason=_finish_reason(finish),
            prompt_tokens=usage.prompt_tokens if usage is not None else prompt.n_tokens,
            completion_tokens=usage.completion_tokens if usage is not None else chunks,
            time_to_first_token_s=(first_at or ended) - started,
            generation_s=ended - started,
        )

    def complete(self, prompt: Prompt, params: SamplingParams) -> GenerationResult:
        import openai

        started = time.perf_counter()
        try:
            response = _create(self.engine.client, prompt)(**self.engine.request(prompt, params))
        except openai.OpenAIError as exc:
            raise upstream_error(exc, self.engine.url) from exc
        ended = time.perf_counter()
        choice = response.choices[0]
        usage = response.usage
        return GenerationResult(
            text=_text(choice, prompt, streamed=False) or "",
            finish_reason=_finish_reason(choice.finish_reason),
            prompt_tokens=usage.prompt_tokens if usage is not None else prompt.n_tokens,
            completion_tokens=usage.completion_tokens if usage is not None else 0,
            time_to_first_token_s=ended - started,
            generation_s=ended - started,
        )
