"""Portal sessions sealed in the browser's cookie, so any replica, or a restarted one, reads them.

The cookie is a Fernet token (AES-128-CBC and HMAC-SHA256, from `cryptography`) under a
key derived from PORTAL_SESSION_SECRET: the partner's API key inside is encrypted, and a
cookie changed by one bit, or sealed under another secret, is refused. The token's own
timestamp is the session's last use: it is re-sealed on every signed-in response, and
refused once it is older than the idle limit; `created_at` inside bounds the total age.

Sign-out, a new sign-in and a refused key revoke the session id in this process (the
browser's cookie is deleted too). A copy of a signed-out cookie replayed on another
replica is accepted until its idle limit ends: stateless cookies have no shared
revocation list (sessions in MongoDB would; the portal has no database).
"""

from __future__ import annotations

import secrets

from services.portal.adapters.sealed_cookies import (
    MAX_TOKEN_CHARS,
    TimedSessionCookies,
    derive_fernet_key,
)
from services.portal.domain.sessions import Branding, Session

__all__ = ["KEY_CONTEXT", "MAX_TOKEN_CHARS", "SessionCookies", "fernet_key"]

# Separates this key from the HMAC key of the sign-in CSRF token (same secret).
KEY_CONTEXT = b"channelkeep-portal-session-cookie-v1\x00"


def fernet_key(secret: str) -> bytes:
    return derive_fernet_key(KEY_CONTEXT, secret)


class SessionCookies(TimedSessionCookies[Session]):
    """Creates, seals and opens sessions; remembers this process's revoked ids (bounded)."""

    key_context = KEY_CONTEXT

    def create(self, api_key: str, branding: Branding, role: str = "admin") -> Session:
        now = self._clock()
        return Session(
            session_id=secrets.token_urlsafe(16),
            api_key=api_key,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            branding=branding,
            role=role,
        )

    def seal(self, session: Session) -> str:
        """The cookie value: the session encrypted and signed, stamped with the current time."""
        branding = session.branding
        fields: list[str | None] = [
            branding.display_name,
            branding.color,
            branding.logo_url,
            branding.website,
        ]
        for drop in (None, 3, 2):  # too big for a cookie: drop the website, then the logo
            if drop is not None:
                fields[drop] = None
            token = self._sealed.seal_payload(
                {
                    "v": 1,
                    "sid": session.session_id,
                    "key": session.api_key,
                    "csrf": session.csrf_token,
                    "created": session.created_at,
                    "brand": fields,
                    "webhook": session.webhook_url,
                    "role": session.role,
                }
            )
            if len(token) <= MAX_TOKEN_CHARS:
                break
        return token

    def open(self, token: str | None) -> Session | None:
        """The live session in a cookie value, or None (absent, forged, expired, revoked)."""
        now = self._clock()
        payload = self._sealed.open_payload(token, now)
        if payload is None:
            return None
        try:
            session_id, created_at = str(payload["sid"]), float(payload["created"])
            name, color, logo, website = payload["brand"]
            session = Session(
                session_id=session_id,
                api_key=str(payload["key"]),
                csrf_token=str(payload["csrf"]),
                created_at=created_at,
                last_seen=now,
                branding=Branding(display_name=name, color=color, logo_url=logo, website=website),
                webhook_url=payload.get("webhook"),
                role=str(payload.get("role", "admin")),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return self._live(session, now)
