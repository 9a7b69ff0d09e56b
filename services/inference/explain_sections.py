"""An explanation's text -> its three sections (summary, probable cause, fix steps), for the structured result.

The explain prompt asks for a fixed markdown shape:

    **Summary**: what failed.
    **Probable cause**: why [1].
    **Fix**:
    1. first step
    2. second step

A 0.5B model follows it often but not always: it writes `## Probable Cause`, `Root cause:`, `**Summary:**`, bullets
instead of numbers, a sentence before the first heading, or no headings at all, and an answer cut at max_tokens
stops mid-section. So headings are matched loosely (bold, `#`, or a trailing colon, in any case, with the usual
synonyms) and anything not understood stays in the summary: the structured result never loses text the model wrote.
No gRPC here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUMMARY, CAUSE, FIX = "summary", "probable_cause", "fix"
# Heading words -> section. Longest first, so "probable cause" is not read as "cause" with text "probable".
_HEADINGS = {
    "summary": SUMMARY, "tl;dr": SUMMARY, "what failed": SUMMARY, "what happened": SUMMARY,
    "probable cause": CAUSE, "likely cause": CAUSE, "possible cause": CAUSE, "root cause": CAUSE, "cause": CAUSE,
    "why it failed": CAUSE, "reason": CAUSE,
    "fix steps": FIX, "steps to fix": FIX, "how to fix it": FIX, "how to fix": FIX, "fix": FIX, "fixes": FIX,
    "solution": FIX, "solutions": FIX, "resolution": FIX, "steps": FIX, "next steps": FIX,
}
_WORDS = "|".join(re.escape(word) for word in sorted(_HEADINGS, key=len, reverse=True))
# `## **Probable cause:** text`, `**Fix**`, `Summary: text`, `### Steps to fix`. Group `mark` is a heading or bold
# marker, `colon` a colon after the word: one of them (or nothing after the word) makes it a heading, so a step
# such as "Fix the import in Foo.java" is not one.
_HEADING = re.compile(
    rf"^\s{{0,3}}(?P<hash>#{{1,6}}\s*)?(?P<open>\*\*|__)?\s*(?P<word>{_WORDS})\s*(?P<close>\*\*|__)?\s*"
    rf"(?P<colon>[:：])?\s*(?:\*\*|__)?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_ITEM = re.compile(r"^\s{0,6}(?:\d{1,2}[.)]|[-*+•]|step\s+\d{1,2}\s*[:.)-])\s+(?P<text>\S.*)$", re.IGNORECASE)


@dataclass
class ExplanationSections:
    summary: str = ""
    probable_cause: str = ""
    fix_steps: list[str] = field(default_factory=list)


def _heading(line: str) -> tuple[str, str] | None:
    """(section, text after the heading on the same line) when `line` is one of the asked-for headings."""
    match = _HEADING.match(line)
    if match is None:
        return None
    rest = match["rest"].strip()
    marked = match["hash"] or (match["open"] and match["close"]) or match["colon"]
    if not marked and rest:
        return None
    return _HEADINGS[match["word"].lower()], rest


def _paragraph(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def fix_steps(lines: list[str]) -> list[str]:
    """The numbered or bulleted items of the fix section, each with its continuation lines; without any item,
    each paragraph is a step."""
    steps: list[list[str]] = []
    for line in lines:
        item = _ITEM.match(line)
        if item:
            steps.append([item["text"].strip()])
        elif steps and line.strip():
            steps[-1].append(line.strip())  # a wrapped step, or a code line under it
    if steps:
        return [" ".join(step) for step in steps]
    paragraphs = re.split(r"\n\s*\n", _paragraph(lines))
    return [p.strip() for p in paragraphs if p.strip()]


def parse_explanation(text: str) -> ExplanationSections:
    """The sections of an explanation; the whole text as the summary when it has none of the headings."""
    sections: dict[str, list[str]] = {SUMMARY: [], CAUSE: [], FIX: []}
    preamble: list[str] = []
    current: str | None = None
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else _heading(line)
        if heading is not None:
            current, rest = heading
            if rest:
                sections[current].append(rest)
        elif current is None:
            preamble.append(line)
        else:
            sections[current].append(line)
    if current is None:  # no heading at all: the model wrote prose
        return ExplanationSections(summary=text.strip())
    summary = _paragraph(sections[SUMMARY])
    # Text before the first heading is what the model said first: the summary when it wrote none.
    if preamble and _paragraph(preamble):
        summary = _paragraph(preamble) + ("\n\n" + summary if summary else "")
    return ExplanationSections(summary=summary, probable_cause=_paragraph(sections[CAUSE]),
                               fix_steps=fix_steps(sections[FIX]))
