"""Explanations of build failures kept in Redis, keyed by the failure's fingerprint, for a configurable TTL.

The same failure in the next build (other build number, commit, temp paths: `build_log.fingerprint`) gets the
explanation generated the first time, at once and without a model call. Only what the masked facts produced is
stored (text, sources), never the log. The cache is an optimisation, never a dependency: a Redis that is down,
slow or holding something unreadable is a miss (logged and counted), and the explanation is generated as usual.
No gRPC here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.inference import metrics
from jenkins_assistant.inference.config import ExplanationCacheSettings

log = logging.getLogger(__name__)

# In every key: bumped when what is stored (or the prompt shape the text follows) changes, so old entries are
# ignored instead of misread.
FORMAT_VERSION = "v1"


@dataclass
class CachedExplanation:
    text: str
    sources: list[SourceRef] = field(default_factory=list)
    model: str = ""
    explained_at: float = 0.0  # unix seconds
    completion_tokens: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> CachedExplanation:
        data = json.loads(raw)
        return cls(text=str(data["text"]), sources=[SourceRef(**s) for s in data.get("sources", [])],
                   model=str(data.get("model", "")), explained_at=float(data.get("explained_at", 0.0)),
                   completion_tokens=int(data.get("completion_tokens", 0)))


class ExplanationCache:
    """Create it on the event loop (redis.asyncio binds its connections to it); `await close()` at the end."""

    def __init__(self, settings: ExplanationCacheSettings, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or aioredis.Redis.from_url(
            settings.redis_url,
            password=settings.redis_password.get_secret_value() if settings.redis_password else None,
            socket_connect_timeout=settings.timeout_s,
            socket_timeout=settings.timeout_s,
            health_check_interval=30,
        )

    @classmethod
    def from_settings(cls, settings: ExplanationCacheSettings) -> ExplanationCache | None:
        """The cache, or None when no Redis is configured (cache off)."""
        return cls(settings) if settings.redis_url else None

    def key(self, fingerprint: str, model: str, with_retrieval: bool, context: str = "") -> str:
        """One entry per failure and model (another model explains differently), apart for answers given
        without documentation (they have no sources to cite) and per controller context digest (its plugins
        re-rank the passages)."""
        model_id = hashlib.sha256(model.encode()).hexdigest()[:12]
        scope = f"{'rag' if with_retrieval else 'bare'}{'-' + context if context else ''}"
        return f"{self.settings.key_prefix}:{FORMAT_VERSION}:{model_id}:{scope}:{fingerprint}"

    async def get(self, key: str) -> CachedExplanation | None:
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            metrics.EXPLANATION_CACHE.labels("error").inc()
            log.warning("explanation cache read failed (generating instead): %s", exc)
            return None
        if raw is None:
            metrics.EXPLANATION_CACHE.labels("miss").inc()
            return None
        try:
            entry = CachedExplanation.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            metrics.EXPLANATION_CACHE.labels("error").inc()
            log.warning("unreadable explanation cache entry %s (generating instead): %s", key, exc)
            return None
        metrics.EXPLANATION_CACHE.labels("hit").inc()
        return entry

    async def put(self, key: str, entry: CachedExplanation) -> bool:
        """Stores `entry` for ttl_s; False (logged) when Redis did not take it."""
        entry.explained_at = entry.explained_at or time.time()
        try:
            await self.redis.set(key, entry.to_json(), ex=self.settings.ttl_s)
        except (RedisError, OSError) as exc:
            metrics.EXPLANATION_CACHE.labels("error").inc()
            log.warning("explanation cache write failed: %s", exc)
            return False
        metrics.EXPLANATION_CACHE.labels("stored").inc()
        return True

    async def close(self) -> None:
        await self.redis.aclose()
