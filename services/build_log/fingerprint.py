"""A failure's fingerprint: the same failure in build #41 and #42 gets the same key, a different one does not.

The key is the signature id and a hash of the failure's message with what changes from build to build replaced by
placeholders: timestamps, UUIDs, hex ids (commits, image digests, durable-task dirs), numbers (build numbers, line
numbers, durations, `@2` workspace suffixes), temporary file names.
"""

from __future__ import annotations

import hashlib
import re

from jenkins_assistant.build_log.extract import LogFacts

# Applied in order: the wider forms first, so a timestamp is not first cut into numbers.
_NORMALISE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (re.compile(r"\b\d{1,2}:\d\d:\d\d(?:\.\d{1,9})?\b"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:0x)?[0-9a-fA-F]{7,}\b|\b(?:sha256:)?[0-9a-f]{64}\b"), "<hex>"),
    # mktemp-style names: /tmp/tmp.Xa8Bz3Lk, jenkins12345.sh, durable-…
    (re.compile(r"\btmp\.[A-Za-z0-9]{6,}|\b(?:jenkins|script|durable)[-_]?[A-Za-z0-9]{6,}\b"), "<tmp>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_message(message: str) -> str:
    """`message` with run-specific parts replaced by placeholders (`<ts>`, `<uuid>`, `<hex>`, `<tmp>`, `<n>`)."""
    for pattern, placeholder in _NORMALISE:
        message = pattern.sub(placeholder, message)
    return message.strip()


def fingerprint(facts: LogFacts) -> str:
    """`<signature id>:<32 hex digits>` over the signature, the exception chain's classes and the normalised message.

    The message is the line that matched the signature, else the root cause's message, else the first error line;
    the stage and the step are left out, so renaming a stage does not hide a known failure.
    """
    message = facts.signature_line or facts.root_cause_message or facts.first_error_line or ""
    parts = [
        facts.signature_id,
        facts.exception_class or "",
        facts.root_cause_class or "",
        normalise_message(message),
    ]
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:32]
    return f"{facts.signature_id}:{digest}"
