"""Settings every service shares, read from the environment (CONTRACT section 5)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
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
        "", description="file a worker touches on each heartbeat (container liveness probe)"
    )
    kafka_transaction_timeout_ms: int = Field(
        60_000,
        ge=1_000,
        le=900_000,
        description="transaction.timeout.ms of every transactional producer: Kafka aborts a"
        " transaction its producer left open (killed mid-batch, never restarted) after this"
        " long, so a read_committed reader waits at most this long for it (KIP-98). Longer"
        " than any one transaction (a batch's produce and commit, seconds); at most the"
        " broker's transaction.max.timeout.ms (15 minutes by default)",
    )
    kafka_clip_aborted_transactions: bool = Field(
        False,
        description="embedded-broker workaround, off in production (./dev up and the tests"
        " turn it on): read_committed consumers ignore the aborted transactions a fetch"
        " response lists that start before the fetched range. noida-db 0.2.3 lists every"
        " aborted transaction of the partition in every fetch response and gives a restarted"
        " transactional id its old producer id, so without it a consumer that keeps up skips"
        " that producer's committed records as aborted (see chassis.kafka)",
    )
    lso_stuck_after_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="an output partition whose last stable offset trails its high watermark"
        " without moving for longer than this is flagged stuck (gauge lso_stuck): its"
        " read_committed readers see nothing new. A healthy transaction holds the LSO for one"
        " batch commit (under a second); a dead producer's, until fencing or the timeout",
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
