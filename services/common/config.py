"""Settings shared by every gRPC server, read from environment variables.

Each service subclasses `ServerSettings` with its own prefix (MEMORY_, INFERENCE_, SCRAPER_), so
`MEMORY_PORT=50061` configures the memory service. Settings are objects: tests pass them in
instead of touching os.environ.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from jenkins_assistant.common.clients import Client, configured_clients


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 in containers.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus /metrics HTTP port; 0 disables the endpoint."
    )
    auth_token: SecretStr | None = Field(
        None,
        description="When set, every call except health and reflection needs 'authorization: Bearer <token>'. "
        "One token shared by every client, all trusted to name any owner (client `shared`, scope assert-owner).",
    )
    auth_clients_file: str = Field(
        "",
        description="JSON file of client name -> {token_sha256, scopes}: a credential per client; only clients "
        "with the assert-owner scope may name any owner (see jenkins_assistant.common.auth). Empty = none.",
    )
    grace_s: float = Field(
        10.0, ge=0, le=300, description="Seconds in-flight calls get on shutdown (= terminationGracePeriodSeconds)."
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request accepted; bigger ones get RESOURCE_EXHAUSTED."
    )
    log_level: str = Field("INFO", description="Python logging level.")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def token(self) -> str | None:
        return self.auth_token.get_secret_value() if self.auth_token else None

    def auth_clients(self) -> list[Client]:
        """The credentials calls are checked against; empty = no auth."""
        return configured_clients(self.token, self.auth_clients_file)
