"""Client credentials and whom a caller may speak for (no gRPC here: configs and cores use it).

Each client (the Jenkins plugin, the gateway, the inference service calling memory, the CLI, the scraper) has its
own credential: a name, the SHA-256 of its token and its scopes, read from a JSON file (`*_AUTH_CLIENTS_FILE`,
mounted from a Secret in the chart):

    {"jenkins-plugin": {"token_sha256": "<hex>", "scopes": ["assert-owner"]},
     "cli":            {"token_sha256": "<hex>", "scopes": []}}

The auth interceptor (`jenkins_assistant.common.auth`) makes the client whose token a call carries its caller
(`current_client()`); servicers ask `owner_for` whom a request's `owner` really is. Only a client with the
`assert-owner` scope may name any owner; every other client's owners are its own name, or `<name>:<owner it
named>`, so it can never reach the sessions of a user another client speaks for.

The single shared token (`*_AUTH_TOKEN`) still works: it is one client named `shared` with `assert-owner`, which
is what that token always meant (whoever holds it may speak for any user).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

# The scope of clients trusted to say which user a request is for (they authenticate their users themselves).
ASSERT_OWNER = "assert-owner"
# The scope of clients that may read every user's rated answers (the dataset export): questions are personal data.
EXPORT_FEEDBACK = "export-feedback"
SCOPES = frozenset({ASSERT_OWNER, EXPORT_FEEDBACK})
SHARED_CLIENT = "shared"
CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Client:
    """A caller the server knows: its name, the SHA-256 (hex) of its token, its scopes."""

    name: str
    token_sha256: str
    scopes: frozenset[str] = frozenset()

    @property
    def may_assert_owner(self) -> bool:
        return ASSERT_OWNER in self.scopes

    @property
    def may_export_feedback(self) -> bool:
        return EXPORT_FEEDBACK in self.scopes


# The authenticated caller of the current call; None when the server runs without auth (development).
CALLER: contextvars.ContextVar[Client | None] = contextvars.ContextVar("jenkins_assistant_caller", default=None)


def current_client() -> Client | None:
    return CALLER.get()


def owner_for(requested: str, client: Client | None) -> str:
    """The owner a request from `client` acts for. Without auth, or for a client trusted to assert users, the one
    it names; for any other client its own name, or `<name>:<requested>`: a scope of its own, whatever it names."""
    if client is None or client.may_assert_owner:
        return requested
    return f"{client.name}:{requested}" if requested else client.name


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_clients(data: object, source: str = "clients") -> list[Client]:
    """Clients from the JSON mapping name -> {"token_sha256", "scopes"}; a mistake is an error naming it (a typo in
    a scope must not quietly take a right away or give one)."""
    if not isinstance(data, dict):
        raise TypeError(f"{source}: expected a JSON object of client name -> {{token_sha256, scopes}}")
    clients = []
    for name, entry in data.items():
        if not CLIENT_NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{source}: client name {name!r} must be 1-64 characters of [A-Za-z0-9._-]")
        if not isinstance(entry, dict) or set(entry) - {"token_sha256", "scopes"}:
            raise ValueError(f"{source}: client {name!r} must be an object with token_sha256 and scopes only")
        digest = str(entry.get("token_sha256", "")).lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise ValueError(f"{source}: client {name!r} needs token_sha256, 64 hex digits (sha256sum of the token)")
        scopes = entry.get("scopes", [])
        if not isinstance(scopes, list) or not set(scopes) <= SCOPES:
            raise ValueError(f"{source}: client {name!r} scopes must be a list of {sorted(SCOPES)}")
        clients.append(Client(name=name, token_sha256=digest, scopes=frozenset(scopes)))
    digests = [c.token_sha256 for c in clients]
    if len(set(digests)) != len(digests):
        raise ValueError(f"{source}: two clients share a token")
    return clients


def configured_clients(token: str | None, clients_file: str) -> list[Client]:
    """Every client a server accepts: those of `clients_file` plus, for the single shared token, `shared`."""
    clients = []
    if clients_file:
        path = Path(clients_file)
        clients = parse_clients(json.loads(path.read_text(encoding="utf-8")), str(path))
    if token:
        if SHARED_CLIENT in {c.name for c in clients}:
            raise ValueError(f"{clients_file}: the name {SHARED_CLIENT!r} is the single auth token's")
        # Whoever holds the shared token may already act for every user, so it may export their ratings too.
        clients.append(Client(SHARED_CLIENT, token_sha256(token), frozenset({ASSERT_OWNER, EXPORT_FEEDBACK})))
    return clients
