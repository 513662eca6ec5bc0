"""Settings of the registration service."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from chassis.settings import ServiceSettings
from shared.calendar import ATTRIBUTION_WINDOW_MONTHS


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "registration"
    port: int = Field(8001, validation_alias="REGISTRATION_PORT", ge=1, le=65535)
    mongo_db: str = Field("channelkeep_registration", validation_alias="REGISTRATION_MONGO_DB")
    seller_code_lookups_per_minute: int = Field(30, ge=1)
    # POST /v1/registrations, per client, like the seller-code lookup (CONTRACT 6.9).
    registrations_per_minute: int = Field(30, ge=1)
    late_seller_code_days: int = Field(90, ge=0)
    # Customer self-service (CONTRACT 6.2): sign-in link and session lifetimes, and the
    # sign-in requests a client (IP) and an address may make.
    sign_in_token_minutes: int = Field(15, ge=1, le=24 * 60)
    customer_session_hours: int = Field(12, ge=1, le=24 * 30)
    customer_sign_ins_per_minute: int = Field(10, ge=1)
    customer_sign_ins_per_address_per_hour: int = Field(5, ge=1)
    attribution_window_months: int = Field(ATTRIBUTION_WINDOW_MONTHS, ge=1)
    # CONTRACT 6.3: how long an approved deal protects (partner, customer, product).
    deal_protection_days: int = Field(90, ge=1, le=3650)
    # Products a deal may name besides those checkout has sold (any entitlement's);
    # comma-separated. Default: the vendor's catalogue as the simulator sells it.
    products: str = Field("secure-pro,secure-team,backup-plus,vault-enterprise")
    # The API's deal-expiry scheduler: how often it runs the pass as of now (one API
    # replica at a time, a lease); 0 turns it off.
    deal_expiry_interval_seconds: float = Field(3600.0, ge=0)
    # Units of work of one API process using the database at once, and how long a
    # request may queue for a place before it answers 503 (service_layer/admission.py).
    # 64 leaves room in PyMongo's pool of 100. The embedded database (SecantusDB) runs a
    # thread per connection and serves them unfairly, so its runs set 8, the concurrency
    # it serves best (devkit.embedded.DEV_TUNING).
    api_db_concurrency: int = Field(64, ge=1, le=256)
    api_db_queue_s: float = Field(10.0, gt=0)
    # The daily earned-tier evaluation in the worker (CONTRACT 6.4), for the day before,
    # after this hour (UTC), catching up at most this many missed days.
    tier_evaluation_daily: bool = True
    tier_evaluation_run_hour_utc: int = Field(2, ge=0, le=23)
    tier_evaluation_catch_up_days: int = Field(7, ge=0, le=90)
    # The checkout system's service token (CONTRACT 6.1): GET /v1/checkout/... takes it
    # and nothing else does. The worker never serves it, so only the API requires it.
    checkout_token: SecretStr = Field(
        SecretStr(""), description="service token of the checkout system (/v1/checkout/*)"
    )

    def product_catalogue(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.products.split(",") if p.strip())

    @model_validator(mode="after")
    def _checkout_token_is_its_own(self) -> Self:
        token = self.checkout_token.get_secret_value()
        if token and token == self.admin_token.get_secret_value():
            raise ValueError("CHECKOUT_TOKEN must differ from ADMIN_TOKEN")
        return self


class ApiSettings(Settings):
    """The API process's settings: outside dev it refuses to start without CHECKOUT_TOKEN."""

    @model_validator(mode="after")
    def _checkout_token_required(self) -> Self:
        if self.environment != "dev" and len(self.checkout_token.get_secret_value()) < 12:
            raise ValueError(
                "set CHECKOUT_TOKEN (at least 12 characters): the checkout system's service token"
            )
        return self
