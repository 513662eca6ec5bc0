"""Customer sessions of the portal (CONTRACT 6.2), sealed in their own cookie.

Apart from partner sessions: another cookie, and another key derived from
PORTAL_SESSION_SECRET, so a partner's cookie never opens as a customer's (or the
reverse). Inside, encrypted: registration's customer session token, a CSRF token
and when the session ends (registration's `expires_at`; it refuses the token
after that anyway). Sign-out revokes the id in this process, like partner sessions.
"""

from __future__ import annotations

import secrets

from services.portal.adapters.sealed_cookies import MAX_TOKEN_CHARS, RevocationList, SealedCookie
from services.portal.domain.sessions import Clock, CustomerSession

__all__ = ["KEY_CONTEXT", "MAX_TOKEN_CHARS", "CustomerCookies"]

KEY_CONTEXT = b"channelkeep-portal-customer-cookie-v1\x00"
MAX_REVOKED = 10_000


class CustomerCookies:
    def __init__(self, secret: str, clock: Clock, *, max_age_seconds: float) -> None:
        self._max_age = int(max_age_seconds)
        self._sealed = SealedCookie(
            secret, clock, key_context=KEY_CONTEXT, ttl_seconds=self._max_age
        )
        self._clock = clock
        self._revoked = RevocationList(clock, MAX_REVOKED)

    def create(self, session_token: str, expires_at: float) -> CustomerSession:
        ends = min(expires_at, self._clock() + self._max_age)
        return CustomerSession(
            secrets.token_urlsafe(16), session_token, secrets.token_urlsafe(32), ends
        )

    def seal(self, session: CustomerSession) -> str:
        return self._sealed.seal_payload(
            {
                "v": 1,
                "sid": session.session_id,
                "token": session.session_token,
                "csrf": session.csrf_token,
                "ends": session.expires_at,
            }
        )

    def open(self, token: str | None) -> CustomerSession | None:
        now = self._clock()
        payload = self._sealed.open_payload(token, now)
        if payload is None:
            return None
        try:
            session = CustomerSession(
                session_id=str(payload["sid"]),
                session_token=str(payload["token"]),
                csrf_token=str(payload["csrf"]),
                expires_at=float(payload["ends"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if now >= session.expires_at or session.session_id in self._revoked:
            return None
        return session

    def revoke(self, session: CustomerSession | None) -> None:
        if session is None:
            return
        self._revoked.add(session.session_id, session.expires_at)
