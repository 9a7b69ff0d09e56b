"""Removing the artifacts small chat models emit: role echoes ("AI:", "Assistant:"), an invented next
turn ("\\nHuman: ..."), empty brackets ("[]") at the end, lines that repeat a passage's heading as the
prompt shows it ("[2] Pipeline syntax > Declarative Pipeline > Parallel"), an answer that starts over and
repeats itself word for word until the length limit (RepetitionGuard), and one that reads its passages out one after
another as the prompt lists them (ReadoutGuard).

Two layers: stop sequences end generation as soon as the model starts another turn, and a streaming
trimmer cleans the edges of the text while keeping deltas flowing (it holds back only what might
still turn out to be an artifact).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jenkins_assistant.common.grounded_prompt import Passage

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


# A line made of a passage number and (the start of) a heading, maybe dressed as markdown ("### [2] ...",
# "**[2] ...**:"). Qwen2.5-Coder-0.5B writes the prompt's passage headers into about one answer in six (20 of the 122
# golden answers): as section titles, between paragraphs, inside a code block, often cut short, and once with a
# passage number it was not given ("[7] withCredentials: Bind credentials to" under six passages). It tells the
# user nothing the sources do not, and its number may cite nothing.
_ECHO_LINE = re.compile(r"^[ \t>#*_-]*\[\d{1,3}\](?P<text>.*)$")
# What a line may still grow into an echo from: decoration, "[", "[1", "[1]", "[1] Pipeline syn".
_ECHO_START = re.compile(r"^[ \t>#*_-]*(?:\[(?:\d{1,3}(?:\](?P<text>.*))?)?)?$")
# Shorter cut-off headings ("[1] Pipe") are too little to tell from a sentence.
_MIN_ECHO_CHARS = 8
# A line that opens or closes a markdown code block.
_FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)
_NEWLINE = re.compile("\n")
# Where a line or a sentence ends (the line break itself is not part of it).
_LINE_OR_SENTENCE_END = re.compile(r"(?=\n)|[.!?](?=\s)")
# How much of a passage's opening an answer must copy, right after copying the end of a passage, to count as reading
# the passages out; and how much of a passage's end it must have copied before. In this round's make eval answers any
# opening length from 30 to 100 characters and any end from 10 to 40 found the same 21 answers.
_READOUT_OPENING_CHARS = 60
_READOUT_ENDING_CHARS = 20
# Closes an answer that copied a passage's code block to where the passage was cut. No passage number: the harness
# counts the model's own citations, and this is not the model's.
CUT_EXAMPLE_NOTE = "\n\n*The passage this example comes from ends here; its page (in the sources) has the rest of it.*"


def _fence_closer(text: str) -> str:
    """What closes the code block `text` leaves open ("" when it leaves none open)."""
    if len(_FENCE_LINE.findall(text)) % 2 == 0:
        return ""
    return ("" if text.endswith("\n") else "\n") + "```"


def _normalised(text: str) -> str:
    return " ".join(text.rstrip("*_: \t").split()).casefold()


class HeadingEchoes:
    """The headings of the passages an answer was given (Passage.heading: "Title > Section > Subsection"); finds
    the answer's lines that only repeat one. A line counts when its text is the start of a heading (at least
    _MIN_ECHO_CHARS of it, or all of it), or a title followed by a heading path the model misremembered ("[1] Git
    Plugin > Pipelines > Credentials Binding" for "Git Plugin > Pipelines > Git Credentials Binding")."""

    def __init__(self, headings: Sequence[str] = (), titles: Sequence[str] = ()) -> None:
        self._headings = [h for h in dict.fromkeys(map(_normalised, headings)) if h]
        self._paths = [f"{t} >" for t in dict.fromkeys(map(_normalised, titles)) if t]

    @classmethod
    def of(cls, passages: Sequence[Passage]) -> HeadingEchoes:
        """The headings as the prompt shows them (passages_block): each passage's heading path and page title."""
        return cls([p.heading for p in passages], [p.title for p in passages])

    def __bool__(self) -> bool:
        return bool(self._headings or self._paths)

    def is_echo(self, line: str) -> bool:
        """A whole line (its end seen) that only repeats a heading."""
        match = _ECHO_LINE.match(line)
        if not match or not (text := _normalised(match["text"])):
            return False
        return (any(h.startswith(text) and len(text) >= min(_MIN_ECHO_CHARS, len(h)) for h in self._headings)
                or any(text.startswith(path) for path in self._paths))

    def may_become_echo(self, partial: str) -> bool:
        """Whether more characters on this unfinished line could make it an echo (so it must be held back)."""
        match = _ECHO_START.match(partial)
        if not match:
            return False
        text = _normalised(match["text"] or "")
        return (not text or any(h.startswith(text) for h in self._headings)
                or any(path.startswith(text) or text.startswith(path) for path in self._paths))

    def remove(self, text: str) -> str:
        return "\n".join(line for line in text.split("\n") if not self.is_echo(line))


def trim_answer(text: str, echoes: HeadingEchoes | None = None) -> str:
    """Final trim of a whole answer; with `echoes`, lines repeating a passage heading go too."""
    if echoes:
        text = echoes.remove(text)
    text = _LEADING_ARTIFACT.sub("", text)
    return _TRAILING_ARTIFACT.sub("", text)


class StreamTrimmer:
    """Applies `trim_answer` incrementally: feed() returns text safe to send now, finish() the rest.

    Invariant: the concatenation of everything returned equals trim_answer(all text fed, echoes).
    """

    def __init__(self, echoes: HeadingEchoes | None = None) -> None:
        self._raw = ""
        self._sent = 0  # characters of the trimmed text already returned
        self._started = False
        self._echoes = echoes

    def _trimmed(self) -> str:
        return trim_answer(self._raw, self._echoes)

    def feed(self, delta: str) -> str:
        self._raw += delta
        if not self._started:
            stripped = self._raw.lstrip()
            if len(stripped) < _LEADING_HOLD_CHARS and "\n" not in stripped:
                return ""
            self._started = True
        line_start = self._raw.rfind("\n") + 1
        if self._echoes and self._echoes.may_become_echo(self._raw[line_start:]):
            # The unfinished line is held back until its end shows whether it repeats a heading.
            safe = trim_answer(self._raw[:line_start], self._echoes)
        else:
            safe = self._trimmed()
        # Text that is (or may grow into) a trailing artifact is only released when more text follows it.
        line_start = safe.rfind("\n")
        if line_start >= 0 and any(label.startswith(safe[line_start:]) for label in _TRAILING_LABELS):
            safe = safe[:line_start].rstrip()
        out = safe[self._sent:]
        self._sent = len(safe)
        return out

    @property
    def echoes_removed(self) -> int:
        """Lines of the text fed so far that repeated a passage heading (and so were not returned)."""
        if not self._echoes:
            return 0
        return sum(self._echoes.is_echo(line) for line in self._raw.split("\n"))

    def finish(self) -> str:
        final = self._trimmed()
        out = final[self._sent:]
        self._sent = len(final)
        return out


class _StreamGuard:
    """What RepetitionGuard and ReadoutGuard share: the text fed so far, how much of it went out, and whether the
    answer was stopped. feed() returns text safe to send now, finish() the rest."""

    def __init__(self) -> None:
        self._text = ""
        self._sent = 0
        self.stopped = False

    def _release(self, end: int) -> str:
        out = self._text[self._sent:end]
        self._sent = max(self._sent, end)  # what went out is never taken back
        return out

    def finish(self) -> str:
        return "" if self.stopped else self._release(len(self._text))


class RepetitionGuard(_StreamGuard):
    """Stops an answer once it repeats its own earlier text verbatim for `limit` characters; feed() returns text safe
    to send now, finish() the rest.

    Greedy decoding makes the 0.5B model loop: it writes a paragraph or a code block again, word for word, often
    until max_tokens (7 of the 122 golden answers repeated 200 characters or more, e.g. one Jenkinsfile three times;
    none of 562 distinct answers in the harness's reports repeated that much legitimately). The repeat adds nothing,
    costs the user seconds of decoding, and is stored and shown as the answer.

    Only the text currently repeating is held back: the longest end of the answer that also occurs earlier in it.
    When the model moves on, that text is released; when it grows to `limit` characters, the answer stops where
    the repeat began (at the end of that line or sentence) and the rest is dropped. A code block left open there is
    closed. limit 0 = never stop.
    Invariant: everything returned is a prefix of everything fed (plus the closing fence when stopped).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._repeat_from = 0  # start of the longest end of _text that also occurs earlier in it

    def feed(self, delta: str) -> str:
        if self.stopped or not delta:
            return ""
        self._text += delta
        if self._limit <= 0:
            return self._release(len(self._text))
        text, start = self._text, self._repeat_from
        # The end that repeats earlier text can only lose characters at its start as text is added (whatever repeats
        # now, its beginning repeated before), so the search resumes where it stopped: find() gives the first
        # occurrence, and an end found only where it stands repeats nothing.
        while start < len(text) and text.find(text[start:]) == start:
            start += 1
        self._repeat_from = start
        if len(text) - start < self._limit:
            return self._release(start)
        self.stopped = True
        # The repeat often begins mid-line or mid-sentence ("3. **Image Pull Secrets" + "**: The Maven container
        # ..." said before): the answer ends at the end of that line or sentence, not in the middle of a word.
        end = _LINE_OR_SENTENCE_END.search(text, start)
        end = end.end() if end else start
        return self._release(end) + _fence_closer(text[:end])  # stopped inside a code block: close it


class ReadoutGuard(_StreamGuard):
    """Stops an answer where it goes on from the end of one of its passages into the opening of another: the model is
    reading the prompt's passages out, not answering.

    Greedy, Qwen2.5-Coder-0.5B copies a passage (often an example) to where its chunk was cut, then the next passage's
    header (which HeadingEchoes removes) and text, and so on until max_tokens: 21 of this round's 122 make eval answers
    did, e.g. the time-zone answer went on from the right JAVA_OPTS settings into a blog post's "Before setting up the
    weekly Office Hours ...", and make run's answer from the Parallel example, cut in the middle, into the Sequential
    Stages section. The text it reads out is in the sources already; it hides the answer and costs seconds of decoding.
    Cut there, no answer has fewer key facts (the quotes give back the 4 that went with the text read out): make eval,
    same session, keyfact_recall 0.552 -> 0.556, 0 answers worse, 22% fewer tokens decoded.

    A line that starts right after a passage's end (its last _READOUT_ENDING_CHARS characters, whitespace aside) is held
    back while it may still grow into a passage's opening; once it has copied _READOUT_OPENING_CHARS of one, the answer
    ends before it, otherwise it is released. Copying one passage, or ending with a passage's last words, is not
    reading out. A code block left open where the answer ends is closed, and when the passage copied last was itself
    cut inside its code block (make run's Parallel example), CUT_EXAMPLE_NOTE says so: the user would otherwise take
    an unfinished Jenkinsfile for the whole one.
    Invariant: everything returned is a prefix of everything fed (plus the closing fence and note when stopped).
    """

    def __init__(self, passages: Sequence[Passage] = ()) -> None:
        texts = [t for t in (p.text.strip() for p in passages) if t]
        self._openings = [t[:_READOUT_OPENING_CHARS] for t in texts]
        self._endings = [t[-_READOUT_ENDING_CHARS:] for t in texts]
        self._ends_in_code = [bool(_fence_closer(t)) for t in texts]
        super().__init__()

    def feed(self, delta: str) -> str:
        if self.stopped or not delta:
            return ""
        self._text += delta
        if not self._openings:
            return self._release(len(self._text))
        text = self._text
        hold = len(text)
        # Text before _sent was released because no line starting in it could be an opening: only later lines can.
        line_starts = [self._sent] if self._sent == 0 or text[self._sent - 1] == "\n" else []
        line_starts += [newline.end() for newline in _NEWLINE.finditer(text, self._sent)]
        for start in line_starts:
            line = text[start:]
            copied = any(line.startswith(opening) for opening in self._openings)
            if not copied and not any(opening.startswith(line) for opening in self._openings):
                continue
            before = text[:start].rstrip()
            ended = [i for i, ending in enumerate(self._endings) if before.endswith(ending)] if before else []
            if not ended:
                continue
            if copied:
                self.stopped = True
                closer = _fence_closer(before)
                if closer and any(self._ends_in_code[i] for i in ended):
                    closer += CUT_EXAMPLE_NOTE
                return self._release(len(before)) + closer
            hold = len(before)  # the whitespace after the passage's end too: the answer may end there
            break
        return self._release(hold)
