"""Delivery records (MongoDB): written before sending, settled after, published from
an outbox; inserted by their deterministic notification id, never twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.notifications.adapters.collections import DELIVERIES, DELIVERY_OUTBOX, Db, Doc
from services.notifications.domain.model import ListedEntitlement, PlannedDelivery
from services.notifications.service_layer.ports import FINAL_STATUSES, DeliveryState

_DUPLICATE_KEY = 11000


SECRET_FACTS = ("facts.sign_in_token", "facts.confirmation_token")
"""Facts that are one-time secrets, kept only while their message is pending."""


async def _into_outbox(outbox: AsyncCollection[Doc], notification_ids: Sequence[str]) -> None:
    if not notification_ids:
        return
    try:
        await outbox.insert_many([{"_id": i} for i in notification_ids], ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != _DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise


def _listed_to_doc(e: ListedEntitlement) -> Doc:
    return {
        "license_key": e.license_key,
        "product": e.product,
        "term_end": e.term_end.isoformat() if e.term_end else None,
        "por": e.partner_of_record,
        "sku": e.sku,
        "org_name": e.org_name,
    }


def _listed_from_doc(doc: Mapping[str, Any]) -> ListedEntitlement:
    term_end = doc.get("term_end")
    return ListedEntitlement(
        license_key=doc["license_key"],
        product=doc.get("product", ""),
        term_end=dt.date.fromisoformat(term_end) if term_end else None,
        partner_of_record=doc.get("por"),
        sku=doc.get("sku", ""),
        org_name=doc.get("org_name", ""),
    )


def delivery_to_doc(
    planned: PlannedDelivery, now: dt.datetime, traceparent: str | None = None
) -> Doc:
    doc: Doc = {
        "_id": planned.notification_id,
        "type": planned.type,
        "channel": planned.channel,
        "audience": planned.audience,
        "recipient": planned.recipient.lower()
        if planned.audience == "customer"
        else planned.recipient,
        "contact_id": planned.contact_id,
        "partner_id": planned.recipient if planned.audience == "partner" else None,
        "partner_scope": planned.partner_scope,
        "entitlements": [_listed_to_doc(e) for e in planned.entitlements],
        "license_keys": planned.license_keys,
        "facts": dict(planned.facts),
        "related": list(planned.related_partner_ids),
        "occurred_at": planned.occurred_at,
        "contact_name": planned.contact_name,
        "org_name": planned.org_name,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "error": None,
        "created_at": now,
        "finished_at": None,
    }
    if traceparent:
        doc["traceparent"] = traceparent
    return doc


def delivery_from_doc(doc: Mapping[str, Any]) -> DeliveryState:
    planned = PlannedDelivery(
        notification_id=doc["_id"],
        type=doc["type"],
        channel=doc["channel"],
        audience=doc["audience"],
        recipient=doc["recipient"],
        partner_scope=doc.get("partner_scope"),
        entitlements=tuple(_listed_from_doc(e) for e in doc.get("entitlements", [])),
        occurred_at=doc["occurred_at"],
        facts=doc.get("facts") or {},
        related_partner_ids=tuple(doc.get("related") or ()),
        contact_name=doc.get("contact_name", ""),
        org_name=doc.get("org_name", ""),
    )
    return DeliveryState(
        planned=planned,
        status=doc["status"],
        attempts=int(doc.get("attempts", 0)),
        next_attempt_at=doc["next_attempt_at"],
        error=doc.get("error"),
        created_at=doc.get("created_at"),
        finished_at=doc.get("finished_at"),
        error_detail=doc.get("error_detail"),
        traceparent=doc.get("traceparent"),
    )


class MongoDeliveries:
    """Delivery records: written before sending, marked after, published from an outbox."""

    def __init__(self, db: Db) -> None:
        self.collection = db[DELIVERIES]
        self.outbox = db[DELIVERY_OUTBOX]

    async def plan(
        self,
        planned: Sequence[PlannedDelivery],
        now: dt.datetime,
        *,
        traces: Mapping[str, str] | None = None,
    ) -> int:
        if not planned:
            return 0
        traces = traces or {}
        docs = list(
            {
                p.notification_id: delivery_to_doc(p, now, traces.get(p.notification_id))
                for p in planned
            }.values()
        )
        try:
            result = await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            others = [
                e for e in error.details.get("writeErrors", []) if e["code"] != _DUPLICATE_KEY
            ]
            if others:
                raise
            return int(error.details.get("nInserted", 0))
        return len(result.inserted_ids)

    async def due(self, now: dt.datetime, limit: int) -> list[DeliveryState]:
        # The embedded database reads the whole index range before it sorts and
        # limits: the dispatcher keeps `now` close to the oldest due record.
        cursor = (
            self.collection.find({"status": "pending", "next_attempt_at": {"$lte": now}})
            .sort([("next_attempt_at", ASCENDING)])
            .limit(limit)
        )
        return [delivery_from_doc(doc) async for doc in cursor]

    async def settle(self, states: Sequence[DeliveryState], *, published: bool) -> None:
        """Write each record's new state, if it is still pending, in as few statements as can be.

        Records that end the same way (status, attempts, error, time) share one
        `update_many` by id: on the embedded database every statement is a
        transaction commit, so a wave costs one, not one per message. A retried
        record keeps its own next attempt time and so its own statement.

        Final records whose outcome is not `published` go into the outbox
        collection first (one more write, only while the broker is failing): a
        crash in between leaves an outbox entry for a record still pending,
        which `unpublished` drops (it is sent again and settled then).
        """
        if not states:
            return
        if not published:
            await _into_outbox(
                self.outbox,
                [s.planned.notification_id for s in states if s.status in FINAL_STATUSES],
            )
        finals: dict[tuple[Any, ...], list[str]] = {}
        writes: list[UpdateOne | UpdateMany] = []
        for state in states:
            notification_id = state.planned.notification_id
            if state.status == "pending":
                fields: Doc = {
                    "status": state.status,
                    "attempts": state.attempts,
                    "error": state.error,
                    "next_attempt_at": state.next_attempt_at,
                }
                writes.append(
                    UpdateOne({"_id": notification_id, "status": "pending"}, {"$set": fields})
                )
                continue
            key = (
                state.status,
                state.attempts,
                state.error,
                state.error_detail,
                state.finished_at,
            )
            finals.setdefault(key, []).append(notification_id)
        for (status, attempts, error, error_detail, finished_at), ids in finals.items():
            fields = {
                "status": status,
                "attempts": attempts,
                "error": error,
                "finished_at": finished_at,
            }
            if error_detail is not None:
                fields["error_detail"] = error_detail
            # A one-time link's token is needed until the mail went (or never will):
            # then it is dropped, so the database keeps no usable secret (CONTRACT 6.2, 6.9).
            update = {"$set": fields, "$unset": dict.fromkeys(SECRET_FACTS, "")}
            writes.append(UpdateMany({"_id": {"$in": ids}, "status": "pending"}, update))
        await self.collection.bulk_write(writes, ordered=False)

    async def unpublished(self, limit: int) -> list[DeliveryState]:
        while True:
            ids = [doc["_id"] async for doc in self.outbox.find({}).limit(limit)]
            if not ids:
                return []
            cursor = self.collection.find({"_id": {"$in": ids}})
            found = [delivery_from_doc(doc) async for doc in cursor]
            final = [s for s in found if s.status in FINAL_STATUSES]
            if final:
                return final
            # Only records still pending (a crash between the outbox and the settle
            # write): their outcome comes when they are settled, not from here.
            await self.outbox.delete_many({"_id": {"$in": ids}})

    async def mark_published(self, notification_ids: Sequence[str]) -> None:
        if notification_ids:
            await self.outbox.delete_many({"_id": {"$in": list(notification_ids)}})

    async def get(self, notification_id: str) -> DeliveryState | None:
        doc = await self.collection.find_one({"_id": notification_id})
        return delivery_from_doc(doc) if doc else None
