"""The grounded-answer prompt: what the model is told at serving time and trained on by the training job.

One definition for both sides, so a fine-tuned model learns exactly the layout it is served with: the
system prompt, then (in the user's turn, next to the question, where a small model attends) the numbered
passages and the question. Citations `[n]` refer to these numbers, and the sources a user sees carry the
same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "Answer from the numbered documentation passages in the user's message, in markdown and concisely. "
    "Cite the passage a fact comes from as [1], [2]. Copy step names, commands, option keys, plugin ids and "
    "menu paths exactly as the passages write them and never invent any. If the passages do not answer the "
    "question, say first that the documentation provided does not cover it, then point to the closest passage."
)

# Without passages (retrieval off or nothing indexed) the model may only use what it knows.
SYSTEM_PROMPT_NO_PASSAGES = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "Answer in markdown and concisely. Put commands and Jenkinsfiles in fenced code blocks. If you are not "
    "sure, say so instead of guessing."
)


@dataclass(frozen=True)
class Passage:
    title: str
    url: str
    text: str
    # Heading path inside the page ("Pipeline syntax > Declarative Pipeline > parallel"), when known.
    section: str = ""

    @property
    def heading(self) -> str:
        if self.section and self.section != self.title:
            return f"{self.title} > {self.section.removeprefix(self.title + ' > ')}"
        return self.title


def passages_block(passages: list[Passage]) -> str:
    return "\n\n".join(f"[{number}] {passage.heading}\n{passage.text.strip()}"
                       for number, passage in enumerate(passages, 1))


def grounded_question(question: str, passages: list[Passage]) -> str:
    """The user's turn: the passages, then the question, then the one-line reminder a small model needs."""
    if not passages:
        return question
    return (f"Documentation passages:\n\n{passages_block(passages)}\n\nQuestion: {question.strip()}\n\n"
            "Answer from the passages above and cite them as [n].")
