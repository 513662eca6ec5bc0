"""Where a service keeps its partner audit trail (`chassis.partner_audit`): MongoDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from chassis.partner_audit import AuditEntry

AUDIT_COLLECTION = "partner_audit"


class MongoPartnerAudit:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db[AUDIT_COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(
            [IndexModel([("partner_id", 1), ("at", DESCENDING)], name="partner_at")]
        )

    async def record(self, entry: AuditEntry) -> None:
        await self._collection.insert_one(
            {
                "_id": entry.entry_id,
                "partner_id": entry.partner_id,
                "actor_key_id": entry.actor_key_id,
                "action": entry.action,
                "at": entry.at,
                "target": entry.target,
                "detail": dict(entry.detail),
            }
        )

    async def for_partner(
        self, partner_id: str, *, before: dt.datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query: dict[str, Any] = {"partner_id": partner_id}
        if before is not None:
            query["at"] = {"$lt": before}
        cursor = self._collection.find(query).sort("at", DESCENDING).limit(limit)
        return [
            AuditEntry(
                partner_id=d["partner_id"],
                actor_key_id=d["actor_key_id"],
                action=d["action"],
                at=_utc(d["at"]),
                target=d.get("target"),
                detail=dict(d.get("detail") or {}),
                entry_id=d["_id"],
            )
            async for d in cursor
        ]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
