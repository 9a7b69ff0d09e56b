"""Known failure signatures: a stable id, a short human label and the line patterns that identify it.

The table is in priority order: when a log shows several (Maven's "Failed to execute goal" around "There are test
failures", Gradle's "Build failed" around an OutOfMemoryError), the more specific cause comes first and wins.
Every pattern contains a literal that `TRIGGER` finds, so only lines holding one are matched against the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    id: str
    label: str
    pattern: re.Pattern[str]
    # literals of which at least one is in any line the pattern matches (for the one-pass trigger scan)
    triggers: tuple[str, ...]
    # a weak hit ("Waiting for next available executor") is dropped when a step runs after it: the wait ended
    weak: bool = False
    # regexes, each starting with a literal, that find the lines worth a look in the whole log (default: the
    # triggers); narrower ones keep a common line ("Tests run: 4, Failures: 0") from being looked at
    events: tuple[str, ...] = ()


def _sig(
    id_: str, label: str, pattern: str, triggers: tuple[str, ...], weak: bool = False, events: tuple[str, ...] = ()
) -> Signature:
    return Signature(id_, label, re.compile(pattern), triggers, weak, events or tuple(map(re.escape, triggers)))


SIGNATURES: tuple[Signature, ...] = (
    _sig(
        "credentials-not-found",
        "Missing credentials id",
        r"Could not find credentials entry with ID|CredentialNotFoundException",
        ("Could not find credentials entry", "CredentialNotFoundException"),
    ),
    _sig(
        "script-security-rejected",
        "Script security rejected a method call",
        r"Scripts not permitted to use|RejectedAccessException",
        ("Scripts not permitted to use", "RejectedAccessException"),
    ),
    _sig(
        "no-such-dsl-method",
        "Unknown Pipeline step or symbol (plugin missing?)",
        r"No such DSL method '(?P<step>[\w.$]{1,200})'|No such DSL method",
        ("No such DSL method",),
    ),
    _sig(
        "unsupported-class-version",
        "Classes compiled for a newer Java than the one running",
        r"UnsupportedClassVersionError|has been compiled by a more recent version of the Java Runtime",
        ("UnsupportedClassVersionError", "compiled by a more recent version"),
    ),
    _sig(
        "out-of-memory",
        "Out of memory",
        r"OutOfMemoryError|JavaScript heap out of memory|Cannot allocate memory",
        ("OutOfMemoryError", "heap out of memory", "Cannot allocate memory"),
    ),
    _sig("disk-full", "Disk full", r"No space left on device", ("No space left on device",)),
    _sig(
        "docker-permission-denied",
        "No permission to use the Docker daemon",
        r"permission denied while trying to connect to the Docker daemon",
        ("permission denied while trying to connect to the Docker daemon",),
    ),
    _sig(
        "docker-pull-denied",
        "Docker image pull denied or image not found",
        r"pull access denied|manifest for \S{1,300} not found|toomanyrequests: You have reached your pull rate limit",
        ("pull access denied", "manifest for ", "toomanyrequests"),
    ),
    _sig(
        "git-auth-failed",
        "Git authentication failed",
        r"Authentication failed for|Invalid username or password|Permission denied \(publickey|"
        r"could not read Username for",
        (
            "Authentication failed",
            "Invalid username or password",
            "Permission denied (publickey",
            "could not read Username",
        ),
    ),
    _sig(
        "git-revision-not-found",
        "Git found no revision to build (branch or refspec wrong)",
        r"Couldn't find any revision to build",
        ("Couldn't find any revision to build",),
    ),
    _sig(
        "git-checkout-failed",
        "Git checkout failed",
        r"stderr: fatal:|hudson\.plugins\.git\.GitException|Error cloning remote repo",
        ("stderr: fatal:", "GitException", "Error cloning remote repo"),
    ),
    _sig(
        "agent-unavailable",
        "No agent online for the label",
        r"There are no nodes with the label|All nodes of label \S{1,200} are offline|doesn.t have label|"
        r"is offline$",
        ("There are no nodes with the label", "All nodes of label", "have label", "is offline"),
    ),
    _sig(
        "agent-unavailable",
        "No agent online for the label",
        r"Waiting for next available executor|Still waiting to schedule task",
        ("Waiting for next available executor", "Still waiting to schedule task"),
        weak=True,
    ),
    _sig(
        "test-failures",
        "Test failures",
        r"There are test failures|There were failing tests|Tests run: \d{1,9}, Failures: (?:[1-9]|\d{1,9}, Errors: [1-9])|"
        r"\d{1,9} tests? completed, \d{1,9} failed",
        ("There are test failures", "There were failing tests", "Tests run: ", " failed"),
        events=(
            "There are test failures",
            "There were failing tests",
            r"Tests run: \d{1,9}, Failures: (?:[1-9]|\d{1,9}, Errors: [1-9])",
            r"tests? completed, \d{1,9} failed",
        ),
    ),
    _sig(
        "timeout",
        "Timeout exceeded",
        r"Timeout has been exceeded|Cancelling nested steps due to timeout|Build timed out",
        ("Timeout has been exceeded", "Cancelling nested steps due to timeout", "Build timed out"),
    ),
    _sig(
        "maven-build-failed",
        "Maven build failed",
        r"\[ERROR\] Failed to execute goal",
        ("[ERROR] Failed to execute goal",),
    ),
    _sig(
        "gradle-build-failed",
        "Gradle build failed",
        r"FAILURE: Build failed with an exception|FAILURE: Build completed with \d{1,6} failures?",
        ("FAILURE: Build",),
    ),
    _sig("npm-error", "npm error", r"^npm (?:ERR!|error) ", ("npm ERR!", "npm error ")),
    _sig("aborted", "Build aborted", r"^Aborted by |^Finished: ABORTED", ("Aborted by ", "Finished: ABORTED")),
)

# Not a known cause, only what the shell said: used when no signature matched but a step exited non-zero.
SHELL_EXIT = ("shell-exit-nonzero", "Shell step exited with a non-zero code")
UNKNOWN = ("unknown", "No known signature")

BY_PRIORITY = {sig.id: index for index, sig in reversed(list(enumerate(SIGNATURES)))}
