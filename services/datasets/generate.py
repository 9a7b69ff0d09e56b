"""Question/answer pairs generated from the documents by the served model, kept only when the section supports them.

The seed made its 765 pairs with GPT-4 from 96 pages; this is that step with our own model. For each section of a
document (markdown headings, as the index splits them) the model writes one question a user could ask and its
answer from the section alone. A pair is kept only when
- it parses (a question ending in "?", an answer of a few words at least),
- the answer's key terms are in the section: every code span and specific name (camelCase, dotted, dashed, with
  digits) and most content words; a model inventing a step or option fails here,
- a second pass, asked the question with the section, answers with mostly the same content words (a question the
  section does not settle gets two different answers).
Each row records the section's URL, heading and licence. Progress goes to a JSONL file line by line, so a run
stops anywhere (`--limit`, Ctrl-C) and the next one resumes with the sections not yet tried.

No gRPC or HTTP here: `Generator` is whatever completes a prompt (`cli.py` has the inference service and an
OpenAI-compatible endpoint).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.inference.retrieval.chunking import heading_sections, unmask_indentation

MIN_SECTION_CHARS = 300
MAX_SECTION_CHARS = 2400
MIN_ANSWER_TERMS = 3
# Share of the answer's content words the section must contain, and the overlap two answers need to agree.
SUPPORT_THRESHOLD = 0.75
AGREEMENT_THRESHOLD = 0.4

GENERATE_INSTRUCTIONS = (
    "Read this section of the Jenkins documentation and write one question a Jenkins user could ask that the "
    "section answers, then the answer, using only the section. Copy step names, options and commands exactly. "
    "Reply in exactly this form:\nQuestion: <the question>\nAnswer: <the answer>\n\nSection ({title}):\n{text}"
)
ANSWER_INSTRUCTIONS = (
    "Answer the question using only this section of the Jenkins documentation, in two or three sentences.\n\n"
    "Section ({title}):\n{text}\n\nQuestion: {question}"
)

_STOPWORD_TEXT = """about above after again against because before being below between could doing during
each either every further having here hers herself himself itself just might more most other ought ours ourselves
over same should some such than that their theirs them themselves then there these they this those through under
until very what when where which while whom whose with would your yours yourself yourselves also into only using
used uses need needs make makes made like want able allow allows first second section answer question jenkins
following example default"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class Generator(Protocol):
    name: str

    def complete(self, prompt: str, max_tokens: int) -> str: ...


@dataclass(frozen=True)
class Section:
    document_id: str
    url: str
    title: str
    license: str
    heading: str  # "Page > Section > Subsection"
    text: str

    @property
    def key(self) -> str:
        """Stable id of the section's content: progress is kept by it, so an edited section is tried again."""
        return hashlib.sha256(f"{self.url}\0{self.heading}\0{self.text}".encode()).hexdigest()[:20]


def sections_of(doc: CorpusDocument, min_chars: int = MIN_SECTION_CHARS,
                max_chars: int = MAX_SECTION_CHARS) -> list[Section]:
    """The document's sections of at least min_chars (shorter ones rarely settle a question), each cut to
    max_chars at a paragraph."""
    sections = []
    for path, masked in heading_sections(doc.text, strip_headers=True):
        text = unmask_indentation(masked.strip())
        if len(text) < min_chars:
            continue
        if len(text) > max_chars:
            text = text[:max_chars].rsplit("\n\n", 1)[0] if "\n\n" in text[:max_chars] else text[:max_chars]
        sections.append(Section(document_id=doc.id, url=doc.url, title=doc.title, license=doc.license,
                                heading=path or doc.title, text=text))
    return sections


def parse_pair(reply: str) -> tuple[str, str] | None:
    found = re.search(r"question\s*:\s*(.+?)\s*\n+\s*(?:\*\*)?answer\s*:\s*(?:\*\*)?\s*(.+)", reply,
                      re.IGNORECASE | re.DOTALL)
    if not found:
        return None
    question = found.group(1).strip().strip("*").strip()
    answer = found.group(2).strip()
    if not question.endswith("?") or len(question) > 300 or len(answer.split()) < 4:
        return None
    return question, answer


_CODE = re.compile(r"`([^`\n]+)`")
_NAME = re.compile(r"[A-Za-z_][\w.-]*[A-Za-z0-9_]")


def _specific(token: str) -> bool:
    """A name a model could invent: camelCase, dotted, dashed, with digits or underscores, or an acronym."""
    inner = token[1:]
    return (any(c.isupper() for c in inner) and not token.isupper()) or any(c in token for c in "._-") \
        or any(c.isdigit() for c in token) or (token.isupper() and len(token) > 2)


def key_terms(text: str) -> tuple[set[str], set[str]]:
    """(specific terms: code spans and names, lower-cased; content words: other words of 5+ letters)."""
    specific = {span.strip().lower() for span in _CODE.findall(text)}
    words = set()
    for token in _NAME.findall(_CODE.sub(" ", text)):
        token = token.strip(".-")
        if _specific(token):
            specific.add(token.lower())
        elif len(token) >= 5 and token.lower() not in _STOPWORDS:
            words.add(token.lower())
    return specific, words


def _stem(word: str) -> str:
    return word[:6]  # "archives", "archived", "archiving" meet; crude and enough for a support check


def support(answer: str, section: str) -> tuple[bool, str]:
    """Whether the section supports the answer, and why not."""
    specific, words = key_terms(answer)
    haystack = section.lower()
    missing = sorted(term for term in specific if term not in haystack)
    if missing:
        return False, f"names not in the section: {', '.join(missing[:3])}"
    if len(specific) + len(words) < MIN_ANSWER_TERMS:
        return False, "answer too thin"
    section_stems = {_stem(w) for w in re.findall(r"[a-z]{5,}", haystack)}
    found = sum(_stem(w) in section_stems for w in words)
    if words and found / len(words) < SUPPORT_THRESHOLD:
        return False, f"content words not in the section: {found} of {len(words)} found"
    return True, ""


def agreement(first: str, second: str) -> float:
    """Overlap of two answers' key terms (stemmed), relative to the smaller set."""
    a = {_stem(t) for terms in key_terms(first) for t in terms}
    b = {_stem(t) for terms in key_terms(second) for t in terms}
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


@dataclass
class Outcome:
    section: Section
    status: str  # "kept" or "rejected"
    reason: str = ""
    question: str = ""
    answer: str = ""

    def progress_record(self, model: str) -> dict:
        record = {"key": self.section.key, "url": self.section.url, "status": self.status, "reason": self.reason}
        if self.status == "kept":
            record["row"] = {"question": self.question, "answer": self.answer, "url": self.section.url,
                             "section": self.section.heading, "license": self.section.license,
                             "document_id": self.section.document_id, "section_key": self.section.key,
                             "model": model}
        return record


def try_section(section: Section, generator: Generator, max_tokens: int = 200) -> Outcome:
    reply = generator.complete(GENERATE_INSTRUCTIONS.format(title=section.heading, text=section.text), max_tokens)
    pair = parse_pair(reply)
    if pair is None:
        return Outcome(section, "rejected", "no question/answer in the reply")
    question, answer = pair
    supported, why = support(answer, section.text)
    if not supported:
        return Outcome(section, "rejected", why, question, answer)
    second = generator.complete(ANSWER_INSTRUCTIONS.format(title=section.heading, text=section.text,
                                                           question=question), max_tokens)
    if (score := agreement(answer, second)) < AGREEMENT_THRESHOLD:
        return Outcome(section, "rejected", f"second answer disagrees ({score:.2f})", question, answer)
    return Outcome(section, "kept", "", question, answer)


def pending_sections(documents: Iterable[CorpusDocument], done: set[str]) -> Iterator[Section]:
    """Sections not tried yet, in document order."""
    for doc in documents:
        for section in sections_of(doc):
            if section.key not in done:
                yield section
