"""Settings of the partner portal."""

from __future__ import annotations

import secrets
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from chassis.settings import ServiceSettings


class Settings(ServiceSettings):
    """The portal has no database, broker or worker: it only calls the partner APIs."""

    service_name: ClassVar[str] = "portal"
    uses_broker_and_database: ClassVar[bool] = False
    port: int = Field(8004, validation_alias="PORTAL_PORT", ge=1, le=65535)
    # The portal holds no operator token (least privilege): the partner pages never call an
    # admin route, and the staff console calls them with the token its operator signed in
    # with, kept sealed in the console cookie (entrypoints/console_pages.py).
    admin_token: SecretStr = Field(SecretStr("not-used-by-the-portal"), exclude=True)
    commissions_url: str = Field("http://127.0.0.1:8002", description="commissions API")
    notifications_url: str = Field("http://127.0.0.1:8003", description="notifications API")
    portal_session_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description="seals the session cookies and signs the sign-in form's CSRF token;"
        " the same on every replica; required in production (default in dev: random per"
        " process, so a restart signs everyone out)",
    )
    portal_session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    portal_session_max_hours: int = Field(12, ge=1, le=24 * 7)
    portal_max_sessions: int = Field(
        10_000, ge=10, description="signed-out sessions this process remembers as revoked"
    )
    portal_upstream_timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("portal_session_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("PORTAL_SESSION_SECRET must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _secret_given_in_production(self) -> Settings:
        # Replicas and restarts must share the secret, or every session dies with a pod.
        if self.environment == "production" and "portal_session_secret" not in (
            self.model_fields_set
        ):
            raise ValueError("PORTAL_SESSION_SECRET must be set in production")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.environment == "production"
