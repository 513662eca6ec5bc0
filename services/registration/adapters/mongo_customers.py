"""MongoDB adapter of the customer self-service port (CONTRACT 6.2).

Sign-in tokens and customer sessions live in their own collections, by the
SHA-256 of the token (never the token). A token is used by one atomic
`find_one_and_update`, so two requests with one link make one session. The
customer's licences and a partner's access are read by indexes on the
entitlements (`customer_email_key`, `access.partner_id`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.registration.adapters.mongo import ENTITLEMENTS
from services.registration.domain.customers import CustomerSession, SignInGrant
from services.registration.service_layer.customers import CustomerStore

Db = AsyncDatabase[dict[str, Any]]

SIGN_INS = "customer_sign_ins"
SESSIONS = "customer_sessions"


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def ensure_customer_indexes(db: Db) -> None:
    """Idempotent; run at start-up by the API."""
    await db[ENTITLEMENTS].create_indexes(
        [
            IndexModel(
                [("customer_email_key", ASCENDING), ("_id", ASCENDING)], name="customer_email"
            ),
            IndexModel(
                [("access.partner_id", ASCENDING), ("_id", ASCENDING)],
                name="access_partner",
            ),
        ]
    )
    await db[SIGN_INS].create_indexes([IndexModel([("expires_at", ASCENDING)], name="expires")])
    await db[SESSIONS].create_indexes([IndexModel([("expires_at", ASCENDING)], name="expires")])


class MongoCustomerStore(CustomerStore):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add_sign_in(self, token_hash: str, grant: SignInGrant, now: dt.datetime) -> None:
        await self._db[SIGN_INS].insert_one(
            {
                "_id": token_hash,
                "customer_email_key": grant.email_key,
                "expires_at": grant.expires_at,
                "created_at": now,
                "used_at": None,
            }
        )
        # Expired links are of no use to anyone: keep the collection small.
        await self._db[SIGN_INS].delete_many({"expires_at": {"$lt": now - dt.timedelta(days=1)}})

    async def use_sign_in(self, token_hash: str, now: dt.datetime) -> SignInGrant | None:
        doc = await self._db[SIGN_INS].find_one_and_update(
            {"_id": token_hash, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        return SignInGrant(doc["customer_email_key"], _utc(doc["expires_at"]))

    async def add_session(
        self, session_hash: str, session: CustomerSession, now: dt.datetime
    ) -> None:
        await self._db[SESSIONS].insert_one(
            {
                "_id": session_hash,
                "customer_email_key": session.email_key,
                "expires_at": session.expires_at,
                "created_at": now,
            }
        )
        await self._db[SESSIONS].delete_many({"expires_at": {"$lt": now - dt.timedelta(days=1)}})

    async def session(self, session_hash: str, now: dt.datetime) -> CustomerSession | None:
        doc = await self._db[SESSIONS].find_one({"_id": session_hash})
        if doc is None or _utc(doc["expires_at"]) <= now:
            return None
        return CustomerSession(doc["customer_email_key"], _utc(doc["expires_at"]))

    async def license_keys_of_customer(self, customer_key: str, limit: int) -> list[str]:
        cursor = (
            self._db[ENTITLEMENTS]
            .find({"customer_email_key": customer_key}, {"_id": 1})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [doc["_id"] async for doc in cursor]

    async def license_keys_with_access(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[str]:
        query: dict[str, Any] = {"access.partner_id": partner_id}
        if term_end_before is not None:
            query["term_end"] = {"$lt": term_end_before.isoformat()}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._db[ENTITLEMENTS].find(query, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [doc["_id"] async for doc in cursor]
