"""Settings every service shares, read from the environment (CONTRACT section 5)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chassis.clients import Network, parse_networks

EMBEDDED_KAFKA = "127.0.0.1:19092"
EMBEDDED_MONGO = "mongodb://127.0.0.1:27117/?directConnection=true"


class ServiceSettings(BaseSettings):
    """Base for each service's Settings. Field names map to upper-case env vars."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["dev", "production"] = Field(
        "production", description="dev relaxes webhook targets and cookie flags"
    )
    kafka_bootstrap: str = Field(EMBEDDED_KAFKA, description="Kafka bootstrap servers")
    mongo_url: SecretStr = Field(SecretStr(EMBEDDED_MONGO), description="MongoDB URI")
    admin_token: SecretStr = Field(..., description="operator token for /v1/admin/*")
    topic_partitions: int = Field(6, ge=1, le=256, description="partitions of topics we create")
    topic_replication_factor: int = Field(1, ge=1, le=5)
    http_host: str = Field("127.0.0.1", description="address the API binds")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="largest accepted request body")
    http_keep_alive_seconds: int = Field(
        75,
        ge=1,
        le=3600,
        description="how long the API keeps an idle connection open; longer than any client's"
        " or load balancer's own idle limit (httpx 5 s, typical balancers 60 s), so a client"
        " never sends a request on a connection the server is closing at that moment",
    )
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = Field(
        (),
        description="proxies whose X-Forwarded-For names the client for rate limits: IPs or"
        " CIDRs, comma-separated (CONTRACT 6.9); default none, the peer is the client",
    )
    registration_url: str = Field(
        "http://127.0.0.1:8001", description="registration API, for partner key introspection"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    consumer_batch_max: int = Field(500, ge=1, le=10_000, description="records per poll")
    consumer_empty_fetch_backoff_ms: int = Field(
        50,
        ge=0,
        le=5000,
        description="after a fetch that brought nothing, wait this long before the next (0:"
        " not at all); a broker that does not hold empty fetches is not asked in a tight loop",
    )
    worker_heartbeat_seconds: float = Field(2.0, gt=0, le=60)
    worker_instance_id: str = Field(
        "", description="stable id of this worker (transactional id); default host-pid"
    )
    worker_heartbeat_file: str = Field(
        "", description="file a worker touches on each heartbeat (container liveness probe)"
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_networks(value.split(","))
        if isinstance(value, list | tuple):
            return parse_networks(str(v) for v in value)
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_not_blank(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 12:
            raise ValueError("ADMIN_TOKEN must be at least 12 characters")
        return value

    # Each service sets its name and declares `port` under its own variable.
    service_name: ClassVar[str] = "service"
    port: int = 8000
    mongo_db: str = "channelkeep"
