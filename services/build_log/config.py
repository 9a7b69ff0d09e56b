"""Build-log extraction settings (environment variables prefixed BUILD_LOG_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BuildLogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUILD_LOG_", extra="ignore")

    max_log_bytes: int = Field(
        5 * 1024 * 1024, ge=1, description="Largest console log read; a longer one is cut to its tail."
    )
    max_line_chars: int = Field(2000, ge=80, description="Longer lines are clipped in facts and the excerpt.")
    context_before_lines: int = Field(10, ge=0, le=200, description="Excerpt lines kept before the first error.")
    context_after_lines: int = Field(20, ge=0, le=400, description="Excerpt lines kept after the first error.")
    tail_lines: int = Field(30, ge=1, le=400, description="Excerpt lines kept at the end of the log.")
    lines_before_end: int = Field(
        20, ge=1, le=200, description="Lines before `Finished: ...` (or the end) reported as facts."
    )
    max_excerpt_chars: int = Field(24_000, ge=1000, description="Upper bound of the excerpt handed to the model.")
