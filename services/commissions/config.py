"""Settings of the commissions service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings
from shared.calendar import ATTRIBUTION_WINDOW_MONTHS
from shared.money import is_currency
from shared.topics import CHECKOUT_REFUNDS, COMMISSIONS_LEDGER, REGISTRATION_ENTITLEMENTS


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(**ServiceSettings.model_config, populate_by_name=True)

    service_name: ClassVar[str] = "commissions"
    port: int = Field(8002, validation_alias="COMMISSIONS_PORT", ge=1, le=65535)
    mongo_db: str = Field("channelkeep_commissions", validation_alias="COMMISSIONS_MONGO_DB")
    hold_days: int = Field(30, ge=0)
    attribution_window_months: int = Field(ATTRIBUTION_WINDOW_MONTHS, ge=1)
    payables_run_hour_utc: int = Field(2, ge=0, le=23, description="daily payables job")
    # Topic names default to the contract's; tests and benchmarks point them at fresh topics.
    entitlements_topic: str = Field(
        REGISTRATION_ENTITLEMENTS, validation_alias="COMMISSIONS_ENTITLEMENTS_TOPIC"
    )
    refunds_topic: str = Field(CHECKOUT_REFUNDS, validation_alias="COMMISSIONS_REFUNDS_TOPIC")
    ledger_topic: str = Field(COMMISSIONS_LEDGER, validation_alias="COMMISSIONS_LEDGER_TOPIC")
    worker_group: str = Field("commissions.worker", validation_alias="COMMISSIONS_WORKER_GROUP")
    worker_processors: int = Field(
        1,
        ge=1,
        le=16,
        validation_alias="COMMISSIONS_WORKER_PROCESSORS",
        description="consume loops per worker process (same group, partitions shared out):"
        " one's CPU work overlaps another's database wait",
    )
    producer_batch_bytes: int = Field(
        256 * 1024,
        ge=16 * 1024,
        le=900 * 1024,
        validation_alias="COMMISSIONS_PRODUCER_BATCH_BYTES",
        description="largest record batch per ledger partition: a consumed batch's thousands"
        " of ledger events go out in a few produce requests instead of one per 16 KiB",
    )
    batches_in_flight: int = Field(
        2,
        ge=1,
        le=4,
        validation_alias="COMMISSIONS_BATCHES_IN_FLIGHT",
        description="batches a consume loop handles at once (their Kafka transactions still"
        " commit one at a time, in order): one's CPU work overlaps another's database write",
    )
    relay_interval_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the outbox relay looks for transitions"
    )
    outbox_relay_id: str = Field(
        "commissions.outbox-relay",
        validation_alias="COMMISSIONS_OUTBOX_RELAY_ID",
        description="transactional id and checkpoint group of the outbox relay (one per ledger)",
    )
    partner_key_cache_seconds: float = Field(
        30.0,
        ge=0,
        le=60,
        description="how long a partner key's introspection is trusted: the bound on revocation"
        " (CONTRACT 6.7: within 60 s)",
    )
    min_payout_minor: dict[str, int] = Field(
        default_factory=lambda: {"EUR": 5000, "USD": 5000, "GBP": 5000, "JPY": 500},
        description="CONTRACT 6.5: JSON object of currency -> minor units; a statement whose"
        " payable total in a currency is below it is not paid (other currencies: 0)",
    )

    @field_validator("min_payout_minor")
    @classmethod
    def _check_min_payout(cls, value: dict[str, int]) -> dict[str, int]:
        for currency, minimum in value.items():
            if not is_currency(currency):
                raise ValueError(f"MIN_PAYOUT_MINOR: {currency!r} is not an ISO 4217 code")
            if isinstance(minimum, bool) or not 0 <= minimum <= 10**15:
                raise ValueError(f"MIN_PAYOUT_MINOR: {currency} must be 0 ... 10^15 minor units")
        return value
