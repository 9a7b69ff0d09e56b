"""Facts from a Jenkins console log: failing stage and step, known signature, exception chain, exit code, excerpt.

The log is cleaned (ANSI colours, console notes, timestamp prefixes), masked, then read once: each literal that can
start an interesting line (`[Pipeline] `, `ERROR:`, `Exception`, a signature's trigger ...) is found by its own
regex, whose literal prefix Python's re finds with a fast substring search, and `heapq.merge` walks those matches
in log order. Only the lines holding one are looked at, each once, and the state kept is bounded (the open blocks,
the first hit per signature, one exception chain), so the time is linear in the log and a 10 MB line is one line.

How the failing stage is found, as Jenkins prints a Pipeline:
  * `[Pipeline] stage` then `[Pipeline] { (Name)` opens a stage, `[Pipeline] { (Branch: x)` a parallel branch,
    `[Pipeline] {` any other block and `[Pipeline] }` closes the innermost; other `[Pipeline] word` lines are steps.
  * Most errors are printed at the very end, after every block has closed and after the post actions ran their own
    steps. So the place of failure is the last step before the first of: `Stage "X" skipped due to earlier
    failure(s)`, the `Declarative: Post Actions` stage, `Failed in branch`, `End of Pipeline` or `Finished:`. An
    error printed while a stage is still open (a Maven error from inside `sh`) is placed where it was printed.
  * Parallel branches interleave their lines, so blocks cannot be told apart by nesting alone; `Failed in branch x`
    names the branch, and when a stage of that name was seen it is the failing stage.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass

from jenkins_assistant.build_log.config import BuildLogSettings
from jenkins_assistant.build_log.masking import mask_secrets
from jenkins_assistant.build_log.signatures import BY_PRIORITY, SHELL_EXIT, SIGNATURES, UNKNOWN, Signature
from jenkins_assistant.common.console_text import clean
from jenkins_assistant.common.errors import InvalidInput


@dataclass(frozen=True)
class LogFacts:
    """What the log says about the failure; every text is masked and clipped to `max_line_chars`."""

    result: str | None  # from `Finished: FAILURE` (FAILURE, ABORTED, UNSTABLE, SUCCESS), None when not printed
    stage: str | None  # the innermost failing stage
    stage_path: tuple[str, ...]  # the failing stage and the stages around it, outermost first
    parallel_branch: str | None  # the parallel branch that failed (`Failed in branch x`)
    step: str | None  # the failing step (`sh`, `withCredentials`, `checkout`, a missing DSL method's name)
    signature_id: str  # a stable id from signatures.SIGNATURES, "shell-exit-nonzero" or "unknown"
    signature_label: str  # a short human label of the signature
    signature_line: str | None  # the line that matched the signature
    first_error_line: str | None
    first_error_line_number: int | None  # 1-based, in the text kept (see `truncated`)
    lines_before_end: tuple[str, ...]  # the lines before `Finished: ...` (or the end of the log)
    exception_class: str | None  # the first Java exception thrown (`java.lang.NoSuchMethodError`)
    exception_message: str | None
    root_cause_class: str | None  # the last `Caused by:` of that exception's chain (the exception itself if none)
    root_cause_message: str | None
    exit_code: int | None  # from the first `script returned exit code N`
    excerpt: str  # the lines around the first error and the signature line, and the tail, bounded
    masked_count: int  # secret values masked in the log
    truncated: bool  # the log was over `max_log_bytes` and only its tail was read
    input_bytes: int  # size of the log as received (UTF-8 bytes)
    long_lines: int  # lines longer than `max_line_chars` met in the scan or the excerpt, clipped


_CONTROL = {code: "\ufffd" for code in (*range(9), *range(11, 32), 127)}

_EXCEPTION = re.compile(
    r"(?:Caused by: |Also:\s{1,20}|ERROR: |Exception in thread \"[^\"]{0,200}\" )?"
    r"(?P<cls>(?:[a-zA-Z_$][\w$]{0,100}\.){1,20}[A-Z][\w$]{0,100}(?:Exception|Error|Throwable))(?![\w$])"
    r"(?::\s?(?P<msg>.*))?"
)
# the lines a stack trace is made of, between one `Caused by:` and the exception above it
_TRACE_GAP = re.compile(r"(?:[ \t]+(?:at |\.\.\. \d+ more|Suppressed: |Also: )[^\n]*\n|[ \t]*\n)*")
_EXIT_CODE = re.compile(r"script returned exit code (-?\d{1,10})")
_FAILED_BRANCH = re.compile(r"Failed in branch (.{1,200})")
_SKIPPED = "skipped due to earlier failure"
_POST_ACTIONS = "Declarative: Post Actions"
_ERROR_STARTS = ("ERROR:", "[ERROR]", "FATAL:", "fatal:", "npm ERR!", "npm error", "FAILURE:", "Caused by:")
_NOT_STEPS = {"stage", "parallel"}

_MAX_STAGES_REMEMBERED = 1000
_MAX_DEPTH = 64  # deeper nesting is kept as its outer 64 blocks (real Pipelines nest about 10)


def _event_patterns() -> list[str]:
    literals = {
        "[Pipeline] ",
        "ERROR:",
        "[ERROR]",
        "FATAL:",
        "fatal:",
        "Caused by: ",
        "script returned exit code",
        "Finished: ",
        "Failed in branch ",
        _SKIPPED,
        "FAILURE:",
        "npm ",
    }
    # a literal holding another one is found through that one
    patterns = {re.escape(lit) for lit in literals if not any(o != lit and o in lit for o in literals)}
    # exception class names end a word ("Errors: 0" is not one)
    patterns.update((r"Exception(?![\w$])", r"Error(?![\w$])", r"Throwable(?![\w$])"))
    for sig in SIGNATURES:
        patterns.update(sig.events)
    return sorted(patterns)


_EVENTS = [re.compile(pattern) for pattern in _event_patterns()]

# Which signatures a line may match, from the triggers it holds: one regex call a line instead of a loop over the
# table (the longest trigger first, so one that holds another is found whole).
_TRIGGERS: dict[str, list[int]] = {}
for _index, _sig in enumerate(SIGNATURES):
    for _trigger in _sig.triggers:
        _TRIGGERS.setdefault(_trigger, []).append(_index)
_TRIGGER = re.compile("|".join(re.escape(t) for t in sorted(_TRIGGERS, key=len, reverse=True)))


def check_size(log: str | bytes, settings: BuildLogSettings | None = None) -> None:
    """Raise InvalidInput naming the limit when `log` is over `max_log_bytes` (for a caller that refuses rather
    than reading the tail, as `extract` does)."""
    settings = settings or BuildLogSettings()
    size = len(log) if isinstance(log, bytes | bytearray | memoryview) else len(log.encode("utf-8", "replace"))
    if size > settings.max_log_bytes:
        raise InvalidInput(f"console log is {size} bytes, over the limit of {settings.max_log_bytes} bytes")


def _decode_tail(log: str | bytes | bytearray | memoryview, limit: int) -> tuple[str, bool, int]:
    if isinstance(log, str):
        if len(log) * 4 <= limit:  # surely under the limit: no need to encode
            return log, False, len(log.encode("utf-8", "replace"))
        log = log.encode("utf-8", "replace")
    elif not isinstance(log, bytes | bytearray | memoryview):
        raise InvalidInput(f"console log must be text or bytes, not {type(log).__name__}")
    data = bytes(log)
    size = len(data)
    if size <= limit:
        return data.decode("utf-8", "replace"), False, size
    tail = data[-limit:]
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        tail = tail[newline + 1 :]  # drop the partial first line; a single huge line keeps its end
    return tail.decode("utf-8", "replace"), True, size


@dataclass
class _Block:
    kind: str  # "stage", "branch" or "block"
    name: str | None


@dataclass
class _Context:
    stage_path: tuple[str, ...]
    branch: str | None
    step: str | None


@dataclass
class _Hit:
    signature: Signature
    line: str
    pos: int
    context: _Context


class _Scanner:
    """The bounded state of one pass over a cleaned, masked log."""

    def __init__(self, text: str, settings: BuildLogSettings) -> None:
        self.text = text
        self.settings = settings
        self.blocks: list[_Block] = []
        self.pending_stage = False
        self.last_step: _Context | None = None
        self.stage_paths: dict[str, tuple[str, ...]] = {}  # stage name -> its path, bounded
        self.stage_steps: dict[str, str] = {}  # stage name -> the last step seen in it, bounded
        self.boundary: _Context | None = None
        self.hits: dict[int, _Hit] = {}  # index in SIGNATURES -> the first hit
        self.first_error: tuple[int, str, _Context] | None = None
        self.exception: list[str | None] | None = None  # [class, message, root class, root message]
        self.trace_end = -1  # end of the last line of the first exception's chain
        self.exit_code: int | None = None
        self.failed_branch: str | None = None
        self.finished: tuple[int, str] | None = None
        self.long_lines = 0

    # --- the place in the Pipeline

    def _stage_path(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.blocks if b.kind == "stage" and b.name)

    def _branch(self) -> str | None:
        return next((b.name for b in reversed(self.blocks) if b.kind == "branch"), None)

    def context(self) -> _Context:
        """Where something printed now happened: in the open stage with its step, or else where the run stopped."""
        path = self._stage_path()
        if self.boundary is None and path and self.last_step is not None and self.last_step.stage_path == path:
            return _Context(path, self._branch(), self.last_step.step)
        if self.boundary is not None:
            return self.boundary
        if self.last_step is not None:
            return self.last_step
        return _Context(path, self._branch(), None)

    def set_boundary(self) -> None:
        if self.boundary is None:
            self.boundary = self.last_step or _Context(self._stage_path(), self._branch(), None)

    def pipeline_marker(self, rest: str) -> None:
        if rest.startswith("[") and "] " in rest:  # older parallel output: `[Pipeline] [branch] sh`
            rest = rest[rest.index("] ") + 2 :]
        if rest == "{":
            self._push(_Block("block", None))
        elif rest.startswith("{ (") and rest.endswith(")"):
            name = rest[3:-1]
            if name.startswith("Branch: "):
                self._push(_Block("branch", name[8:]))
            elif self.pending_stage:
                if name == _POST_ACTIONS:
                    self.set_boundary()
                self._push(_Block("stage", name))
                path = self._stage_path()
                branch = next((i for i, b in enumerate(self.blocks) if b.kind == "branch" and b.name == name), None)
                if branch is not None:
                    # a parallel stage: interleaved siblings may sit between it and its branch on the stack
                    path = (*(b.name for b in self.blocks[:branch] if b.kind == "stage" and b.name), name)
                if len(self.stage_paths) < _MAX_STAGES_REMEMBERED:
                    self.stage_paths.setdefault(name, path)
            else:
                self._push(_Block("block", name))
            self.pending_stage = False
        elif rest == "}":
            if self.blocks:
                self.blocks.pop()
        elif rest.startswith("//"):
            pass  # the comment closing a block: `[Pipeline] // stage`
        elif rest == "End of Pipeline":
            self.set_boundary()
        elif rest == "Start of Pipeline":
            pass
        else:
            step = rest.split(" ", 1)[0]
            if step == "stage":
                self.pending_stage = True
            elif step not in _NOT_STEPS and step:
                # a weak hit (waiting for an executor) is over once a step runs
                for index in [i for i, hit in self.hits.items() if hit.signature.weak]:
                    del self.hits[index]
                if self.boundary is None:
                    self.last_step = _Context(self._stage_path(), self._branch(), step)
                    path = self.last_step.stage_path
                    if path and (path[-1] in self.stage_steps or len(self.stage_steps) < _MAX_STAGES_REMEMBERED):
                        self.stage_steps[path[-1]] = step

    def _push(self, block: _Block) -> None:
        if len(self.blocks) < _MAX_DEPTH:
            self.blocks.append(block)

    # --- everything else

    def line(self, line: str, start: int, end: int) -> None:
        if line.startswith("[Pipeline] "):
            self.pipeline_marker(line[11:].rstrip())
            return
        is_error = line.startswith(_ERROR_STARTS)
        found = _TRIGGER.findall(line)
        candidates = {index for trigger in found for index in _TRIGGERS[trigger]} if found else ()
        for index in sorted(candidates):
            sig = SIGNATURES[index]
            if index not in self.hits and sig.pattern.search(line):
                self.hits[index] = _Hit(sig, line, start, self.context())
                is_error = is_error or not sig.weak
        if self.exit_code is None and "script returned exit code" in line:
            match = _EXIT_CODE.search(line)
            if match:
                self.exit_code = int(match.group(1))
                is_error = True
        if "Exception" in line or "Error" in line or "Throwable" in line:
            is_error = self._exception(line, start, end) or is_error
        if line.startswith("Finished: "):
            self.set_boundary()
            if self.finished is None:
                self.finished = (start, line[10:].strip())
        elif "Failed in branch " in line:
            match = _FAILED_BRANCH.search(line)
            if match and self.failed_branch is None:
                self.failed_branch = match.group(1).strip()
            self.set_boundary()
        elif _SKIPPED in line and line.startswith("Stage "):
            self.set_boundary()
        if is_error and self.first_error is None:
            self.first_error = (start, line, self.context())

    def _exception(self, line: str, start: int, end: int) -> bool:
        match = _EXCEPTION.match(line)
        if match is None:
            return False
        cls, msg = match.group("cls"), (match.group("msg") or "").strip() or None
        if self.exception is None:
            if line.startswith("Caused by: "):
                return True  # a chain whose head was not seen (cut off by the limit)
            self.exception = [cls, msg, cls, msg]
            self.trace_end = end
        elif line.startswith("Caused by: ") and self.trace_end >= 0:
            gap_start = self.trace_end + 1
            if start - gap_start <= 1_000_000 and _TRACE_GAP.fullmatch(self.text, gap_start, start):
                self.exception[2], self.exception[3] = cls, msg
                self.trace_end = end
            else:
                self.trace_end = -1  # another trace: the first chain is over
        return True

    def scan(self) -> None:
        text = self.text
        max_chars = self.settings.max_line_chars
        line_end = -1
        for match in heapq.merge(*(regex.finditer(text) for regex in _EVENTS), key=lambda m: m.start()):
            pos = match.start()
            if pos <= line_end:
                continue  # this line was looked at already
            line_start = text.rfind("\n", 0, pos) + 1
            line_end = text.find("\n", pos)
            if line_end == -1:
                line_end = len(text)
            if line_end - line_start > max_chars:
                self.long_lines += 1
                window = max(line_start, pos - max_chars // 4)
                line = text[window : window + max_chars]
            else:
                line = text[line_start:line_end]
            self.line(line, line_start, line_end)


def _clip(line: str, max_chars: int) -> str:
    line = line.translate(_CONTROL)
    if len(line) <= max_chars:
        return line
    return f"{line[:max_chars]} [... {len(line) - max_chars} chars cut]"


def _lines_before(text: str, pos: int, count: int) -> int:
    """Start of the line `count` lines above the one holding `pos`."""
    start = text.rfind("\n", 0, pos) + 1
    for _ in range(count):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def _lines_after(text: str, pos: int, count: int) -> int:
    """End (exclusive, before its newline) of the line `count` lines below the one holding `pos`."""
    end = text.find("\n", pos)
    for _ in range(count):
        if end == -1:
            break
        end = text.find("\n", end + 1)
    return len(text) if end == -1 else end


def _excerpt(text: str, spans: list[tuple[int, int]], settings: BuildLogSettings) -> tuple[str, int]:
    """The lines of `spans` (merged, in order, gaps marked), bounded; and how many of them were clipped."""
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    previous_end = 0
    budget = settings.max_excerpt_chars
    clipped_lines = 0
    for start, end in merged:
        skipped = text.count("\n", previous_end, start) - (1 if previous_end else 0)
        if skipped > 0:
            parts.append(f"[... {skipped} lines ...]")
        for line in text[start:end].split("\n"):
            clipped = _clip(line, settings.max_line_chars)
            clipped_lines += len(line) > settings.max_line_chars
            if budget - len(clipped) < 0:
                parts.append("[... excerpt limit ...]")
                return "\n".join(parts), clipped_lines
            budget -= len(clipped) + 1
            parts.append(clipped)
        previous_end = end
    return "\n".join(parts), clipped_lines


def extract(log: str | bytes, settings: BuildLogSettings | None = None) -> LogFacts:
    """Facts of a console log (text, or bytes decoded as UTF-8 with invalid sequences replaced).

    A log over `settings.max_log_bytes` is read from its tail (`truncated`); an empty one raises InvalidInput.
    """
    settings = settings or BuildLogSettings()
    raw, truncated, input_bytes = _decode_tail(log, settings.max_log_bytes)
    if not raw.strip():
        raise InvalidInput("console log is empty")
    text, masked_count = mask_secrets(clean(raw))
    del raw

    scanner = _Scanner(text, settings)
    scanner.scan()
    max_chars = settings.max_line_chars

    # the signature: the most specific one seen; then a non-zero exit; then nothing known
    hit = min(scanner.hits.values(), key=lambda h: BY_PRIORITY[h.signature.id], default=None)
    if hit is not None:
        signature_id, signature_label = hit.signature.id, hit.signature.label
    elif scanner.exit_code not in (None, 0):
        signature_id, signature_label = SHELL_EXIT
    else:
        signature_id, signature_label = UNKNOWN

    # the place: where the signature was printed, else where the first error was, else where the run stopped
    if hit is not None:
        context = hit.context
    elif scanner.first_error is not None:
        context = scanner.first_error[2]
    else:
        context = scanner.boundary or scanner.last_step or _Context((), None, None)
    stage_path, branch, step = context.stage_path, context.branch, context.step
    if scanner.failed_branch is not None:
        branch = scanner.failed_branch
        if branch in scanner.stage_paths:
            stage_path = scanner.stage_paths[branch]
            step = scanner.stage_steps.get(branch, step)
    if hit is not None and hit.signature.id == "no-such-dsl-method":
        missing = hit.signature.pattern.search(hit.line)
        if missing and missing.group("step"):
            step = missing.group("step")  # the step that does not exist never printed its `[Pipeline]` line

    end = scanner.finished[0] if scanner.finished else len(text)
    tail_start = _lines_before(text, max(end - 1, 0), settings.lines_before_end - 1) if end else 0
    before_end = tuple(_clip(line, max_chars) for line in text[tail_start:end].rstrip("\n").split("\n") if line)

    spans = [(_lines_before(text, max(len(text) - 1, 0), settings.tail_lines - 1), len(text))]
    first_error_line = first_error_number = None
    if scanner.first_error is not None:
        pos = scanner.first_error[0]
        first_error_line = _clip(scanner.first_error[1], max_chars)
        first_error_number = text.count("\n", 0, pos) + 1
        spans.append(
            (
                _lines_before(text, pos, settings.context_before_lines),
                _lines_after(text, pos, settings.context_after_lines),
            )
        )
    if hit is not None:
        spans.append((_lines_before(text, hit.pos, 3), _lines_after(text, hit.pos, 5)))

    excerpt, clipped_lines = _excerpt(text, spans, settings)
    exception = scanner.exception or [None, None, None, None]
    return LogFacts(
        result=scanner.finished[1] if scanner.finished else None,
        stage=stage_path[-1] if stage_path else None,
        stage_path=stage_path,
        parallel_branch=branch,
        step=step,
        signature_id=signature_id,
        signature_label=signature_label,
        signature_line=_clip(hit.line, max_chars) if hit else None,
        first_error_line=first_error_line,
        first_error_line_number=first_error_number,
        lines_before_end=before_end,
        exception_class=exception[0],
        exception_message=_clip(exception[1], max_chars) if exception[1] else None,
        root_cause_class=exception[2],
        root_cause_message=_clip(exception[3], max_chars) if exception[3] else None,
        exit_code=scanner.exit_code,
        excerpt=excerpt,
        masked_count=masked_count,
        truncated=truncated,
        input_bytes=input_bytes,
        long_lines=max(scanner.long_lines, clipped_lines),
    )


__all__ = ["LogFacts", "check_size", "clean", "extract"]
