"""A signed-in partner's session, and the CSRF token of the sign-in form.

Sessions travel sealed in the browser's cookie (adapters/session_cookies.py): the
partner's API key is encrypted there, never readable by the page or the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
    role: str = "admin"
    """The key's role (CONTRACT 6.7), asked at sign-in: which pages the nav shows."""


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


@dataclass
class CustomerSession:
    """A signed-in customer's session (CONTRACT 6.2; adapters/customer_cookies.py)."""

    session_id: str
    session_token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: float
