"""Chat templates: messages -> prompt text for the served model.

The template comes from the model where it has one (GGUF `tokenizer.chat_template`, rendered with
llama-cpp-python's Jinja2 formatter as Transformers would); Llama-2's `[INST] <<SYS>>` format is written
out explicitly because the Llama-2 chat GGUFs carry no template; ChatML is the fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from jenkins_assistant.inference.config import ChatTemplate

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@dataclass(frozen=True)
class FormattedPrompt:
    # The prompt as (piece, is_scaffolding). Only the template's scaffolding may become control tokens when
    # tokenized: a question or a document containing "<|im_end|>" must stay plain text, or anyone could open a
    # system turn through the corpus or the question.
    segments: tuple[tuple[str, bool], ...]
    # Sequences that end an answer in this format (the model's own turn markers).
    stop: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.segments)


# Stands in for a message's content while a template is rendered, so the rendered text can be cut into
# scaffolding and content afterwards. Private-use code points: never in a question or the corpus (and
# removed from content before rendering, so nobody can forge one).
_CONTENT_MARK = re.compile("\ue000(\\d+)\ue001")
_PRIVATE_MARKS = str.maketrans("", "", "\ue000\ue001")


def _sanitise(content: str) -> str:
    return content.translate(_PRIVATE_MARKS)


def render_segments(render, messages: list[Message]) -> tuple[tuple[str, bool], ...]:
    """Render `messages` with `render` (messages -> text), keeping track of which text came from the contents."""
    contents = [_sanitise(m["content"]) for m in messages]
    marked = [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)]
    rendered = render(marked)
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in _CONTENT_MARK.finditer(rendered):
        if match.start() > position:
            segments.append((rendered[position:match.start()], True))
        content = contents[int(match.group(1))]
        if content:
            segments.append((content, False))
        position = match.end()
    if position < len(rendered):
        segments.append((rendered[position:], True))
    return tuple(segments)


class PromptFormatter(Protocol):
    name: str

    def format(self, messages: list[Message]) -> FormattedPrompt: ...


class Llama2Formatter:
    """`[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s><s>[INST] {user} [/INST]`.

    The leading <s> is left out: the tokenizer adds BOS itself (Llama-2 GGUFs set add_bos_token).
    """

    name = ChatTemplate.LLAMA2.value

    def format(self, messages: list[Message]) -> FormattedPrompt:
        turns = [m if m["role"] == "system" else {**m, "content": m["content"].strip()} for m in messages]
        return FormattedPrompt(render_segments(self._render, turns), stop=["</s>", "[INST]", "[/INST]"])

    @staticmethod
    def _render(messages: list[Message]) -> str:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        parts: list[str] = []
        pending_system = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
        for message in turns:
            if message["role"] == "user":
                opener = "" if not parts else "<s>"
                parts.append(f"{opener}[INST] {pending_system}{message['content']} [/INST]")
                pending_system = ""
            else:
                parts.append(f" {message['content']} </s>")
        return "".join(parts)


class ChatMLFormatter:
    name = ChatTemplate.CHATML.value

    def format(self, messages: list[Message]) -> FormattedPrompt:
        return FormattedPrompt(render_segments(self._render, messages), stop=["<|im_end|>", "<|im_start|>"])

    @staticmethod
    def _render(messages: list[Message]) -> str:
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


class GGUFTemplateFormatter:
    """The Jinja chat template stored in the model file."""

    name = ChatTemplate.GGUF.value

    def __init__(self, template: str, bos_token: str, eos_token: str, adds_bos: bool) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._jinja = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)
        self._bos = bos_token
        self._eos = eos_token
        self._adds_bos = adds_bos
        # Turn markers of common templates, when this template uses them, are stop sequences too.
        self._stop = [marker for marker in ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end|>", "</s>", "[INST]")
                      if marker in template]
        if eos_token and eos_token not in self._stop:
            self._stop.append(eos_token)

    def format(self, messages: list[Message]) -> FormattedPrompt:
        return FormattedPrompt(render_segments(self._render, messages), stop=list(self._stop))

    def _render(self, messages: list[Message]) -> str:
        text = self._jinja(messages=messages).prompt
        if self._adds_bos and self._bos and text.startswith(self._bos):
            text = text[len(self._bos):]  # the tokenizer adds BOS; do not send it twice
        return text


def formatter_for_model(llama, wanted: ChatTemplate, manifest_template: ChatTemplate) -> PromptFormatter:
    """The formatter of a loaded `llama_cpp.Llama`, with its own BOS/EOS text and add-BOS flag."""

    def token_text(token: int) -> str:
        return llama.detokenize([token], special=True).decode("utf-8", "ignore") if token >= 0 else ""

    metadata = dict(llama.metadata)
    adds_bos = metadata.get("tokenizer.ggml.add_bos_token", "true") != "false"
    return make_formatter(wanted, manifest_template, metadata, token_text(llama.token_bos()),
                          token_text(llama.token_eos()), adds_bos)


def make_formatter(
    wanted: ChatTemplate, manifest_template: ChatTemplate, metadata: dict[str, str],
    bos_token: str, eos_token: str, adds_bos: bool,
) -> PromptFormatter:
    """Pick the formatter: explicit setting, else the published model's manifest, else GGUF metadata, else ChatML."""
    choice = wanted if wanted is not ChatTemplate.AUTO else manifest_template
    template = metadata.get("tokenizer.chat_template", "")
    if choice is ChatTemplate.AUTO:
        choice = ChatTemplate.GGUF if template else ChatTemplate.CHATML
    if choice is ChatTemplate.GGUF:
        if not template:
            raise ValueError("chat_template=gguf but the model file has no tokenizer.chat_template")
        return GGUFTemplateFormatter(template, bos_token, eos_token, adds_bos)
    if choice is ChatTemplate.LLAMA2:
        return Llama2Formatter()
    return ChatMLFormatter()
