"""Settings every service shares, read from the environment (CONTRACT section 5)."""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        "",
        description="file a worker touches while its consume loops make progress (container"
        " liveness probe); MongoDB being down does not stop the touching",
    )
    # Above the longest a healthy handler waits on MongoDB: with the database down,
    # pymongo's `with_transaction` keeps retrying a transient error for up to 120 s
    # (5 s of server selection each time) before the handler fails and the loop goes on.
    worker_loop_stall_seconds: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="a consume loop that has not come round (a poll returned) for this long"
        " counts as hung: the liveness file is no longer touched",
    )

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


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load(settings_class: type[SettingsT]) -> SettingsT:
    """The settings from the environment, or exit with one line naming what is wrong.

    A process refused for its configuration says which variable to set, not a traceback
    (the messages name variables only; values, secrets among them, are never shown).
    """
    try:
        return settings_class()
    except ValidationError as error:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in error.errors())
        raise SystemExit(f"{settings_class.service_name}: refusing to start: {problems}") from None


def _problem(location: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    variable = ".".join(str(part) for part in location).upper()
    return f"{variable}: {message}" if variable else message
