"""Memory service settings (environment variables prefixed MEMORY_; REDIS_URL is also accepted).

Redis is one endpoint: redis://, rediss:// (TLS; ?ssl_ca_certs=<file> for a private CA) or unix://. Sentinel
discovery is not supported: for high availability, use an endpoint that follows failover.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from jenkins_assistant.common.config import ServerSettings


class MemorySettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="MEMORY_", extra="ignore", populate_by_name=True)

    port: int = Field(50061, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("MEMORY_REDIS_URL", "REDIS_URL", "redis_url"),
        description="Redis holding the histories (MEMORY_REDIS_URL or REDIS_URL).",
    )
    redis_password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("MEMORY_REDIS_PASSWORD", "REDIS_PASSWORD", "redis_password"),
        description="Redis password, kept out of the URL (it may hold any character; the chart reads it from a "
        "Secret). A password in redis_url wins.",
    )
    key_prefix: str = Field("jenkins-assistant:memory", min_length=1, description="Namespace of the Redis keys.")
    default_k: int = Field(5, ge=1, le=1000, description="Exchanges GetHistory returns when the request says 0.")
    max_turns: int = Field(50, ge=1, le=10_000, description="Exchanges kept per session; older ones are dropped.")
    ttl_s: int = Field(24 * 3600, ge=1, description="Seconds a session lives after its last write.")
    max_text_chars: int = Field(32_000, ge=1, description="Longest user or assistant text accepted.")
    max_sources: int = Field(20, ge=0, description="Most sources stored with one answer.")
    answer_ttl_s: int = Field(
        7 * 86400, ge=60,
        description="Seconds a finished answer is kept for rating (answer id, question, answer, sources, model); "
        "an unrated answer is gone after it and rating it gets NOT_FOUND.",
    )
    rated_answer_ttl_s: int = Field(
        365 * 86400, ge=0,
        description="Seconds a rated answer is kept, from its last rating (the training data of dataset export); "
        "0 = no expiry. A Redis whose maxmemory-policy is volatile-* may evict keys with an expiry under memory "
        "pressure (the chart's and compose's Redis: volatile-lru), so 0 also keeps rated answers out of eviction.",
    )
    max_comment_chars: int = Field(2000, ge=0, le=100_000, description="Longest feedback comment accepted.")
    redis_timeout_s: float = Field(2.0, gt=0, description="Socket connect/read timeout towards Redis.")
    redis_check_interval_s: float = Field(
        1.0, gt=0, description="How often health re-checks Redis (NOT_SERVING while it is down)."
    )

    @model_validator(mode="after")
    def _window_fits_cap(self) -> MemorySettings:
        if self.default_k > self.max_turns:
            raise ValueError(f"default_k ({self.default_k}) exceeds max_turns ({self.max_turns})")
        if 0 < self.rated_answer_ttl_s < self.answer_ttl_s:
            # Rating an answer must never shorten how long it is kept.
            raise ValueError(f"rated_answer_ttl_s ({self.rated_answer_ttl_s}) is below answer_ttl_s "
                             f"({self.answer_ttl_s})")
        return self
