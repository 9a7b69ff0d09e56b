"""Training examples in the served layout: a question, the passages the service would put in its prompt, and an
answer that uses one of them and cites it by number.

The trainer learns question -> answer; served, the model reads numbered passages next to the question and is asked
to answer from them with [n] citations. Trained on bare pairs it never sees that layout (issue 9's train/serve
skew). Here each question/answer pair is given the passages the index returns for the question, as served, and
- when one of them supports the answer (`generate.support`: its code spans and names all in the passage, most of
  its content words too), the answer cites that passage's number;
- otherwise the passage that supports it is looked up with the question and the answer together and put among the
  served ones in place of the last, at a seeded random position (the right passage among real distractors, so the
  model learns to pick it rather than to read the first one);
- a pair no indexed passage supports is dropped: trained on, it would teach the model to answer beyond its
  passages, the invention the grounded prompt is there to stop.
A pair whose served prompt would carry the "no passage mentions `x`" note is dropped as well, since its answer does
not begin with the sentence the note asks for.

No index, model or I/O here: `Searcher` is whatever returns the served passages (`cli.py` opens the retrieval index
the way the inference service does).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from jenkins_assistant.common.grounded_prompt import Passage, unmentioned_terms
from jenkins_assistant.datasets.generate import support

# (query, k) -> the k passages the service would give the model for that query, best first.
Searcher = Callable[[str, int], list[Passage]]

RETRIEVED, INSERTED, DROPPED = "retrieved", "inserted", "dropped"


@dataclass(frozen=True)
class GroundedExample:
    question: str
    answer: str  # with the citation of the supporting passage
    passages: tuple[Passage, ...]
    cited: int  # 1-based number of the supporting passage; 0 when dropped
    status: str  # RETRIEVED (the served passages held it), INSERTED (put among them) or DROPPED
    reason: str = ""

    def row(self) -> dict:
        """A row of the training job's CSV: its `passages` column trains on the served layout."""
        gold = self.passages[self.cited - 1]
        return {"question": self.question, "answer": self.answer,
                "passages": [asdict(passage) for passage in self.passages],
                "url": gold.url, "section": gold.heading, "status": self.status}


_END = re.compile(r"([.!?:]?)\s*$")


def cite(answer: str, number: int) -> str:
    """The answer with `[n]` before its final punctuation ("... the developer documentation [2].")."""
    answer = answer.strip()
    if answer.endswith("```"):  # a closing code fence: the citation goes on a line of its own
        return f"{answer}\n\n[{number}]"
    return _END.sub(lambda m: f" [{number}]{m.group(1)}", answer, count=1)


def _supports(answer: str, passage: Passage) -> bool:
    return support(answer, f"{passage.heading}\n{passage.text}")[0]


def ground_pair(question: str, answer: str, search: Searcher, k: int, rng: random.Random) -> GroundedExample:
    question, answer = question.strip(), answer.strip()
    served = search(question, k)
    if not served:
        return GroundedExample(question, answer, (), 0, DROPPED, "no passages retrieved")
    supporting = next((n for n, passage in enumerate(served, 1) if _supports(answer, passage)), 0)
    status, passages = RETRIEVED, list(served)
    if not supporting:
        # Twice the depth: the supporting chunk of a paraphrased answer is often just below the served ones.
        found = next((p for p in search(f"{question}\n{answer}", 2 * k) if p not in served and _supports(answer, p)),
                     None)
        if found is None:
            return GroundedExample(question, answer, tuple(served), 0, DROPPED, "no indexed passage supports the answer")
        distractors = served[: k - 1]
        position = rng.randrange(len(distractors) + 1)
        passages = [*distractors[:position], found, *distractors[position:]]
        status, supporting = INSERTED, position + 1
    if unmentioned_terms(question, passages):
        return GroundedExample(question, answer, tuple(passages), 0, DROPPED,
                               "the prompt would say a name of the question is not covered")
    return GroundedExample(question, cite(answer, supporting), tuple(passages), supporting, status)
