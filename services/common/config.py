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
    # A client balances over the addresses it resolved when it connected; closing connections now and then makes
    # long-lived clients (the gateway, the Jenkins plugin) resolve again and spread onto pods added since.
    max_connection_age_s: float = Field(
        0, ge=0, le=86400,
        description="Close each client connection after about this long (GOAWAY, gRPC adds +-10% jitter) so "
        "clients re-resolve and re-balance over the replicas; in-flight calls go on. 0 = never (gRPC's default).",
    )
    max_connection_age_grace_s: float = Field(
        0, ge=0, le=86400,
        description="How long calls in flight on a connection past its age may go on before it is closed; "
        "0 = as long as they take.",
    )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def token(self) -> str | None:
        return self.auth_token.get_secret_value() if self.auth_token else None

    def connection_age_options(self) -> list[tuple[str, int]]:
        """gRPC server options for max_connection_age_s and its grace (none when unset: gRPC's defaults)."""
        options = []
        if self.max_connection_age_s:
            options.append(("grpc.max_connection_age_ms", int(self.max_connection_age_s * 1000)))
        if self.max_connection_age_grace_s:
            options.append(("grpc.max_connection_age_grace_ms", int(self.max_connection_age_grace_s * 1000)))
        return options

    def auth_clients(self) -> list[Client]:
        """The credentials calls are checked against; empty = no auth."""
        return configured_clients(self.token, self.auth_clients_file)
