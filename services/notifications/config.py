"""Settings of the notifications service."""

from __future__ import annotations

from typing import ClassVar, Self

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator

from chassis.settings import ServiceSettings

DEV_UNSUBSCRIBE_SECRET = "dev-unsubscribe-secret-change-me"  # noqa: S105 (documented dev default)
# A Fernet key anyone can read here: development and tests only; production refuses it.
DEV_WEBHOOK_SECRET_KEYS = "aNPADG1IQg55jvVEsg_WmWgXlx4hq7-PIYjNZ-zd0E0="  # noqa: S105


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
    webhook_secret_keys: SecretStr = Field(
        SecretStr(DEV_WEBHOOK_SECRET_KEYS),
        description="Fernet keys (comma-separated, newest first) sealing partners' webhook"
        " signing secrets at rest: the first seals, all open; required in production",
    )
    webhook_secret_key: SecretStr = Field(
        SecretStr(""),
        description="before WEBHOOK_SECRET_KEYS: key material secrets were sealed under;"
        " still opens them (as does UNSUBSCRIBE_SECRET) until they are re-sealed",
    )
    reminder_run_hour_utc: int = Field(6, ge=0, le=23, description="daily reminder pass")
    reminder_catch_up_days: int = Field(7, ge=0, le=90, description="missed days run on start")
    unsubscribe_secret: SecretStr = Field(
        SecretStr(DEV_UNSUBSCRIBE_SECRET), description="signs unsubscribe links"
    )
    public_base_url: str = Field("http://127.0.0.1:8003", description="base of signed links")
    # The bound on revocation of a partner key (CONTRACT 6.7: within 60 s).
    partner_key_cache_seconds: float = Field(30.0, ge=0, le=60)
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
    # The portal, whose customer sign-in page takes the token of the mailed link from its
    # fragment (CONTRACT 6.2): links go to PORTAL_URL/customer/sign-in#token=...
    portal_url: str = Field("http://127.0.0.1:8004", description="the portal, for sign-in links")

    @model_validator(mode="after")
    def _production_is_strict(self) -> Self:
        if self.environment == "production":
            if self.webhook_allow_loopback:
                raise ValueError("WEBHOOK_ALLOW_LOOPBACK is for development only")
            if self.unsubscribe_secret.get_secret_value() == DEV_UNSUBSCRIBE_SECRET:
                raise ValueError("set UNSUBSCRIBE_SECRET: the development default is public")
            if self.webhook_secret_keys.get_secret_value() == DEV_WEBHOOK_SECRET_KEYS:
                raise ValueError(
                    "set WEBHOOK_SECRET_KEYS (comma-separated Fernet keys, newest first):"
                    " the development default is public"
                )
        return self

    @field_validator("webhook_secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        keys = _split(value.get_secret_value())
        if not keys:
            raise ValueError("needs at least one Fernet key")
        for position, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except ValueError:
                # Never the key itself in the message: only where it is in the list.
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        return value

    def webhook_keys(self) -> list[str]:
        """WEBHOOK_SECRET_KEYS, newest (the one that seals) first."""
        return _split(self.webhook_secret_keys.get_secret_value())

    def legacy_webhook_key_material(self) -> list[bytes]:
        """What earlier releases sealed secrets under, so their rows stay readable.

        WEBHOOK_SECRET_KEY (when set) and a hash of UNSUBSCRIBE_SECRET (domain-
        separated from its link-signing use). Both only open; after one rotation
        (`POST /v1/admin/webhook-secrets/rotate`) no row needs them.
        """
        material = [b"webhook-secrets\x00" + self.unsubscribe_secret.get_secret_value().encode()]
        explicit = self.webhook_secret_key.get_secret_value()
        if explicit:
            material.insert(0, explicit.encode())
        return material


def _split(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]
