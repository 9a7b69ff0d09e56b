"""Masking secrets in console logs before they reach a model, a log line or a metric.

Why our own patterns and not detect-secrets (PyPI): it is a detector for source files, not a masker. Its plugins
scan one line at a time and report a value, not a span (the GitHub plugin reports `ghp`, the private-key plugin
only the BEGIN line, so a key body would survive), it misses `Authorization: Bearer ...`, its entropy plugins flag
ordinary words ("Building", "INFO") and it costs about 0.4 ms a line (40 s for a 5 MB log).

Speed: one regex alternating all the forms costs Python's re a try of every branch at every position (about 20 s
for 50 MB). Each pattern here is its own regex that starts with a literal, which re finds with a fast substring
search, so the text is read once per pattern; keys matched case-insensitively are searched for in a lowercased copy
of the text (same length, so the spans carry over). Repeats are bounded, so no pattern can be quadratic.

Each value is replaced by `****`, the spelling Jenkins uses for the secrets it masks itself; values that already
are `****` are left as they are, so masking twice counts nothing the second time.
"""

from __future__ import annotations

import re

MASK = "****"

_VALUE = r"""(?P<v>(?<=")[^"\n]{1,512}(?=")|(?<=')[^'\n]{1,512}(?=')|[^\s'",;&}<>)]{1,512})"""

# (pattern, searched in the lowercased text?). Each pattern's group `v` is the value masked.
_PATTERNS: list[tuple[str, bool]] = [
    # https://user:password@host -> https://user:****@host (the user name helps diagnose and is kept)
    (r"://[^\s:/@'\"]{1,256}:(?P<v>[^\s/@'\"]{1,256})@", False),
    # curl -u user:password / --user user:password
    (r"-u[ =]['\"]?[^\s:'\"]{1,256}:(?P<v>[^\s'\"]{1,256})", False),
    (r"--user[ =]['\"]?[^\s:'\"]{1,256}:(?P<v>[^\s'\"]{1,256})", False),
    # Authorization / Proxy-Authorization headers, any scheme
    (
        (
            r"authorization['\"]?\s{0,5}[:=]\s{0,5}['\"]?(?:(?:bearer|basic|token|digest|negotiate)\s{1,5})?"
            r"(?P<v>(?!(?:bearer|basic|token|digest|negotiate)\b)[a-z0-9._~+/=-]{6,4096})"
        ),
        True,
    ),
    # a bare bearer token (with a digit, so prose such as "Bearer authentication" is left alone)
    (r"bearer\s{1,5}(?P<v>(?=[a-z_.~+/-]{0,200}\d)[a-z0-9._~+/-]{12,4096}=*)", True),
    # AWS access key ids (AKIA long-term, ASIA temporary, and the other documented prefixes)
    (r"(?P<v>A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[A-Z0-9]{16})(?![A-Za-z0-9])", False),
    # GitHub classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained (github_pat_) tokens
    (r"(?P<v>gh[pousr]_[A-Za-z0-9]{36,255})", False),
    (r"(?P<v>github_pat_[A-Za-z0-9_]{22,255})", False),
    # GitLab personal / project / group access tokens and runner tokens
    (r"(?P<v>gl(?:pat|rt|dt|ptt)-[A-Za-z0-9_-]{20,255})", False),
    # Slack tokens and incoming-webhook URLs
    (r"(?P<v>xox[abprs]-[A-Za-z0-9-]{10,255})", False),
    (r"hooks\.slack\.com/services/(?P<v>[A-Za-z0-9/]{20,255})", False),
    # JWTs: the base64url header and payload both start with '{"' -> 'eyJ'
    (r"(?P<v>eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{5,4096})", False),
    # Docker Hub and npm access tokens
    (r"(?P<v>dckr_pat_[A-Za-z0-9_-]{20,255})", False),
    (r"(?P<v>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])", False),
    # docker login -u user -p password (and other `login ... -p value` forms)
    (r"login\b[^\n]{0,200}?\s-p\s{1,3}['\"]?(?P<v>(?![-*])[^\s'\"]{1,512})", False),
    # command-line flags: --password value (-Dpassword=value is the key=value case below)
    (r"--(?:password|passwd|token|secret|api-key|apikey)\s{1,3}['\"]?(?P<v>(?![-*])[^\s'\"]{1,512})", True),
]
# key=value / key: value / "key": "value" where the key names a secret (DB_PASSWORD, aws_secret_access_key,
# client_secret, api-key, GITHUB_TOKEN ...): one regex per key word so each starts with its literal.
# The key's own name is group `k`: names ending in "id" (credentialsId, tokenCredentialId), "file", "url" ... name a
# secret without holding one, and an exception (`SecretNotFoundException: ...`) is followed by its message.
for _key in (
    "passw",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "accesskey",
    "private_key",
    "private-key",
    "auth_key",
):
    _PATTERNS.append(
        (f"(?P<k>{re.escape(_key)}" + r"[\w.-]{0,40}?)['\"]?\s{0,5}(?:=>|[:=])\s{0,5}['\"]?" + _VALUE, True)
    )

_NOT_SECRET_KEY_ENDS = ("id", "ids", "izer", "url", "uri", "file", "path", "name", "type")

_COMPILED = [(re.compile(pattern), lowered) for pattern, lowered in _PATTERNS]
_NEEDS_LOWER = any(lowered for _, lowered in _PATTERNS)

# A private key's body spans lines (or sits on one line with literal \n in JSON): found by its markers, not a regex
# over the body, so a BEGIN without an END cannot make a scan quadratic.
_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY_LINE = re.compile(r"[A-Za-z0-9+/=]{1,}|(?:Proc-Type|DEK-Info|Comment): [^\n]*")
_KEY_SPAN = 64 * 1024  # the largest key block looked for (an RSA 16384 key in PEM is about 12 KB)


def _key_block_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    next_end: re.Match[str] | None = None  # the first END marker found and not yet used
    clear_to = 0  # no END marker starts before this (a BEGIN flood must not rescan the same 64 KB each time)
    while (begin := _KEY_BEGIN.search(text, pos)) is not None:
        body = begin.end()
        if next_end is not None and next_end.start() < body:
            next_end = None
        if next_end is None and clear_to < body + _KEY_SPAN:
            next_end = _KEY_END.search(text, max(body, clear_to), body + _KEY_SPAN)
            if next_end is None:
                clear_to = body + _KEY_SPAN - 100  # an END cut by the window's edge is found by the next search
        if next_end is not None and next_end.start() <= body + _KEY_SPAN:
            stop = next_end.start()
        else:
            # no END (the log was cut, or printed partly): mask the base64-looking lines after the BEGIN
            stop = body
            while stop < len(text) and text[stop] == "\n":
                line_end = text.find("\n", stop + 1)
                line_end = len(text) if line_end == -1 else line_end
                if line_end - stop > 4096 or not _KEY_BODY_LINE.fullmatch(text, stop + 1, line_end):
                    break
                stop = line_end
        if stop > body:
            spans.append((body, stop))
        pos = max(stop, body)
    return spans


def _lowered(text: str) -> str:
    # str.lower() keeps the length except for U+0130 (İ -> i + combining dot); spans must line up with `text`.
    low = text.lower()
    return low if len(low) == len(text) else text.replace("\u0130", "I").lower()


def mask_secrets(text: str) -> tuple[str, int]:
    """`text` with every secret value replaced by `****`, and how many values were replaced."""
    spans = _key_block_spans(text)
    low = _lowered(text) if _NEEDS_LOWER else text
    for regex, lowered in _COMPILED:
        for match in regex.finditer(low if lowered else text):
            start, end = match.span("v")
            if "k" in regex.groupindex:
                key = match.group("k")
                if key.endswith(_NOT_SECRET_KEY_ENDS) or "exception" in key or "error" in key:
                    continue
            if text[start - 1 : start].isalnum() and regex.pattern.startswith("(?P<v>"):
                continue  # a token prefix in the middle of a word (e.g. "...xAKIA...") is not a token
            spans.append((start, end))
    if not spans:
        return text, 0
    spans.sort()
    parts: list[str] = []
    count = 0
    pos = 0
    for start, end in spans:
        if start < pos:
            # overlaps a value already masked: `token:ghs_...@github.com` is both a URL password and a key: value,
            # and the first, shorter span keeps the host readable
            continue
        if text.startswith("***", start):
            continue  # already masked, by Jenkins or by an earlier pass
        parts.append(text[pos:start])
        parts.append(MASK)
        count += 1
        pos = end
    parts.append(text[pos:])
    return "".join(parts), count
