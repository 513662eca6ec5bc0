"""What the pages (entrypoints) know of the portal's clients of the three services.

The clients themselves are adapters (`services.portal.adapters`), built by the
composition root (`services.portal.bootstrap`); the pages catch these errors and
read these facts without importing an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINES = 10_000  # GET /v1/admin/commissions answers at most this many lines


@dataclass(frozen=True)
class ServiceUrls:
    registration: str
    commissions: str
    notifications: str


class UpstreamError(Exception):
    """A service answered 4xx: the caller's mistake, with the contract's error code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Unavailable(Exception):
    """A service could not be reached or answered 5xx."""


class NotSignedIn(UpstreamError):
    """401/403: the key is unknown or no longer active (the partner was suspended).

    Not a `403 role_forbidden`: the key works, its role may not use that route
    (CONTRACT 6.7); that stays an UpstreamError, shown as a 403 page.
    """


class OperatorRefused(UpstreamError):
    """401/403 on an admin route: the token is not (or no longer) the operator token."""


class CustomerSignedOut(UpstreamError):
    """401/403: the customer's session is unknown or expired (or the link was used)."""
