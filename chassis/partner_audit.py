"""A partner's audit trail (CONTRACT 6.7): who (which key) changed what, and when.

Each service records the changes it makes in its own database and serves them
at its own `GET /v1/partner/audit`: registration keys, renewal mode and contacts,
notifications the webhook. No service writes another's database, and an audit
entry is written beside the change it records, never over the network.
Entries are append-only and never carry a secret: a key's id and name, never the
key; a webhook's host, never its signing secret. The Mongo store of the entries is
`chassis.partner_audit_store`; this module is plain data a service layer may use.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field

OPERATOR = "operator"
"""The actor of a change made with the operator token (ADMIN_TOKEN), not a partner key."""


@dataclass(frozen=True)
class AuditEntry:
    partner_id: str
    actor_key_id: str
    action: str
    at: dt.datetime
    target: str | None = None
    detail: dict[str, str] = field(default_factory=dict)
    entry_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class AuditLog(Protocol):
    """Port: a partner's audit trail (chassis.partner_audit_store.MongoPartnerAudit)."""

    async def record(self, entry: AuditEntry) -> None: ...

    async def for_partner(
        self, partner_id: str, *, before: dt.datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]: ...


class AuditEntryOut(BaseModel):
    entry_id: str
    at: dt.datetime
    actor_key_id: str = Field(description="the key that made the change, or `operator`")
    action: str = Field(description="e.g. `key.created`, `key.revoked`, `webhook.set`")
    target: str | None = Field(None, description="what changed, e.g. a key id")
    detail: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            entry_id=entry.entry_id,
            at=entry.at,
            actor_key_id=entry.actor_key_id,
            action=entry.action,
            target=entry.target,
            detail=entry.detail,
        )


class AuditPage(BaseModel):
    entries: list[AuditEntryOut] = Field(description="newest first")
    next_before: dt.datetime | None = Field(
        None, description="pass as `before` for older entries; null on the last page"
    )


def page(entries: list[AuditEntry], limit: int) -> AuditPage:
    return AuditPage(
        entries=[AuditEntryOut.of(e) for e in entries],
        next_before=entries[-1].at if len(entries) == limit else None,
    )
