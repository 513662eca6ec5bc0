"""A partner's API keys and their roles (CONTRACT 6.7): plain values, no I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

KeyRole = Literal["admin", "sales", "finance"]
KEY_ROLES: tuple[KeyRole, ...] = get_args(KeyRole)

LAST_USED_GRANULARITY = dt.timedelta(minutes=1)
"""`last_used_at` is written at most this often per key: a read per request, a write a minute."""

MAX_ACTIVE_KEYS = 50
"""Active keys per partner: a team, not a key per request."""


@dataclass
class PartnerKey:
    key_id: str
    partner_id: str
    name: str
    role: KeyRole
    key_hash: str
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    last_used_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def used_recently(self, now: dt.datetime) -> bool:
        return self.last_used_at is not None and now - self.last_used_at < LAST_USED_GRANULARITY


def creation_key_id(partner_id: str) -> str:
    """The id of the key made at partner creation: derived, so adopting it is idempotent."""
    return "K-" + hashlib.sha256(f"{partner_id}/creation".encode()).hexdigest()[:12].upper()


CREATION_KEY_NAME = "created with the partner"
