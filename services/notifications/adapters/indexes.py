"""The indexes of the notifications database, created (and older versions' dropped) by
`ensure_indexes` before the worker and the API use it."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.errors import OperationFailure

from services.notifications.adapters.collections import (
    DELIVERIES,
    DELIVERY_OUTBOX,
    ENTITLEMENTS,
    Db,
)
from services.notifications.adapters.deliveries import _into_outbox

_INDEX_NOT_FOUND = 27
# Indexes of older versions, dropped at start-up: `recipient` and `(partner_id,
# created_at)` gave way to `(recipient, created_at)`, the `outbox` flag to a collection.
_LEGACY_OUTBOX_INDEX = "outbox_1"
_OBSOLETE_DELIVERY_INDEXES = frozenset(
    {"recipient_1", "partner_id_1_created_at_1", _LEGACY_OUTBOX_INDEX}
)


async def ensure_indexes(db: Db) -> None:
    """Idempotent; run by the worker and the API at start-up."""
    entitlements = db[ENTITLEMENTS]
    # Reminder pass: one due date at a time, grouped by contact, then by PoR scope.
    await entitlements.create_index(
        [("term_end", ASCENDING), ("contact_id", ASCENDING), ("por", ASCENDING)]
    )
    # Renewal opportunities: one due date, grouped by partner of record.
    await entitlements.create_index([("term_end", ASCENDING), ("por", ASCENDING)])
    # Advisory fan-out: affected products, walked in contact order (keyset pages).
    await entitlements.create_index([("product", ASCENDING), ("contact_id", ASCENDING)])
    # Partner digests: one partner's affected entitlements.
    await entitlements.create_index([("por", ASCENDING), ("product", ASCENDING)])
    # Every write of a delivery record (its insert, then its mark) maintains every one
    # of these, and the embedded database rewrites each of them on every update: only
    # what a query uses. The due read; the admin search by licence; and one
    # `(recipient, created_at)` for both the admin search by recipient and a
    # partner's delivery log (see `recipient_query`). The outbox is a collection of
    # its own (`MongoDeliveries.settle`), not an indexed flag on every record.
    deliveries = db[DELIVERIES]
    await deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
    await deliveries.create_index([("license_keys", ASCENDING)])
    await deliveries.create_index([("recipient", ASCENDING), ("created_at", ASCENDING)])
    existing = set(await deliveries.index_information())
    if _LEGACY_OUTBOX_INDEX in existing:
        # Records an older version left flagged: into the outbox collection first.
        flagged = [doc["_id"] async for doc in deliveries.find({"outbox": True}, {"_id": 1})]
        await _into_outbox(db[DELIVERY_OUTBOX], flagged)
        if flagged:
            await deliveries.update_many({"outbox": True}, {"$unset": {"outbox": ""}})
    for obsolete in _OBSOLETE_DELIVERY_INDEXES & existing:
        try:
            await deliveries.drop_index(obsolete)
        except OperationFailure as error:
            if error.code != _INDEX_NOT_FOUND:  # the API and the worker start together
                raise
