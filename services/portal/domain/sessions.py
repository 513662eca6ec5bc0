"""Server-side sessions: the partner's API key stays in this process, keyed by a random id.

The browser only ever holds the session id (an unguessable token). Sessions end
after an idle period, after a maximum age, on sign-out, and when the store is
full (oldest first), so memory stays bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Branding:
    """What the header shows: the partner's name, colour and logo, when known."""

    display_name: str | None = None
    color: str | None = None
    logo_url: str | None = None
    website: str | None = None


@dataclass
class Session:
    session_id: str
    api_key: str = field(repr=False)
    csrf_token: str = field(repr=False)
    created_at: float
    last_seen: float
    branding: Branding = field(default_factory=Branding)
    webhook_url: str | None = None


class SessionStore:
    """In-memory sessions (one portal process; a restart signs everyone out)."""

    def __init__(
        self, clock: Clock, *, idle_seconds: float, max_age_seconds: float, max_sessions: int
    ) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._max_age = max_age_seconds
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, api_key: str, branding: Branding) -> Session:
        now = self._clock()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            api_key=api_key,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            branding=branding,
        )
        self._sessions[session.session_id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle or now - session.created_at > self._max_age:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


class SignInCsrf:
    """CSRF for the sign-in form, before there is a session: a signed double-submit token.

    The browser gets a random nonce in a cookie and `HMAC(secret, nonce)` in the form;
    a cross-site page can read neither, so it cannot forge the pair.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and tokens_match(self.token_for(nonce or ""), token)
