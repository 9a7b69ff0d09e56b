"""Removing the artifacts small chat models emit: role echoes ("AI:", "Assistant:"), an invented next
turn ("\\nHuman: ..."), and empty brackets ("[]") at the end.

Two layers: stop sequences end generation as soon as the model starts another turn, and a streaming
trimmer cleans the edges of the text while keeping deltas flowing (it holds back only what might
still turn out to be an artifact).
"""

from __future__ import annotations

import re

# Lines a model starts when it begins writing the user's next turn (or the transcript's). The newline
# keeps legitimate mid-sentence uses ("the AI: ...") from stopping generation.
TURN_STOP_SEQUENCES = ("\nHuman:", "\nUser:", "\nAI:", "\nQuestion:", "\n### Human", "\n### User", "\n<|user|>")

# A role label or empty brackets repeated at the very start of an answer.
_LEADING_ARTIFACT = re.compile(r"^(?:\s+|(?:AI|Assistant|assistant|Answer|A|Bot|Jenkins Assistant)\s*:\s*|\[\])+")
# Only a bracket pair (or a lone "[") on a line of its own is an artifact: "x = []" at the end of a code line
# is code.
_TRAILING_ARTIFACT = re.compile(
    r"(?:\s|(?:^|(?<=\n))[ \t]*\[\]?[ \t]*(?=\n|$)|(?:\n(?:Human|User|AI|Assistant|assistant)\s*:?))+$")
_TRAILING_LABELS = ("\nHuman:", "\nUser:", "\nAI:", "\nAssistant:", "\nassistant:")
# Held back at the start until we know whether a role label is coming ("Assistant:" is 10 chars).
_LEADING_HOLD_CHARS = 24


def trim_answer(text: str) -> str:
    """Final trim of a whole answer."""
    text = _LEADING_ARTIFACT.sub("", text)
    return _TRAILING_ARTIFACT.sub("", text)


class StreamTrimmer:
    """Applies `trim_answer` incrementally: feed() returns text safe to send now, finish() the rest.

    Invariant: the concatenation of everything returned equals trim_answer(all text fed).
    """

    def __init__(self) -> None:
        self._raw = ""
        self._sent = 0  # characters of the trimmed text already returned
        self._started = False

    def _trimmed(self) -> str:
        return trim_answer(self._raw)

    def feed(self, delta: str) -> str:
        self._raw += delta
        if not self._started:
            stripped = self._raw.lstrip()
            if len(stripped) < _LEADING_HOLD_CHARS and "\n" not in stripped:
                return ""
            self._started = True
        # Text that is (or may grow into) a trailing artifact is only released when more text follows it.
        safe = self._trimmed()
        line_start = safe.rfind("\n")
        if line_start >= 0 and any(label.startswith(safe[line_start:]) for label in _TRAILING_LABELS):
            safe = safe[:line_start].rstrip()
        out = safe[self._sent:]
        self._sent = len(safe)
        return out

    def finish(self) -> str:
        final = self._trimmed()
        out = final[self._sent:]
        self._sent = len(final)
        return out
