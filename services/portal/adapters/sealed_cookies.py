"""The sealing shared by the portal's session cookies (partner, console, customer).

A cookie value is a Fernet token (AES-128-CBC and HMAC-SHA256, from `cryptography`)
under a key derived from PORTAL_SESSION_SECRET with a per-cookie context, so one kind's
cookie never opens as another's. The token's own timestamp is the idle timer: it is
refused once older than `ttl_seconds`. Each kind decides what goes inside (a JSON
object) and what else bounds the session's life; revoked session ids are remembered
per process in a bounded `RevocationList`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from cryptography.fernet import Fernet, InvalidToken

from services.portal.domain.sessions import Clock

# Browsers keep at most 4096 bytes per cookie, name and attributes included.
MAX_TOKEN_CHARS = 3800


def derive_fernet_key(context: bytes, secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(context + secret.encode()).digest())


class RevocationList:
    """Session id -> when the session would have ended anyway (then it is forgotten).

    At most `max_entries` ids, the oldest revoked dropped first.
    """

    def __init__(self, clock: Clock, max_entries: int) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._ends: OrderedDict[str, float] = OrderedDict()

    def add(self, session_id: str, ends: float) -> None:
        self._ends[session_id] = ends
        self._ends.move_to_end(session_id)
        self._forget_ended()
        while len(self._ends) > self._max_entries:
            self._ends.popitem(last=False)

    def __contains__(self, session_id: str) -> bool:
        self._forget_ended()
        return session_id in self._ends

    def _forget_ended(self) -> None:
        now = self._clock()
        while self._ends:
            oldest, ends = next(iter(self._ends.items()))
            if ends >= now:
                break
            del self._ends[oldest]


class SealedCookie:
    """Seals a JSON object into a cookie value and opens it again; no session model here."""

    def __init__(self, secret: str, clock: Clock, *, key_context: bytes, ttl_seconds: int) -> None:
        self._fernet = Fernet(derive_fernet_key(key_context, secret))
        self._clock = clock
        self._ttl = ttl_seconds

    def seal_payload(self, payload: dict[str, Any]) -> str:
        """The cookie value: the payload encrypted and signed, stamped with the current time."""
        raw = json.dumps(payload, separators=(",", ":")).encode()
        # Padding '=' would make the cookie value need quoting.
        return self._fernet.encrypt_at_time(raw, int(self._clock())).decode().rstrip("=")

    def open_payload(self, token: str | None, now: float) -> dict[str, Any] | None:
        """The JSON object in a cookie value, or None (absent, too long, forged, idle too long)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        padded = token + "=" * (-len(token) % 4)
        try:
            payload = json.loads(self._fernet.decrypt_at_time(padded.encode(), self._ttl, int(now)))
        except (InvalidToken, binascii.Error, ValueError, TypeError):
            return None
        return payload if isinstance(payload, dict) else None


class _TimedSession(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def created_at(self) -> float: ...


S = TypeVar("S", bound=_TimedSession)


class TimedSessionCookies(Generic[S]):
    """Sessions with an idle limit (the token's age) and a total age (`created_at` on).

    Revoking remembers the id in this process until the session would have ended
    anyway; a subclass says what is sealed inside and how a session is rebuilt.
    """

    key_context: bytes = b""

    def __init__(
        self,
        secret: str,
        clock: Clock,
        *,
        idle_seconds: float,
        max_age_seconds: float,
        max_revoked: int,
    ) -> None:
        self._sealed = SealedCookie(
            secret, clock, key_context=self.key_context, ttl_seconds=int(idle_seconds)
        )
        self._clock = clock
        self._max_age = max_age_seconds
        self._revoked = RevocationList(clock, max_revoked)

    def _live(self, session: S, now: float) -> S | None:
        """The session unless it is past its total age or revoked."""
        if now - session.created_at > self._max_age or self.revoked(session.session_id):
            return None
        return session

    def revoke(self, session: S | None) -> None:
        if session is None:
            return
        self._revoked.add(session.session_id, session.created_at + self._max_age)

    def revoked(self, session_id: str) -> bool:
        return session_id in self._revoked
