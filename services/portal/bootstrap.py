"""The portal's composition root: the adapters each app builds once, in one place.

The pages (`entrypoints`) get every client of the three services and every sealed
cookie through `Portal`, never by importing an adapter; what they catch and read of
those clients is in `service_layer.ports`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from fastapi.responses import Response
from jinja2 import Environment

from services.portal.adapters.admin_api import AdminApi
from services.portal.adapters.console_cookies import ConsoleCookies
from services.portal.adapters.customer_api import CustomerApi
from services.portal.adapters.customer_cookies import CustomerCookies
from services.portal.adapters.operator_auth import TokenAuthenticator
from services.portal.adapters.partner_api import PartnerApi
from services.portal.adapters.session_cookies import SessionCookies
from services.portal.config import Settings
from services.portal.domain.operators import OperatorAuthenticator, OperatorSession
from services.portal.domain.sessions import Clock, CustomerSession, Session, SignInCsrf
from services.portal.service_layer.ports import ServiceUrls


@dataclass
class Portal:
    """Built once per app: settings, the session cookies and the shared HTTP client."""

    settings: Settings
    sessions: SessionCookies
    sign_in_csrf: SignInCsrf
    customer_cookies: CustomerCookies
    console_cookies: ConsoleCookies
    http: httpx.AsyncClient
    urls: ServiceUrls
    today: Callable[[], dt.date]
    templates: Environment

    @property
    def cookie_name(self) -> str:
        # __Host- pins the cookie to this origin (Secure, Path=/, no Domain) in production.
        return "__Host-portal_session" if self.settings.secure_cookies else "portal_session"

    @property
    def sign_in_cookie_name(self) -> str:
        return "__Host-portal_signin" if self.settings.secure_cookies else "portal_signin"

    def set_session_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            self.cookie_name,
            self.sessions.seal(session),
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )

    def delete_session_cookie(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie_name,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )

    def api_for(self, session: Session) -> PartnerApi:
        """A client that sends this session's partner key, and only that one."""
        return self.partner_api(session.api_key)

    def partner_api(self, api_key: str) -> PartnerApi:
        return PartnerApi(self.http, self.urls, api_key)

    def admin_api(self, session: OperatorSession) -> AdminApi:
        """A client of the admin routes with the token this operator signed in with."""
        return AdminApi(self.http, self.urls, session.operator.admin_credential)

    def customer_api(self, session: CustomerSession | None = None) -> CustomerApi:
        """Registration's customer routes: as this customer, or (None) the public ones."""
        return CustomerApi(
            self.http, self.urls.registration, session.session_token if session else None
        )

    def operator_authenticator(self) -> OperatorAuthenticator:
        """Checks a console sign-in: the operator token, by asking an admin route."""
        return TokenAuthenticator(self.http, self.urls)


def service_urls(settings: Settings) -> ServiceUrls:
    return ServiceUrls(
        registration=settings.registration_url.rstrip("/"),
        commissions=settings.commissions_url.rstrip("/"),
        notifications=settings.notifications_url.rstrip("/"),
    )


def build_portal(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    clock: Clock,
    today: Callable[[], dt.date],
    templates: Environment,
) -> Portal:
    """The app's adapters, on the HTTP client its lifespan opened."""
    secret = settings.portal_session_secret.get_secret_value()
    return Portal(
        settings=settings,
        sessions=SessionCookies(
            secret,
            clock,
            idle_seconds=settings.portal_session_idle_minutes * 60,
            max_age_seconds=settings.portal_session_max_hours * 3600,
            max_revoked=settings.portal_max_sessions,
        ),
        sign_in_csrf=SignInCsrf(secret),
        # Customer self-service sessions (CONTRACT 6.2), apart from partners'.
        customer_cookies=CustomerCookies(
            secret, clock, max_age_seconds=settings.portal_session_max_hours * 3600
        ),
        # The channel team's console (/console): its own session kind.
        console_cookies=ConsoleCookies(
            secret,
            clock,
            idle_seconds=settings.portal_session_idle_minutes * 60,
            max_age_seconds=settings.portal_session_max_hours * 3600,
            max_revoked=settings.portal_max_sessions,
        ),
        http=http,
        urls=service_urls(settings),
        today=today,
        templates=templates,
    )
