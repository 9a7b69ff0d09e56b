"""Gateway settings (env prefix GATEWAY_), e.g. GATEWAY_PORT, GATEWAY_INFERENCE_TARGET, GATEWAY_INFERENCE_TOKEN."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 in containers.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port of the chat page and its API.")
    inference_target: str = Field("127.0.0.1:50052", description="The inference gRPC service: host:port, or dns:///<headless service>:<port> "
                                  "(calls go round-robin over every replica it resolves to).")
    inference_token: SecretStr | None = Field(
        None, description="Bearer token the inference service requires (its INFERENCE_AUTH_TOKEN), if any."
    )
    request_timeout_s: float = Field(300.0, gt=0, le=3600, description="Deadline of one answer, queueing included.")
    call_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Deadline of the short calls: feedback, model info, the readiness health check."
    )
    max_question_chars: int = Field(
        4000, ge=1, le=100000, description="Longest question accepted (keep it at most the inference service's)."
    )
    max_tokens: int = Field(0, ge=0, le=32768, description="Longest answer in tokens; 0 = the inference default.")
    owner: str = Field(
        "web", min_length=1, max_length=128,
        description="Prefix of the owner of browser sessions when owner_header is unset or absent: each browser is "
        "'<owner>:<its random id>', kept in an HttpOnly cookie the gateway sets.",
    )
    owner_header: str = Field(
        "",
        description="Request header naming the signed-in user, set by an authenticating reverse proxy or the Jenkins "
        "plugin that embeds the page (e.g. X-Forwarded-User); empty = each browser is its own owner (see `owner`). "
        "Only safe when that proxy strips the header from every client request: otherwise anyone can name any user "
        "and read their conversations.",
    )
    frame_ancestors: str = Field(
        "'self'", max_length=2000, pattern=r"^[^;,\r\n]+$",
        description="CSP frame-ancestors: who may embed the chat page in a frame, e.g. \"'self' "
        "https://jenkins.example.com\" for a Jenkins page that shows it in an iframe or side panel; \"'none'\" "
        "forbids embedding. Space-separated sources; no ';' or ','.",
    )
    cookie_secure: bool = Field(
        False, description="Mark the browser id cookie Secure (send it over HTTPS only): set it when served by HTTPS."
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024,
        description="Largest request body accepted; a bigger one gets 413 before any of it is parsed.",
    )
    max_log_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="Largest console log POST /api/explain takes (its body is the log): keep it at the inference "
        "service's BUILD_LOG_MAX_LOG_BYTES, which refuses a longer one. A bigger body gets 413 before it is read; "
        "the page sends the tail of a longer log.",
    )
    grace_s: float = Field(10.0, ge=0, le=300, description="Seconds open answers get on shutdown.")
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("frame_ancestors")
    @classmethod
    def _ascii_sources(cls, value: str) -> str:
        # A header value: anything else would fail when the first response is sent, not at startup.
        if not value.isascii():
            raise ValueError("frame_ancestors must be ASCII (write an international domain name in punycode)")
        return value

    @property
    def token(self) -> str | None:
        return self.inference_token.get_secret_value() if self.inference_token else None
