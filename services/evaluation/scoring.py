"""Scores of one answer against its golden item. Pure functions: no model, no network.

- keyfact_recall: share of the item's key facts found in the answer (answerable items): the whole text the user
  reads, the excerpts of the sources quoted after the generated text included.
- keyfact_recall_generated: the same share in the model's generated text alone (the answer without its quotes).
- retrieval_reach: share of the key facts present in the passages the model was given: the most any answer
  grounded on them could contain.
- sourced: the answer came with at least one source.
- citation_valid: every [n] in the answer names a passage that was given (1..number of passages).
- cited: the generated text cites at least one passage.
- abstained: the generated text says the documentation does not cover the question (right for out-of-corpus
  items, a loss on answerable ones). Quoted documentation says nothing about the question, so it is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jenkins_assistant.evaluation.golden import GoldenItem

# A citation is [n] in prose: not an index in code (`props[0]`, `args[1]`), which an answer quoting a Jenkinsfile
# contains and which used to count as citing passage 0.
CITATION = re.compile(r"(?<![\w\])])\[(\d{1,3})\]")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
# How answers (of this system and of the models we tried) say that the passages do not answer the question. A
# negation counts only when its subject is the documentation, or the answerer itself: "the Selenium HTML report plugin
# does not include CSS", "Jenkins is unable to find a binding handler", "does not include a valid crumb" are answers,
# and were counted as abstentions (3 of 8 false abstentions on 110 answerable golden questions).
_DOCS = r"(?:documentation|docs|passages?|excerpts?|(?:provided|given)\s+(?:context|text|information))"
ABSTENTION = re.compile(
    rf"\b{_DOCS}\s+(?:\w+\s+){{0,3}}?(?:does|do|did|is|are)(?:\s+not|n't)\s+(?:\w+\s+){{0,3}}?"
    r"(?:cover|mention|describe|document|contain|include|provide|say|explain|address|discuss)"
    r"|\bnot\s+(?:covered|mentioned|documented|described)\b"
    r"|\bno\s+(?:information|documentation|mention|details?)\s+(?:about|on|of|regarding|for)"
    r"|\bI\s+(?:could|can)(?:\s+not|n't)\s+find"
    r"|\b(?:(?:could|can)(?:\s+not|n't)|unable\s+to)\s+find\s+(?:any\s+)?(?:information|documentation|mention|details)"
    r"|\bI(?:'m|\s+am)\s+not\s+(?:sure|able\s+to)|\bI\s+don't\s+know"
    r"|\bthere\s+is\s+no\s+(?:such|documented|built-in)",
    re.IGNORECASE,
)


@dataclass
class AnswerScore:
    keyfact_recall: float | None  # None for out-of-corpus items
    keyfact_recall_generated: float | None
    retrieval_reach: float | None
    sourced: bool
    citation_valid: bool
    cited: bool
    abstained: bool
    facts_found: list[str]
    facts_in_passages: list[str]


def found_facts(item: GoldenItem, text: str) -> list[str]:
    return [fact for fact, pattern in zip(item.key_facts, item.patterns, strict=True) if pattern.search(text)]


def citations(answer: str) -> list[int]:
    return [int(number) for number in CITATION.findall(_CODE.sub(" ", answer))]


def abstains(answer: str) -> bool:
    return bool(ABSTENTION.search(answer))


def score_answer(item: GoldenItem, answer: str, passages: list[str], source_count: int,
                 generated: str | None = None) -> AnswerScore:
    """`answer` is the whole text; `generated` the model's part of it (None: all of it)."""
    generated = answer if generated is None else generated
    numbers = citations(answer)
    found = found_facts(item, answer)
    found_generated = found_facts(item, generated)
    in_passages = found_facts(item, "\n\n".join(passages))
    facts = len(item.key_facts) or 1
    # An out-of-corpus item's key facts are the ways of saying "not covered"; its answer is judged by abstention.
    abstained = abstains(generated) or (not item.answerable and bool(found_generated))
    return AnswerScore(
        keyfact_recall=len(found) / facts if item.answerable else None,
        keyfact_recall_generated=len(found_generated) / facts if item.answerable else None,
        retrieval_reach=len(in_passages) / facts if item.answerable else None,
        sourced=source_count > 0,
        citation_valid=all(1 <= number <= len(passages) for number in numbers),
        cited=bool(citations(generated)),  # the model's own citing: every quote is headed by a citation
        abstained=abstained,
        facts_found=found,
        facts_in_passages=in_passages,
    )
