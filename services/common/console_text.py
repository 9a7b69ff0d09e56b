"""Console text as Jenkins shows it without its markup: colours, console notes and Timestamper prefixes removed.

Shared by the build-log explainer (whole logs) and the chat's reading of console output pasted into a question.
"""

from __future__ import annotations

import re

_CONSOLE_NOTE = re.compile(r"\x1b\[8mha:[^\x1b]{0,65536}\x1b\[0m")
_ANSI = re.compile(r"\x1b\[[0-9;?]{0,40}[A-Za-z]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]")
# Timestamper's prefixes: `[2024-05-01T10:00:00.123Z] ` (pipeline, ISO) and `10:00:00 ` (system clock time)
_TIMESTAMP = re.compile(
    r"^(?:\[\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\] |\d\d:\d\d:\d\d(?:\.\d{1,3})? )",
    re.MULTILINE,
)


def clean(text: str) -> str:
    """The log as Jenkins shows it without colours: CR/LF made LF, console notes, ANSI codes and timestamps gone."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", _CONSOLE_NOTE.sub("", text))
    return _TIMESTAMP.sub("", text)
