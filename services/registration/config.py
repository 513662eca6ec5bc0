"""Settings of the registration service."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "registration"
    port: int = Field(8001, validation_alias="REGISTRATION_PORT", ge=1, le=65535)
    mongo_db: str = Field("channelkeep_registration", validation_alias="REGISTRATION_MONGO_DB")
    seller_code_lookups_per_minute: int = Field(30, ge=1)
    late_seller_code_days: int = Field(90, ge=0)
    attribution_window_months: int = Field(36, ge=1)
    # Units of work of one API process using the database at once, and how long a
    # request may queue for a place before it answers 503 (service_layer/admission.py).
    api_db_concurrency: int = Field(8, ge=1, le=256)
    api_db_queue_s: float = Field(10.0, gt=0)
    # The checkout system's service token (CONTRACT 6.1): GET /v1/checkout/... takes it
    # and nothing else does. The worker never serves it, so only the API requires it.
    checkout_token: SecretStr = Field(
        SecretStr(""), description="service token of the checkout system (/v1/checkout/*)"
    )

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
