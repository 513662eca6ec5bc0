"""MongoDB adapter of registered deals (CONTRACT 6.3): documents, the repository, the indexes.

The unit of work (adapters/mongo.py) writes deals with the other aggregates in
its one transaction, with the same optimistic version check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.registration.domain.deals import Deal, DealCustomer, DealStatus
from services.registration.service_layer.unit_of_work import DealRepository

Db = AsyncDatabase[dict[str, Any]]
Doc = dict[str, Any]

DEALS = "deals"
ENTITLEMENTS = "entitlements"  # the same collection adapters/mongo.py names


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def deal_to_doc(d: Deal, version: int) -> Doc:
    return {
        "_id": d.deal_id,
        "partner_id": d.partner_id,
        "customer": {
            "customer_id": d.customer.customer_id,
            "org_name": d.customer.org_name,
            "email": d.customer.email,
            # Folded once, so a match by e-mail is an index lookup, not a scan.
            "email_folded": d.customer.email.strip().casefold(),
            "country": d.customer.country,
        },
        "product": d.product,
        "expected_close": d.expected_close.isoformat(),
        "estimated_amount_minor": d.estimated_amount_minor,
        "currency": d.currency,
        "submitted_at": d.submitted_at,
        "status": d.status,
        "approved_at": d.approved_at,
        "protected_until": d.protected_until,
        "decided_at": d.decided_at,
        "reason": d.reason,
        "order_id": d.order_id,
        "closed_at": d.closed_at,
        "version": version,
    }


def deal_from_doc(doc: Doc) -> Deal:
    c = doc["customer"]
    submitted_at = _utc(doc["submitted_at"])
    assert submitted_at is not None
    return Deal(
        deal_id=doc["_id"],
        partner_id=doc["partner_id"],
        customer=DealCustomer(c.get("customer_id"), c["org_name"], c["email"], c["country"]),
        product=doc["product"],
        expected_close=dt.date.fromisoformat(doc["expected_close"]),
        estimated_amount_minor=int(doc["estimated_amount_minor"]),
        currency=doc["currency"],
        submitted_at=submitted_at,
        status=doc["status"],
        approved_at=_utc(doc.get("approved_at")),
        protected_until=_utc(doc.get("protected_until")),
        decided_at=_utc(doc.get("decided_at")),
        reason=doc.get("reason"),
        order_id=doc.get("order_id"),
        closed_at=_utc(doc.get("closed_at")),
        version=int(doc.get("version", 0)),
    )


async def ensure_deal_indexes(db: Db) -> None:
    await db[DEALS].create_indexes(
        [
            # The order worker's look-up: approved deals of a batch's products.
            IndexModel([("status", ASCENDING), ("product", ASCENDING)], name="status_product"),
            # The expiry pass: approved deals by the end of their protection.
            IndexModel(
                [("status", ASCENDING), ("protected_until", ASCENDING)], name="status_protection"
            ),
            IndexModel([("partner_id", ASCENDING), ("_id", ASCENDING)], name="partner"),
        ]
    )


class MongoDealRepository(DealRepository):
    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[DEALS]
        self._entitlements = db[ENTITLEMENTS]

    def _snapshot(self, entity: Deal) -> Any:
        return deal_to_doc(entity, entity.version)

    def _changed(self, entity: Deal, snapshot: Any) -> bool:
        return bool(deal_to_doc(entity, entity.version) != snapshot)

    async def _fetch(self, deal_ids: list[str]) -> list[Deal]:
        docs = await self._collection.find({"_id": {"$in": deal_ids}}).to_list()
        return [deal_from_doc(d) for d in docs]

    async def _fetch_approved(self, products: list[str]) -> list[Deal]:
        query = {"status": "approved", "product": {"$in": products}}
        return [deal_from_doc(d) async for d in self._collection.find(query)]

    async def _fetch_due(self, cutoff: dt.datetime, limit: int) -> list[Deal]:
        query = {"status": "approved", "protected_until": {"$lte": cutoff}}
        cursor = self._collection.find(query).sort("protected_until", ASCENDING).limit(limit)
        return [deal_from_doc(d) async for d in cursor]

    async def query(
        self,
        *,
        partner_id: str | None,
        status: DealStatus | None,
        after: str | None,
        limit: int,
    ) -> list[Deal]:
        query: dict[str, Any] = {}
        if partner_id is not None:
            query["partner_id"] = partner_id
        if status is not None:
            query["status"] = status
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._collection.find(query).sort("_id", ASCENDING).limit(limit)
        return [deal_from_doc(d) async for d in cursor]

    async def product_seen(self, product: str) -> bool:
        return await self._entitlements.find_one({"product": product}, {"_id": 1}) is not None
