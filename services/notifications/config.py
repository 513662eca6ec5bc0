"""Settings of the notifications service."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from chassis.settings import ServiceSettings

DEV_UNSUBSCRIBE_SECRET = "dev-unsubscribe-secret-change-me"  # noqa: S105 (documented dev default)


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"
    port: int = Field(8003, validation_alias="NOTIFICATIONS_PORT", ge=1, le=65535)
    mongo_db: str = Field("channelkeep_notifications", validation_alias="NOTIFICATIONS_MONGO_DB")
    smtp_host: str = Field("127.0.0.1", description="SMTP server")
    smtp_port: int = Field(2525, ge=1, le=65535)
    smtp_from: str = Field("Channelkeep <no-reply@vendor.example>")
    smtp_username: str = Field("", description="SMTP AUTH user; empty: no AUTH")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password")
    smtp_starttls: bool = Field(False, description="upgrade the SMTP connection with STARTTLS")
    smtp_connections: int = Field(16, ge=1, le=256, description="kept-open SMTP connections")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=120)
    email_max_attempts: int = Field(8, ge=1, le=50, description="SMTP tries before failed")
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_allow_loopback: bool = Field(False, description="allow http://127.0.0.1 targets")
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_response_max_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    retry_base_seconds: float = Field(5.0, gt=0, le=3600, description="first retry delay")
    retry_max_seconds: float = Field(3600.0, gt=0, le=86400, description="longest retry delay")
    webhook_secret_key: SecretStr = Field(
        SecretStr(""),
        description="encrypts partners' webhook signing secrets at rest; "
        "empty: derived from UNSUBSCRIBE_SECRET",
    )
    reminder_run_hour_utc: int = Field(6, ge=0, le=23, description="daily reminder pass")
    reminder_catch_up_days: int = Field(7, ge=0, le=90, description="missed days run on start")
    unsubscribe_secret: SecretStr = Field(
        SecretStr(DEV_UNSUBSCRIBE_SECRET), description="signs unsubscribe links"
    )
    public_base_url: str = Field("http://127.0.0.1:8003", description="base of signed links")
    partner_key_cache_seconds: float = Field(30.0, ge=0, le=3600)
    dispatch_batch_size: int = Field(512, ge=1, le=5000)
    dispatch_concurrency: int = Field(64, ge=1, le=256)
    dispatch_idle_seconds: float = Field(0.5, gt=0, le=60)
    advisory_page_size: int = Field(500, ge=10, le=10_000)
    lease_seconds: float = Field(30.0, ge=3, le=600)
    vendor_name: str = "Channelkeep Software"
    vendor_website: str = "https://vendor.example"
    vendor_logo_url: str = "https://vendor.example/logo.png"
    vendor_color: str = "#1F4E79"
    vendor_support_email: str = "support@vendor.example"
    vendor_renew_url: str = "https://vendor.example/renew"
    vendor_phone: str = ""
    # The vendor's page that reads the token from the link's fragment and posts it to
    # registration's POST /v1/registrations/contact-confirmations (CONTRACT 6.9).
    vendor_contact_confirmation_url: str = "https://vendor.example/contact-confirmation"

    @model_validator(mode="after")
    def _production_is_strict(self) -> Self:
        if self.environment == "production":
            if self.webhook_allow_loopback:
                raise ValueError("WEBHOOK_ALLOW_LOOPBACK is for development only")
            if self.unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET:
                raise ValueError("set UNSUBSCRIBE_SECRET: the development default is public")
        return self

    def webhook_key_material(self) -> bytes:
        explicit = self.webhook_secret_key.get_secret_value()
        if explicit:
            return explicit.encode()
        # Domain-separated from the link-signing use of the same secret.
        return b"webhook-secrets\x00" + self.unsubscribe_secret.get_secret_value().encode()
