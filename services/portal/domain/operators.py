"""The vendor's channel team in the console: who signed in, and the port that signs them in.

`OperatorAuthenticator` is the seam between the console and how staff prove who they
are. The dev default (adapters/operator_auth.py, `TokenAuthenticator`) takes the
operator token, `ADMIN_TOKEN`, typed into the console's sign-in form. An OIDC
implementation drops in behind the same port: it answers `kind = "redirect"`, sends
the browser to the identity provider from `start()`, and `finish()` turns the
callback's parameters into an `Operator` whose `admin_credential` is what the services
accept on `/v1/admin/*` (today only the operator token, so an OIDC adapter would hold
or exchange for one; see services/portal/README.md, "Console").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class Operator:
    """A member of the vendor's channel team, signed in."""

    subject: str
    """Who, as the authenticator knows them ("operator token" for the dev default)."""
    admin_credential: str = field(repr=False)
    """The bearer credential the console sends to the admin routes on their behalf."""
    method: str = "token"


@dataclass
class OperatorSession:
    """A console session: a different kind from a partner's `Session`, in another cookie."""

    session_id: str
    operator: Operator
    csrf_token: str = field(repr=False)
    created_at: float


class OperatorAuthenticator(Protocol):
    """How the console signs staff in; the token is the default, OIDC the intended next one."""

    kind: Literal["form", "redirect"]
    """`form`: the sign-in page posts credentials to `finish`; `redirect`: `start` gives a URL."""

    async def start(self, state: str) -> str | None:
        """Where to send the browser (an identity provider), or None for a form."""

    async def finish(self, params: Mapping[str, str]) -> Operator | None:
        """The operator the posted form (or the provider's callback) proves, else None."""
