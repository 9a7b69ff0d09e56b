"""Console output pasted into a question, reduced to its error lines before retrieval searches the question.

Why: forum questions paste a build's console output (timestamps, `[Pipeline]` lines, `git` commands, stack frames)
around the one line that says what failed. Searched whole, that noise outweighs the user's words and the error, and
all-MiniLM-L6-v2 reads only the first 256 word pieces, which a paste uses up. Retrieval reach at 6 passages on the
full index, golden questions rewritten the way forums get them (`bench/pasted_output.py`):
- the 8 that carry an error, the error inside ~25 lines of console output: 0.625 as written, 0.188 searched whole,
  0.646 reduced to the error lines;
- all 110 answerable ones followed by 20 lines of a console log that says nothing failed: 0.689 as written, 0.520
  searched whole, 0.717 reduced.
The model still reads the question as the user wrote it; only the search text changes.

Pure functions, no gRPC.
"""

from __future__ import annotations

import re

from jenkins_assistant.common.console_text import clean

# Lines only console output has: Pipeline's step markers, stack frames, a chained exception's elision, the shell's
# echo of a command, the build's first and last lines.
_CONSOLE = re.compile(
    r"^\s*(?:\[Pipeline\]|at [\w$.<>]+\(.*\)\s*$|\.\.\. \d+ more|Caused by: |\+ \S|Started by |Running on |"
    r"Finished: [A-Z]+\s*$|Obtained Jenkinsfile)"
)
# What a reduced paste keeps: the lines that say something failed.
_ERROR = re.compile(
    r"exception|error|fail|denied|not found|no such|cannot|can't|could not|refused|unable|invalid|missing|"
    r"not permitted|no valid|there are no|timed? ?out|killed|rejected|forbidden|unauthori[sz]ed",
    re.IGNORECASE,
)
# Lines that may hold an error word but never say what failed: a stack frame (`at ...FailFastCause(...)`), a step
# marker, the build's result, a git command's `# timeout=10`.
_NEVER_KEPT = re.compile(r"^\s*(?:\[Pipeline\]|at [\w$.<>]+\(|\.\.\. \d+ more|Finished: |> )")
_FENCE = re.compile(r"^\s*(```|~~~)")
# A block is console output when this share of its non-blank lines or more look like it; a fenced Jenkinsfile or
# YAML is not, and stays as it is.
CONSOLE_SHARE = 0.5
# An unfenced run of console lines shorter than this is left alone (a question may quote one log line).
MIN_UNFENCED_LINES = 3
# Error lines kept of one block: the first ones say what failed; what follows repeats it.
MAX_ERROR_LINES = 5


def _is_console_line(line: str) -> bool:
    """A line with Timestamper's prefix or terminal colours (which `clean` removes), or one only a console prints."""
    line = line.rstrip("\r")
    shown = clean(line)
    return shown != line or bool(_CONSOLE.match(shown))


def _reduce(lines: list[str]) -> list[str]:
    """The error lines of a block of console output, without timestamps, each once, at most MAX_ERROR_LINES."""
    kept: list[str] = []
    for line in lines:
        text = clean(line.rstrip("\r")).strip()
        if text and not _NEVER_KEPT.match(text) and _ERROR.search(text) and text not in kept:
            kept.append(text)
    return kept[:MAX_ERROR_LINES]


def _looks_like_console(lines: list[str]) -> bool:
    content = [line for line in lines if line.strip()]
    return bool(content) and sum(map(_is_console_line, content)) >= CONSOLE_SHARE * len(content)


def search_text(question: str) -> str:
    """The question with each pasted block of console output (fenced, or three or more console lines in a row)
    reduced to its error lines; a question without one, or with nothing else left, is returned as it is."""
    lines = question.split("\n")
    out: list[str] = []
    index, changed = 0, False
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            end = next((j for j in range(index + 1, len(lines)) if _FENCE.match(lines[j])), len(lines))
            block = lines[index + 1:end]
            if _looks_like_console(block):
                out += _reduce(block)
                changed = True
            else:
                out += lines[index:end + 1]
            index = end + 1
            continue
        end = index
        while end < len(lines) and _is_console_line(lines[end]):
            end += 1
        if end - index >= MIN_UNFENCED_LINES:
            out += _reduce(lines[index:end])
            changed, index = True, end
        else:
            out.append(line)
            index += 1
    reduced = "\n".join(out)
    # A paste alone with no error line in it leaves nothing to search; its own words are better than none.
    return reduced if changed and reduced.strip() else question
