"""Conversation history on Redis: the memory service's core (no gRPC here).

Layout: one Redis list per (owner, session), one JSON-encoded exchange per element, newest last.
The key embeds the owner, so another owner's lookup of the same session id finds nothing and gets
NotFound: isolation without a second lookup, and nothing to leak. A Lua script appends, trims to
the cap and refreshes the TTL in one atomic step: a turn is stored whole or not at all.

Finished answers (for feedback and dataset export) are one hash each, `<prefix>-answer:<answer id>` (the dash keeps
them apart from session keys, which follow `<prefix>:`): owner, session_id, the record's JSON and, once rated, the
feedback's JSON. An answer expires after answer_ttl_s unless rated; rating it (a Lua script: check the owner and
session, set the feedback, extend to rated_answer_ttl_s or, with 0, drop the expiry, index it) happens in one step. `<prefix>-rated` is a sorted
set of the rated answer ids, all of score 0 so that it pages in id order (ZRANGEBYLEX); an id whose answer expired
is dropped from it when a listing meets it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jenkins_assistant.common.errors import InvalidInput, NotFound, Unavailable
from jenkins_assistant.common.records import RATINGS, AnswerFeedback, AnswerRecord, SourceRef
from jenkins_assistant.memory.config import MemorySettings

log = logging.getLogger(__name__)

REDIS_ERRORS = Counter(
    "jenkins_assistant_memory_redis_errors_total", "Redis calls that failed, by operation.", ["operation"]
)

RATINGS_STORED = Counter(
    "jenkins_assistant_memory_answer_ratings_total", "Ratings stored (each new rating of an answer counts).", ["rating"]
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


# KEYS[1] = answer hash; ARGV = owner, session id, record JSON, ttl seconds. 1 = stored, 0 = already there (untouched:
# a retried record must not wipe a rating given meanwhile).
RECORD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'session_id', ARGV[2], 'record', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""
# KEYS[1] = answer hash, KEYS[2] = rated index; ARGV = owner, session id, feedback JSON, ttl seconds (0 = no expiry),
# answer id.
# Returns the record JSON, or nil when there is no such answer for this owner and session.
RATE_SCRIPT = """
local found = redis.call('HMGET', KEYS[1], 'owner', 'session_id', 'record')
if not found[3] or found[1] ~= ARGV[1] or found[2] ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], 'feedback', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4])) else redis.call('PERSIST', KEYS[1]) end
redis.call('ZADD', KEYS[2], 0, ARGV[5])
return found[3]
"""
ANSWER_ID_PATTERN = SESSION_ID_PATTERN
ANSWER_KINDS = ("chat", "explain")
MAX_LABEL_CHARS = 256  # model name, quant, corpus hash
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


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


def _check_answer_id(answer_id: str) -> None:
    if not ANSWER_ID_PATTERN.fullmatch(answer_id or ""):
        raise InvalidInput("answer_id must be 1-128 characters of [A-Za-z0-9._-]")


def _check_optional_session(session_id: str) -> None:
    if session_id:
        _check_session_id(session_id)


def _check_optional_owner(owner: str) -> None:
    if len(owner) > MAX_OWNER_CHARS or not owner.isprintable():
        raise InvalidInput(f"owner must be at most {MAX_OWNER_CHARS} printable characters")


def _check_timestamps(earlier: float, later: float) -> None:
    if earlier < 0 or later < 0:
        raise InvalidInput("timestamps must not be negative")
    latest = time.time() + MAX_CLOCK_SKEW_S
    if earlier > latest or later > latest:
        raise InvalidInput(f"timestamps must not be more than {MAX_CLOCK_SKEW_S} s in the future")
    if earlier and later and later < earlier:
        raise InvalidInput("answered_at is before asked_at")


def _json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


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
        self._record = self.redis.register_script(RECORD_SCRIPT)
        self._rate = self.redis.register_script(RATE_SCRIPT)

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

    # ------------------------------------------------------------------ answers and feedback
    def answer_key(self, answer_id: str) -> str:
        return f"{self.settings.key_prefix}-answer:{answer_id}"

    @property
    def rated_key(self) -> str:
        return f"{self.settings.key_prefix}-rated"

    def validate_answer(self, record: AnswerRecord) -> AnswerRecord:
        _check_answer_id(record.answer_id)
        _check_optional_session(record.session_id)
        _check_optional_owner(record.owner)
        if record.session_id and not record.owner:
            raise InvalidInput("an answer given in a session needs its owner")
        if record.kind not in ANSWER_KINDS:
            raise InvalidInput(f"kind must be one of {ANSWER_KINDS}")
        limit = self.settings.max_text_chars
        _check_text("question", record.question, limit, required=False)
        _check_text("standalone_question", record.standalone_question, limit, required=False)
        _check_text("answer_text", record.answer_text, limit, required=False)
        if len(record.source_urls) > self.settings.max_sources:
            raise InvalidInput(f"{len(record.source_urls)} source urls; the limit is {self.settings.max_sources}")
        if any(not url or len(url) > MAX_URL_CHARS for url in record.source_urls):
            raise InvalidInput(f"each source url must be 1-{MAX_URL_CHARS} characters")
        for name in ("model", "model_quant", "corpus_sha256"):
            value = getattr(record, name)
            if len(value) > MAX_LABEL_CHARS or not value.isprintable():
                raise InvalidInput(f"{name} must be at most {MAX_LABEL_CHARS} printable characters")
        if any(not math.isfinite(v) or v < 0 for v in record.usage.values()):
            raise InvalidInput("usage figures must be non-negative numbers")
        _check_timestamps(record.asked_at, record.answered_at)
        now = time.time()
        return dataclasses.replace(record, asked_at=record.asked_at or now, answered_at=record.answered_at or now)

    async def record_answer(self, record: AnswerRecord) -> tuple[bool, int]:
        """Keeps a finished answer for rating; (whether it was new, seconds it is kept unless rated)."""
        stored = self.validate_answer(record)
        data = asdict(stored)
        del data["owner"], data["session_id"]  # kept as fields of their own, which rating checks
        try:
            created = await self._record(keys=[self.answer_key(stored.answer_id)],
                                         args=[stored.owner, stored.session_id, _json(data), self.settings.answer_ttl_s])
        except RedisError as exc:
            raise self._unavailable("record_answer", exc) from exc
        return bool(created), self.settings.answer_ttl_s

    async def rate_answer(self, answer_id: str, session_id: str, owner: str,
                          feedback: AnswerFeedback) -> tuple[str, int]:
        """The owner's rating of an answer it was given (the last one wins); (the answer's model, seconds it is kept).
        NotFound for an unknown or expired answer, or one given to another owner or in another session: the same
        error for all, so that nobody learns which answer ids exist."""
        _check_answer_id(answer_id)
        _check_optional_session(session_id)
        _check_optional_owner(owner)
        if feedback.rating not in RATINGS:
            raise InvalidInput(f"rating must be one of {RATINGS}")
        _check_text("comment", feedback.comment, self.settings.max_comment_chars, required=False)
        _check_text("corrected_answer", feedback.corrected_answer, self.settings.max_text_chars, required=False)
        stored = dataclasses.replace(feedback, rated_at=time.time())
        try:
            raw = await self._rate(keys=[self.answer_key(answer_id), self.rated_key],
                                   args=[owner, session_id, _json(asdict(stored)), self.settings.rated_answer_ttl_s,
                                         answer_id])
        except RedisError as exc:
            raise self._unavailable("rate_answer", exc) from exc
        if raw is None:
            raise NotFound(f"no answer {answer_id!r} for this owner in this session (unknown, expired or another's)")
        RATINGS_STORED.labels(feedback.rating).inc()
        return str(json.loads(raw).get("model", "")), self.settings.rated_answer_ttl_s

    async def list_rated(self, page_size: int = 0, page_token: str = "") -> tuple[list[tuple[AnswerRecord,
                                                                                           AnswerFeedback]], str]:
        """Rated answers still kept, in answer id order, without owner or session; and the next page's token ("" at
        the end). The token is the last answer id seen, so a rating given meanwhile never shifts a page."""
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page_size must be 0 (default {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}")
        if page_token:
            _check_answer_id(page_token)
        size = page_size or DEFAULT_PAGE_SIZE
        start = f"({page_token}" if page_token else "-"
        try:
            ids = [i.decode() if isinstance(i, bytes) else i
                   for i in await self.redis.zrangebylex(self.rated_key, start, "+", start=0, num=size)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for answer_id in ids:
                    pipe.hmget(self.answer_key(answer_id), "record", "feedback")
                found = await pipe.execute() if ids else []
            expired = [answer_id for answer_id, (record, _) in zip(ids, found, strict=True) if record is None]
            if expired:
                await self.redis.zrem(self.rated_key, *expired)
        except RedisError as exc:
            raise self._unavailable("list_rated", exc) from exc
        rated = []
        for answer_id, (record, feedback) in zip(ids, found, strict=True):
            if record is None or feedback is None:
                continue
            data = json.loads(record)
            known = {f.name for f in dataclasses.fields(AnswerRecord)}
            answer = AnswerRecord(**{k: v for k, v in data.items() if k in known and k not in ("owner", "session_id")})
            answer.answer_id = answer_id
            rated.append((answer, AnswerFeedback(**json.loads(feedback))))
        return rated, (ids[-1] if len(ids) == size else "")

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self.redis.aclose()
