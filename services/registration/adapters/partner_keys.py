"""MongoDB adapter of partner keys (collection `partner_keys`) and the creation-key migration."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from chassis.partner_audit import OPERATOR
from services.registration.domain.partner_keys import (
    CREATION_KEY_NAME,
    KeyRole,
    PartnerKey,
    creation_key_id,
)
from services.registration.service_layer.partner_keys import PartnerKeyStore

PARTNER_KEYS = "partner_keys"
PARTNERS = "partners"

log = logging.getLogger(__name__)


def _to_doc(key: PartnerKey) -> dict[str, Any]:
    return {
        "_id": key.key_id,
        "partner_id": key.partner_id,
        "name": key.name,
        "role": key.role,
        "key_hash": key.key_hash,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
        "last_used_at": key.last_used_at,
    }


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _from_doc(doc: dict[str, Any]) -> PartnerKey:
    created_at = _utc(doc["created_at"])
    assert created_at is not None
    return PartnerKey(
        key_id=doc["_id"],
        partner_id=doc["partner_id"],
        name=doc["name"],
        role=doc["role"],
        key_hash=doc["key_hash"],
        created_at=created_at,
        created_by=doc.get("created_by", OPERATOR),
        revoked_at=_utc(doc.get("revoked_at")),
        revoked_by=doc.get("revoked_by"),
        last_used_at=_utc(doc.get("last_used_at")),
    )


class MongoPartnerKeyStore(PartnerKeyStore):
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._collection = db[PARTNER_KEYS]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(
            [
                IndexModel([("key_hash", ASCENDING)], unique=True, name="key_hash_unique"),
                IndexModel([("partner_id", ASCENDING), ("created_at", ASCENDING)], name="partner"),
            ]
        )

    async def add(self, key: PartnerKey) -> None:
        await self._collection.insert_one(_to_doc(key))

    async def adopt(self, key: PartnerKey) -> None:
        with contextlib.suppress(DuplicateKeyError):  # adopted meanwhile by another replica
            await self._collection.update_one(
                {"_id": key.key_id}, {"$setOnInsert": _to_doc(key)}, upsert=True
            )

    async def by_hash(self, key_hash: str) -> PartnerKey | None:
        doc = await self._collection.find_one({"key_hash": key_hash})
        return _from_doc(doc) if doc is not None else None

    async def for_partner(self, partner_id: str) -> list[PartnerKey]:
        cursor = self._collection.find({"partner_id": partner_id}).sort("created_at", ASCENDING)
        return [_from_doc(d) async for d in cursor]

    async def revoke(self, partner_id: str, key_id: str, at: dt.datetime, by: str) -> bool:
        result = await self._collection.update_one(
            {"_id": key_id, "partner_id": partner_id, "revoked_at": None},
            {"$set": {"revoked_at": at, "revoked_by": by}},
        )
        return result.modified_count == 1

    async def unrevoke(self, partner_id: str, key_id: str) -> None:
        await self._collection.update_one(
            {"_id": key_id, "partner_id": partner_id},
            {"$set": {"revoked_at": None, "revoked_by": None}},
        )

    async def count_active(self, partner_id: str, role: KeyRole | None = None) -> int:
        query: dict[str, Any] = {"partner_id": partner_id, "revoked_at": None}
        if role is not None:
            query["role"] = role
        return await self._collection.count_documents(query)

    async def touch(self, key_id: str, at: dt.datetime, stale_before: dt.datetime) -> None:
        await self._collection.update_one(
            {
                "_id": key_id,
                "$or": [{"last_used_at": None}, {"last_used_at": {"$lt": stale_before}}],
            },
            {"$set": {"last_used_at": at}},
        )

    async def migrate_creation_keys(self) -> int:
        """Partners from before roles: their one key becomes an `admin` key here. Idempotent."""
        adopted = {d["_id"] async for d in self._collection.find({}, {"_id": 1})}
        added = 0
        cursor = self._db[PARTNERS].find(
            {"api_key_hash": {"$exists": True}}, {"_id": 1, "api_key_hash": 1, "created_at": 1}
        )
        async for partner in cursor:
            key_id = creation_key_id(partner["_id"])
            if key_id in adopted:
                continue
            await self.adopt(
                PartnerKey(
                    key_id=key_id,
                    partner_id=partner["_id"],
                    name=CREATION_KEY_NAME,
                    role="admin",
                    key_hash=partner["api_key_hash"],
                    created_at=_utc(partner.get("created_at")) or dt.datetime.now(dt.UTC),
                    created_by=OPERATOR,
                )
            )
            added += 1
        if added:
            log.info("creation keys adopted as admin keys", extra={"count": added})
        return added
