"""What the model is told: the grounded-answer prompt and the condense-question prompt."""

from __future__ import annotations

from dataclasses import dataclass

from jenkins_assistant.common.grounded_prompt import (
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_NO_PASSAGES,
    Passage,
    grounded_question,
)
from jenkins_assistant.inference.templates import Message

__all__ = ["SYSTEM_PROMPT", "Exchange", "Passage", "answer_messages", "condense_messages"]

CONDENSE_SYSTEM_PROMPT = (
    "Rewrite the user's last message as one standalone question about Jenkins that can be understood "
    "without the conversation. Reply with the question only."
)


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str


def answer_messages(question: str, passages: list[Passage], history: list[Exchange], answer_chars: int,
                    system_prompt: str = "") -> list[Message]:
    """System prompt, the past exchanges as turns, then the passages and the question in the last turn."""
    system = system_prompt or (SYSTEM_PROMPT if passages else SYSTEM_PROMPT_NO_PASSAGES)
    messages: list[Message] = [{"role": "system", "content": system}]
    for exchange in history:
        answer = exchange.answer if len(exchange.answer) <= answer_chars else exchange.answer[:answer_chars] + " ..."
        messages.append({"role": "user", "content": exchange.question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": grounded_question(question, passages)})
    return messages


def condense_messages(question: str, history: list[Exchange], answer_chars: int = 200) -> list[Message]:
    # The answers too: "the second one" or "that plugin" often points into an answer, not a question.
    transcript = "\n".join(
        f"User: {e.question}\nAssistant: {' '.join(e.answer.split())[:answer_chars]}" for e in history)
    return [
        {"role": "system", "content": CONDENSE_SYSTEM_PROMPT},
        {"role": "user", "content": f"Conversation so far:\n{transcript}\n\nLast message: {question}\n\n"
                                    "Standalone question:"},
    ]
