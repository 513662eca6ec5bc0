"""The delivery log (MongoDB): what the API shows of the delivery records, by partner,
recipient, licence key, status or error; the records themselves are `deliveries`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING

from services.notifications.adapters.collections import DELIVERIES, Db, Doc
from services.notifications.service_layer.ports import (
    DeliveryCriteria,
    DeliveryPage,
    DeliveryRecord,
)


def recipient_query(recipient: str) -> Doc:
    """Deliveries to `recipient`, an e-mail address (any case) or a partner id.

    A customer record's `recipient` is the lower-cased address, a partner
    record's the partner id (= its `partner_id`). One equality or `$in` on
    `recipient`, so the embedded database reads it by the `(recipient,
    created_at)` index: it answers an `$or`, or a second field next to it,
    by scanning the collection.
    """
    address = recipient.strip().lower()
    return {"recipient": address if address == recipient else {"$in": [address, recipient]}}


def partner_log_query(partner_id: str) -> Doc:
    """A partner's own deliveries (partner-facing records addressed to it).

    A customer record's `recipient` is lower-cased, so only partner records can
    hold a partner id with an upper-case letter (registration issues `P-` and
    upper-case hex): `recipient` alone selects them, by the index. Any other id
    names the audience too (correct, but a scan on the embedded database).
    """
    if partner_id != partner_id.lower():
        return {"recipient": partner_id}
    return {"recipient": partner_id, "audience": "partner"}


def criteria_query(criteria: DeliveryCriteria) -> Doc:
    """The admin search: every given criterion must match."""
    query: Doc = {}
    if criteria.license_key:
        query["license_keys"] = criteria.license_key
    if criteria.recipient:
        query.update(recipient_query(criteria.recipient))
    if criteria.status:
        query["status"] = criteria.status
    if criteria.error:
        query["error"] = criteria.error
    return query


def record_from_doc(doc: Mapping[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        notification_id=doc["_id"],
        notification_type=doc["type"],
        channel=doc["channel"],
        audience=doc["audience"],
        status=doc["status"],
        attempts=doc.get("attempts", 0),
        error=doc.get("error"),
        error_detail=doc.get("error_detail"),
        partner_scope=doc.get("partner_scope"),
        license_keys=doc.get("license_keys", []),
        created_at=doc.get("created_at"),
        finished_at=doc.get("finished_at"),
        recipient=doc.get("recipient"),
    )


class MongoDeliveryLog:
    """Pages of delivery records, oldest first, with the count of every match."""

    def __init__(self, db: Db) -> None:
        self.collection = db[DELIVERIES]

    async def for_partner(self, partner_id: str, limit: int, offset: int) -> DeliveryPage:
        return await self._page(partner_log_query(partner_id), limit, offset)

    async def matching(self, criteria: DeliveryCriteria, limit: int, offset: int) -> DeliveryPage:
        return await self._page(criteria_query(criteria), limit, offset)

    async def _page(self, query: Doc, limit: int, offset: int) -> DeliveryPage:
        docs = await self.search(query, limit, offset)
        return DeliveryPage([record_from_doc(d) for d in docs], await self.count(query))

    async def search(self, query: Doc, limit: int, skip: int = 0) -> list[Doc]:
        cursor = (
            self.collection.find(query, {"facts": 0, "entitlements": 0, "related": 0})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def count(self, query: Doc) -> int:
        return await self.collection.count_documents(query)
