"""Conversation history on Redis: the memory service's core (no gRPC here).

Layout: one Redis list per (owner, session), one JSON-encoded exchange per element, newest last.
The key embeds the owner, so another owner's lookup of the same session id finds nothing and gets
NotFound: isolation without a second lookup, and nothing to leak. A Lua script appends, trims to
the cap and refreshes the TTL in one atomic step: a turn is stored whole or not at all.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jenkins_assistant.common.errors import InvalidInput, NotFound, Unavailable
from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.memory.config import MemorySettings

log = logging.getLogger(__name__)

REDIS_ERRORS = Counter(
    "jenkins_assistant_memory_redis_errors_total", "Redis calls that failed, by operation.", ["operation"]
)

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_OWNER_CHARS = 256
MAX_URL_CHARS = 2048
# Clients' clocks may run a little ahead of ours; beyond this a timestamp is refused.
MAX_CLOCK_SKEW_S = 86_400
MAX_TITLE_CHARS = 512
MAX_SNIPPET_CHARS = 4000

# KEYS[1] = session list; ARGV = turn JSON, cap, ttl seconds. Returns the list length after the write.
APPEND_SCRIPT = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return redis.call('LLEN', KEYS[1])
"""


@dataclass
class Turn:
    """One exchange: the user's question and the assistant's answer."""

    user_text: str
    assistant_text: str
    sources: list[SourceRef] = field(default_factory=list)
    asked_at: float = 0.0  # Unix seconds; 0 = unknown, filled with the write time
    answered_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Turn:
        data = json.loads(raw)
        data["sources"] = [SourceRef(**s) for s in data.get("sources", [])]
        return cls(**data)


def _check_session_id(session_id: str) -> None:
    if not SESSION_ID_PATTERN.fullmatch(session_id or ""):
        raise InvalidInput("session_id must be 1-128 characters of [A-Za-z0-9._-]")


def _check_owner(owner: str) -> None:
    if not owner or len(owner) > MAX_OWNER_CHARS or not owner.isprintable():
        raise InvalidInput(f"owner must be 1-{MAX_OWNER_CHARS} printable characters")


def _check_text(name: str, text: str, limit: int, *, required: bool) -> None:
    if required and not text.strip():
        raise InvalidInput(f"{name} is empty")
    if len(text) > limit:
        raise InvalidInput(f"{name} has {len(text)} characters; the limit is {limit}")
    if "\x00" in text:
        raise InvalidInput(f"{name} contains a NUL character")


def session_key(prefix: str, owner: str, session_id: str) -> str:
    # Session ids cannot contain ':', so the owner (anything printable) is unambiguous after it.
    return f"{prefix}:{session_id}:{owner}"


class MemoryStore:
    def __init__(self, settings: MemorySettings, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or aioredis.Redis.from_url(
            settings.redis_url,
            password=settings.redis_password.get_secret_value() if settings.redis_password else None,
            socket_connect_timeout=settings.redis_timeout_s,
            socket_timeout=settings.redis_timeout_s,
            health_check_interval=30,
        )
        self._append = self.redis.register_script(APPEND_SCRIPT)

    def key(self, owner: str, session_id: str) -> str:
        return session_key(self.settings.key_prefix, owner, session_id)

    def validate_turn(self, turn: Turn) -> Turn:
        limit = self.settings.max_text_chars
        _check_text("user_text", turn.user_text, limit, required=True)
        _check_text("assistant_text", turn.assistant_text, limit, required=False)
        if len(turn.sources) > self.settings.max_sources:
            raise InvalidInput(f"{len(turn.sources)} sources; the limit is {self.settings.max_sources}")
        for source in turn.sources:
            if not source.url or len(source.url) > MAX_URL_CHARS:
                raise InvalidInput(f"source url must be 1-{MAX_URL_CHARS} characters")
            if (len(source.title) > MAX_TITLE_CHARS or len(source.section) > MAX_TITLE_CHARS
                    or len(source.snippet) > MAX_SNIPPET_CHARS or len(source.passage) > limit):
                raise InvalidInput("source title, section, snippet or passage too long")
        if turn.asked_at < 0 or turn.answered_at < 0:
            raise InvalidInput("timestamps must not be negative")
        latest = time.time() + MAX_CLOCK_SKEW_S
        if turn.asked_at > latest or turn.answered_at > latest:
            # A far-future time (e.g. 253402300800 s) was stored once and made every later read of the session fail.
            raise InvalidInput(f"timestamps must not be more than {MAX_CLOCK_SKEW_S} s in the future")
        if turn.asked_at and turn.answered_at and turn.answered_at < turn.asked_at:
            raise InvalidInput("answered_at is before asked_at")
        now = time.time()
        return Turn(
            user_text=turn.user_text,
            assistant_text=turn.assistant_text,
            sources=list(turn.sources),
            asked_at=turn.asked_at or now,
            answered_at=turn.answered_at or now,
        )

    def _unavailable(self, operation: str, exc: RedisError) -> Unavailable:
        REDIS_ERRORS.labels(operation).inc()
        log.warning("redis %s failed: %s", operation, exc)
        if isinstance(exc, RedisTimeoutError):
            reason = "timed out"
        elif isinstance(exc, RedisConnectionError):
            reason = "unreachable"
        else:
            reason = f"error ({type(exc).__name__})"
        return Unavailable(f"conversation store (Redis) {reason}: {exc}; retry shortly")

    async def append_turn(self, owner: str, session_id: str, turn: Turn) -> tuple[int, int]:
        """Store one exchange; returns (exchanges stored, TTL seconds)."""
        _check_session_id(session_id)
        _check_owner(owner)
        stored = self.validate_turn(turn)
        try:
            length = await self._append(
                keys=[self.key(owner, session_id)],
                args=[stored.to_json(), self.settings.max_turns, self.settings.ttl_s],
            )
        except RedisError as exc:
            raise self._unavailable("append", exc) from exc
        return int(length), self.settings.ttl_s

    async def get_history(self, owner: str, session_id: str, k: int = 0) -> tuple[list[Turn], int]:
        """The last k exchanges, oldest first, and the number stored."""
        _check_session_id(session_id)
        _check_owner(owner)
        if k < 0:
            raise InvalidInput("k must not be negative")
        if k > self.settings.max_turns:
            raise InvalidInput(f"k={k} exceeds the stored cap of {self.settings.max_turns} exchanges")
        k = k or self.settings.default_k
        key = self.key(owner, session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lrange(key, -k, -1)
                pipe.llen(key)
                raw_turns, length = await pipe.execute()
        except RedisError as exc:
            raise self._unavailable("get", exc) from exc
        if not length:
            raise NotFound(f"no session {session_id!r} for this owner")
        return [Turn.from_json(raw) for raw in raw_turns], int(length)

    async def clear(self, owner: str, session_id: str) -> int:
        """Delete a session; returns the exchanges deleted."""
        _check_session_id(session_id)
        _check_owner(owner)
        key = self.key(owner, session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.llen(key)
                pipe.delete(key)
                length, _ = await pipe.execute()
        except RedisError as exc:
            raise self._unavailable("clear", exc) from exc
        if not length:
            raise NotFound(f"no session {session_id!r} for this owner")
        return int(length)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self.redis.aclose()
