"""What the model is told: the grounded-answer prompt and the condense-question prompt."""

from __future__ import annotations

from dataclasses import dataclass

from jenkins_assistant.inference.templates import Message

SYSTEM_PROMPT = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "Answer the user's question in markdown, concisely and accurately. Put commands, Jenkinsfiles and "
    "configuration in fenced code blocks. Base the answer on the documentation excerpts given; if they "
    "do not answer the question, say so and give your best general advice."
)

CONDENSE_SYSTEM_PROMPT = (
    "Rewrite the user's last message as one standalone question about Jenkins that can be understood "
    "without the conversation. Reply with the question only."
)


@dataclass(frozen=True)
class Passage:
    title: str
    url: str
    text: str


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str


def context_block(passages: list[Passage]) -> str:
    lines = ["Documentation excerpts:"]
    for number, passage in enumerate(passages, 1):
        lines.append(f"\n[{number}] {passage.title} ({passage.url})\n{passage.text.strip()}")
    return "\n".join(lines)


def answer_messages(question: str, passages: list[Passage], history: list[Exchange], answer_chars: int) -> list[Message]:
    """System prompt with the excerpts, the past exchanges as turns, then the question."""
    system = SYSTEM_PROMPT if not passages else f"{SYSTEM_PROMPT}\n\n{context_block(passages)}"
    messages: list[Message] = [{"role": "system", "content": system}]
    for exchange in history:
        answer = exchange.answer if len(exchange.answer) <= answer_chars else exchange.answer[:answer_chars] + " ..."
        messages.append({"role": "user", "content": exchange.question})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": question})
    return messages


def condense_messages(question: str, history: list[Exchange]) -> list[Message]:
    transcript = "\n".join(f"User: {e.question}" for e in history)
    return [
        {"role": "system", "content": CONDENSE_SYSTEM_PROMPT},
        {"role": "user", "content": f"Conversation so far:\n{transcript}\n\nLast message: {question}\n\n"
                                    "Standalone question:"},
    ]
