"""Settings every service shares, read from the environment (CONTRACT section 5)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chassis.clients import Network, parse_networks

# Where `./dev up` runs the embedded broker and database: the defaults in `dev` only.
EMBEDDED_KAFKA = "127.0.0.1:19092"
EMBEDDED_MONGO = "mongodb://127.0.0.1:27117/?directConnection=true"


class ServiceSettings(BaseSettings):
    """Base for each service's Settings. Field names map to upper-case env vars."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["dev", "production"] = Field(
        "production", description="dev relaxes webhook targets and cookie flags"
    )
    # No production default: a service that silently looked for the dev servers on
    # loopback would start, fail its readiness and never say why.
    kafka_bootstrap: str = Field(
        "",
        validate_default=True,
        description="Kafka bootstrap servers; required in production (dev: the embedded broker)",
    )
    mongo_url: SecretStr = Field(
        SecretStr(""),
        validate_default=True,
        description="MongoDB URI; required in production (dev: the embedded database)",
    )
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
    # Dev-only workaround, off by default. Defect: the embedded broker (noida-db) answers
    # an empty fetch at once instead of holding it for fetch.max.wait.ms, so an idle
    # consumer asks again in a tight loop (~50% of a core). The fix patches a private
    # aiokafka method (chassis.fetch_throttle.throttle_empty_fetches); a real Kafka needs none.
    # `./dev up`, the demo, the benchmarks and the tests set it (devkit.embedded.DEV_TUNING).
    consumer_empty_fetch_backoff_ms: int = Field(
        0,
        ge=0,
        le=5000,
        description="after a fetch that brought nothing, wait this long before the next (0:"
        " not at all, the default); only for a broker that does not hold empty fetches",
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

    # The portal reaches neither the broker nor a database: it needs neither setting.
    uses_broker_and_database: ClassVar[bool] = True

    @field_validator("kafka_bootstrap")
    @classmethod
    def _kafka_bootstrap_explicit(cls, value: str, info: ValidationInfo) -> str:
        return value or cls._dev_default(info, "KAFKA_BOOTSTRAP", EMBEDDED_KAFKA, "host:9092")

    @field_validator("mongo_url")
    @classmethod
    def _mongo_url_explicit(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if value.get_secret_value():
            return value
        return SecretStr(
            cls._dev_default(info, "MONGO_URL", EMBEDDED_MONGO, "mongodb://host/?replicaSet=rs0")
        )

    @classmethod
    def _dev_default(cls, info: ValidationInfo, variable: str, embedded: str, example: str) -> str:
        if info.data.get("environment") == "dev" or not cls.uses_broker_and_database:
            return embedded
        raise ValueError(
            f"{variable} is not set; production needs it explicitly (e.g. {example}),"
            " only ENVIRONMENT=dev defaults to the embedded dev server"
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


S = TypeVar("S", bound=ServiceSettings)


def env_variable(settings_cls: type[BaseSettings], name: str) -> str:
    """The environment variable behind a field (its alias when it has one)."""
    field = settings_cls.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    return (alias if isinstance(alias, str) else name).upper()


def startup_errors(settings_cls: type[BaseSettings], error: ValidationError) -> Iterator[str]:
    """One line per setting that failed, each naming its environment variable."""
    for problem in error.errors(include_url=False, include_input=False):
        variable = env_variable(settings_cls, str(problem["loc"][0])) if problem["loc"] else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "missing":
            message = f"{variable} is not set"
        elif variable and variable not in message:
            message = f"{variable}: {message}"
        yield message


def load_settings(settings_cls: type[S]) -> S:
    """A process's settings from the environment, or one line per problem and exit 2.

    What an operator sees when a variable is missing or wrong, instead of a
    pydantic traceback: `registration: cannot start: KAFKA_BOOTSTRAP is not set; ...`.
    """
    try:
        return settings_cls()
    except ValidationError as error:
        for line in startup_errors(settings_cls, error):
            print(f"{settings_cls.service_name}: cannot start: {line}", file=sys.stderr)
        raise SystemExit(2) from None
