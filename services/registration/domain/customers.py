"""Customer self-service (CONTRACT 6.2): who a customer is, and partners with access.

A customer is the contact e-mail of its entitlements, compared case-insensitively;
`email_key` is how the suite names one without keeping the address in a key or
a log. A partner with access sees (`view`) or also keeps the contact of
(`manage`) a licence it is not partner of record of: it earns nothing and is
never named to the customer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

Permission = Literal["view", "manage"]


def email_key(email: str) -> str:
    """SHA-256 hex of the lower-cased address: the customer's id and its topic key."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PartnerAccess:
    partner_id: str
    permission: Permission
    granted_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SignInGrant:
    """What a one-time sign-in token opens: the customer, until `expires_at`."""

    email_key: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CustomerSession:
    email_key: str
    expires_at: dt.datetime
