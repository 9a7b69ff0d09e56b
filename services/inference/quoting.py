"""Excerpts of the answer's passages, quoted as written after the generated answer.

Why: the 0.5B default model paraphrases its passages and invents what they lack. On the golden set the four
passages it is given hold about twice the key facts (step names, option keys, commands) its answers contain. The
excerpts closest to the question, copied verbatim and numbered like the sources, put the documented syntax in front
of the user next to the model's words. The user can then check the model's words against them.

Pure functions: the caller passes the embedding function (the retrieval index's, so no second model is loaded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from jenkins_assistant.common.grounded_prompt import Passage

Embed = Callable[[list[str]], np.ndarray]  # normalised vectors, one row per text

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# A sentence ends at . ! or ? followed by a space and what starts a sentence (a capital, code, emphasis).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\[])")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
# A line that is bold and nothing else: a heading the scrapers turned into a bold line (a plugin's help, a
# step's description) or an example's caption. Quoted alone or last, it says nothing (before what it titles, it stays).
_BOLD_LINE = re.compile(r"^\*\*[^*\n]+\*\*:?$")
# The end of a sentence whose start was cut off: a lowercase word, then words, then the sentence's end.
_SENTENCE_TAIL = re.compile(r"[a-z]+[ ,].*[.!?]\Z", re.DOTALL)
# The start of a sentence whose end was cut off: a capitalised word, then at least three words, no end.
_SENTENCE_HEAD = re.compile(r"[A-Z][a-z]*(?:[\s,]+[\w'`,()-]+){3,}\Z")
# A table's delimiter row (|---|:---:|), which ends its header.
_TABLE_RULE = re.compile(r"\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?")
# A line that starts a block of its own: a list item, a table row, a blockquote.
_BLOCK_START = re.compile(r"(?:[-*+]\s|\d+[.)]\s|\||>)")
# NLTK's English stop words (as bm25s ships them), and words every Jenkins question shares.
_STOPWORDS = sorted(set(STOPWORDS_EN_PLUS) | {"jenkins", "use", "using", "get", "set", "want", "need", "way"})
# Shortest unit worth quoting: shorter ones are list markers, table rules or code fragments ("}").
MIN_UNIT_CHARS = 25
# Question words found in an excerpt add this much to its cosine similarity: the embedding misses exact
# identifiers (a plugin id, an option key) that the user typed. Chosen on the golden set's tune split (0.2 over
# 0, 0.1 and 0.4); see the README's "Answer quality".
LEXICAL_WEIGHT = 0.2
# An excerpt whose words are nearly all in the generated answer already says nothing new to the user.
REDUNDANT_SHARE = 0.8


# Opens the quotes appended to an answer; `without_quotes` finds them by it in a stored answer.
QUOTES_HEADING = "\n\n**From the documentation** (quoted as written):\n\n"


@dataclass(frozen=True)
class Quote:
    citation: int  # the passage's number, as the answer and the sources cite it ([n])
    title: str
    section: str
    text: str  # a verbatim slice of the passage


@dataclass(frozen=True)
class _Excerpt:
    citation: int
    start: int
    end: int
    text: str
    words: frozenset[str] = frozenset()  # set by rank_excerpts: what the answer is checked against
    units: tuple[str, ...] = ()  # _flat of each unit the excerpt holds: what a later quote may not repeat


def text_units(text: str) -> list[tuple[int, int]]:
    """(start, end) of the quotable units of a passage, in order: each fenced code block whole, and each sentence
    or line of the prose around them (a list item, a table row). Headings are not units."""
    spans: list[tuple[int, int]] = []
    position = 0
    for fence in _FENCE.finditer(text):
        spans += _prose_units(text, position, fence.start())
        spans.append((fence.start(), fence.end()))
        position = fence.end()
    spans += _prose_units(text, position, len(text))
    spans = [(start, end) for start, end in spans if end - start >= MIN_UNIT_CHARS]
    # A passage starts and ends where its chunks were cut, often inside a sentence ("would load a library using the
    # same SCM branch as ..."): such a piece of a sentence is no unit.
    if spans and not text[:spans[0][0]].strip() and _SENTENCE_TAIL.match(text[spans[0][0]:spans[0][1]]):
        spans.pop(0)
    if spans and not text[spans[-1][1]:].strip() and _SENTENCE_HEAD.match(text[spans[-1][0]:spans[-1][1]]):
        spans.pop()
    return spans


def _prose_blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each block of prose: a line, joined with the lines it wraps on to (help files and plugin docs
    are hard-wrapped at about 80 characters, and a wrapped line is no sentence). A line ends a block when it ends
    with a markdown line break (two spaces) or is a table row; a list item, a table row, a blockquote, a heading or
    an empty line starts one, and so does an indented line (code cut from its fences, a list item's continuation).

    Not markdown-it's paragraphs: CommonMark's lazy continuation glues code cut from its fences on to the prose
    before it. Quoting this stop's make eval answers again with its paragraphs: keyfact_recall 0.552 -> 0.533 (0.542
    with paragraphs also split at line breaks), the answers that lose being those whose passage starts or ends
    inside a code block."""
    blocks: list[tuple[int, int]] = []
    open_block = False
    line_start = start
    for line in text[start:end].split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            open_block = False
        else:
            line_from = line_start + (len(line) - len(line.lstrip()))
            line_to = line_from + len(stripped)
            if open_block and line == line.lstrip() and not _BLOCK_START.match(stripped):
                blocks[-1] = (blocks[-1][0], line_to)
            else:
                blocks.append((line_from, line_to))
            open_block = not line.endswith("  ") and not stripped.startswith("|") and line == line.lstrip()
        line_start += len(line) + 1
    return blocks


def _prose_units(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for block_start, block_end in _prose_blocks(text, start, end):
        sentence_start = block_start
        for boundary in _SENTENCE_END.finditer(text, block_start, block_end):
            spans.append((sentence_start, boundary.start()))
            sentence_start = boundary.end()
        spans.append((sentence_start, block_end))
    return spans


def _line_after(text: str, end: int) -> str:
    """The line after the one that `end` is on ('' on the last line)."""
    start = text.find("\n", end) + 1
    if not start:
        return ""
    stop = text.find("\n", start)
    return text[start:] if stop < 0 else text[start:stop]


def _is_table_rule(line: str) -> bool:
    return bool(_TABLE_RULE.fullmatch(line.strip()))


def excerpts(citation: int, text: str, max_chars: int) -> list[_Excerpt]:
    """The runs of consecutive units of one passage that fit in max_chars, one starting at each unit. A unit
    longer than max_chars (a long code block) is an excerpt of its own when it fits in 1.5 x max_chars. A bold line
    titles what follows it (an example's caption before its code block): a run that would end with one goes on to
    the end of that code block within 1.5 x max_chars, or ends before the caption. A unit that ends with a colon
    ("..., for example:", "as follows:") introduces the next unit: a run that would end with it goes on to the end of
    that unit within 1.5 x max_chars, or ends before it; so does a table's header row (and its delimiter row)."""
    units = text_units(text)
    flats = [_flat(text[start:end]) for start, end in units]
    captions = [bool(_BOLD_LINE.match(text[start:end])) for start, end in units]
    # 9 of the 244 quotes of a make eval run ended with such an introduction and without what it introduced ("... but
    # never want to spend more than 3 minutes in total before failing the stage:", the example left out).
    introductions = [text[start:end].endswith(":") and not caption for (start, end), caption in zip(units, captions)]
    # A table's header row and its delimiter row introduce the rows below them the same way: a quote that ended
    # with them showed the user column names and no row ('| Field | CasC Key | Description |', '|---|---|---|').
    rules = [_is_table_rule(text[start:end]) for start, end in units]
    introductions = [introduction or rule or (text.startswith("|", start) and _is_table_rule(_line_after(text, end)))
                     for introduction, rule, (start, end) in zip(introductions, rules, units)]
    found = []
    for first in range(len(units)):
        start, end = units[first]
        if end - start > max_chars * 1.5 or rules[first]:  # a delimiter row opens no quote
            continue
        last = first  # the run is units[first:last + 1]
        for following in range(first + 1, len(units)):
            if units[following][1] - start > max_chars:
                break
            last = following
        # What the last unit introduces comes along, as a code block alone may run to 1.5 x max_chars (a table's
        # header row introduces its delimiter row, which introduces the first row).
        while last + 1 < len(units) and units[last + 1][1] - start <= max_chars * 1.5 and (
                introductions[last] or (captions[last] and text.startswith("```", units[last + 1][0]))):
            last += 1
        while last >= first and (captions[last] or introductions[last]):
            last -= 1
        if last >= first:
            end = units[last][1]
            found.append(_Excerpt(citation, start, end, text[start:end], units=tuple(flats[first:last + 1])))
    return found


def _words(texts: list[str]) -> list[frozenset[str]]:
    """The distinct words of each text, lowercased, without stop words (bm25s's tokenizer, as the index's)."""
    return [frozenset(tokens) for tokens in
            bm25s.tokenize(texts, stopwords=_STOPWORDS, return_ids=False, show_progress=False)]


def rank_excerpts(question: str, passages: Sequence[Passage], embed: Embed, max_chars: int) -> list[_Excerpt]:
    """Every excerpt of the passages, the closest to the question first: cosine similarity of the embeddings plus
    LEXICAL_WEIGHT times the share of the question's words the excerpt contains."""
    candidates = [e for number, p in enumerate(passages, 1) for e in excerpts(number, p.text, max_chars)]
    if not candidates:
        return []
    texts = [question] + [e.text for e in candidates]
    vectors = embed(texts)
    question_words, *words = _words(texts)
    scores = vectors[1:] @ vectors[0]
    if question_words:
        scores = scores + LEXICAL_WEIGHT * np.array([len(question_words & w) / len(question_words) for w in words])
    return [replace(candidates[i], words=words[i]) for i in np.argsort(-scores, kind="stable")]


def _flat(text: str) -> str:
    """Text compared for repeats: lowercase words and symbols without the spacing and markup between them."""
    return " ".join(re.findall(r"[\w.:/-]+", text.lower()))


def choose_quotes(ranked: Sequence[_Excerpt], passages: Sequence[Passage], count: int,
                  answer: str = "") -> list[Quote]:
    """The best `count` excerpts that do not overlap or repeat one another and are not already in the answer, in
    the order they were ranked."""
    answer_words = _words([answer])[0]
    chosen: list[_Excerpt] = []
    quoted_units: set[str] = set()  # _flat of every unit of the chosen excerpts
    for excerpt in ranked:
        if len(chosen) == count:
            break
        # Passages can share text (the overlap between consecutive chunks of a page, a paragraph that two upgrade
        # guides both have, a sentence a page says in two sections): quoting it twice gives the user nothing new, so
        # an excerpt that repeats a quoted sentence, line or code block is skipped (the excerpts that start after
        # that unit are candidates of their own; cutting the repeat off instead left fragments such as "We can
        # compose these steps together."). Only a repeat of the same text counts: two guides' sentences that differ
        # in a version number share their words and say different things. An excerpt contained whole in a quoted one
        # shares its units too, so no second check for that (dropping the one that stood here changes none of the
        # quotes of this round's two make eval runs, 244 answers).
        if quoted_units.intersection(excerpt.units):
            continue
        if any(c.citation == excerpt.citation and c.start < excerpt.end and excerpt.start < c.end for c in chosen):
            continue
        words = excerpt.words
        if words and len(words & answer_words) >= REDUNDANT_SHARE * len(words):
            continue
        chosen.append(excerpt)
        quoted_units.update(excerpt.units)
    return [Quote(e.citation, passages[e.citation - 1].title, passages[e.citation - 1].section, e.text)
            for e in chosen]


def _bold_headings(text: str) -> str:
    """Markdown headings as bold lines, outside code blocks (a `# command` line in a shell block stays)."""
    # Code blocks are the odd items of the split (the pattern's whole match is its one group).
    pieces = re.split(f"({_FENCE.pattern})", text, flags=re.DOTALL)
    return "".join(piece if i % 2 else _HEADING.sub(r"**\1**", piece) for i, piece in enumerate(pieces))


def without_quotes(answer: str) -> str:
    """The generated part of a stored answer: the text before its quotes."""
    return answer.split(QUOTES_HEADING, 1)[0]


def quotes_markdown(quotes: Sequence[Quote], answer: str = "") -> str:
    """The quotes as a markdown block to append to `answer`: each a blockquote headed by its citation and page.
    Headings inside an excerpt become bold lines, so that a quote does not render larger than the answer. An answer
    cut inside a code block (max_tokens) gets the block closed first, or the quotes would render as its code."""
    if not quotes:
        return ""
    blocks = []
    for quote in quotes:
        where = quote.section or quote.title
        body = _bold_headings(quote.text)
        lines = [f"[{quote.citation}] *{where}*", "", *body.split("\n")]
        blocks.append("\n".join(f"> {line}".rstrip() for line in lines))
    closing = "\n```" if answer.count("```") % 2 else ""
    return closing + QUOTES_HEADING + "\n\n".join(blocks)
