"""Customer sessions of the portal (CONTRACT 6.2), sealed in their own cookie.

Apart from partner sessions: another cookie, and another key derived from
PORTAL_SESSION_SECRET, so a partner's cookie never opens as a customer's (or the
reverse). Inside, encrypted: registration's customer session token, a CSRF token
and when the session ends (registration's `expires_at`; it refuses the token
after that anyway). Sign-out revokes the id in this process, like partner sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from services.portal.domain.sessions import Clock

KEY_CONTEXT = b"channelkeep-portal-customer-cookie-v1\x00"
MAX_TOKEN_CHARS = 3800


@dataclass
class CustomerSession:
    session_id: str
    session_token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: float


class CustomerCookies:
    def __init__(self, secret: str, clock: Clock, *, max_age_seconds: float) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(KEY_CONTEXT + secret.encode()).digest())
        self._fernet = Fernet(key)
        self._clock = clock
        self._max_age = int(max_age_seconds)
        self._revoked: OrderedDict[str, float] = OrderedDict()

    def create(self, session_token: str, expires_at: float) -> CustomerSession:
        ends = min(expires_at, self._clock() + self._max_age)
        return CustomerSession(
            secrets.token_urlsafe(16), session_token, secrets.token_urlsafe(32), ends
        )

    def seal(self, session: CustomerSession) -> str:
        raw = json.dumps(
            {
                "v": 1,
                "sid": session.session_id,
                "token": session.session_token,
                "csrf": session.csrf_token,
                "ends": session.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        return self._fernet.encrypt_at_time(raw, int(self._clock())).decode().rstrip("=")

    def open(self, token: str | None) -> CustomerSession | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        now = self._clock()
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self._fernet.decrypt_at_time(padded.encode(), self._max_age, int(now))
            payload = json.loads(raw)
            session = CustomerSession(
                session_id=str(payload["sid"]),
                session_token=str(payload["token"]),
                csrf_token=str(payload["csrf"]),
                expires_at=float(payload["ends"]),
            )
        except (InvalidToken, binascii.Error, ValueError, KeyError, TypeError):
            return None
        if now >= session.expires_at or session.session_id in self._revoked:
            return None
        return session

    def revoke(self, session: CustomerSession | None) -> None:
        if session is None:
            return
        self._revoked[session.session_id] = session.expires_at
        now = self._clock()
        while self._revoked and (
            len(self._revoked) > 10_000 or next(iter(self._revoked.values())) < now
        ):
            self._revoked.popitem(last=False)
