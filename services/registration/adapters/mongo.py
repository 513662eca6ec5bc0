"""MongoDB adapters: the repositories, the unit of work (one transaction) and the indexes.

Reads happen outside the transaction; every write of an aggregate carries the
version it was read at, so a concurrent writer makes the commit fail with
ConcurrentUpdate (and the use case runs again) instead of losing an update.
Large `$in` reads go in chunks: the embedded database answers them far faster
that way, and a real MongoDB does not mind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.registration.adapters import documents
from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Partner
from services.registration.service_layer.unit_of_work import (
    ConcurrentUpdate,
    ConflictRepository,
    DuplicateKey,
    EntitlementRepository,
    PartnerRepository,
    ProcessedOrder,
    ProcessedOrderRepository,
    UnitOfWork,
)

Db = AsyncDatabase[dict[str, Any]]
Collection = AsyncCollection[dict[str, Any]]

PARTNERS = "partners"
ENTITLEMENTS = "entitlements"
CONFLICTS = "attribution_conflicts"
PROCESSED_ORDERS = "processed_orders"
OUTBOX = "outbox"

READ_CHUNK = 50


async def _find_in(
    collection: Collection, field: str, values: Sequence[str], projection: Any = None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), READ_CHUNK):
        chunk = list(values[start : start + READ_CHUNK])
        query = {field: chunk[0]} if len(chunk) == 1 else {field: {"$in": chunk}}
        found.extend(await collection.find(query, projection).to_list())
    return found


async def ensure_indexes(db: Db) -> None:
    """Idempotent; run at start-up by the API and the worker."""
    await db[PARTNERS].create_indexes(
        [
            IndexModel([("seller_code", ASCENDING)], unique=True, name="seller_code_unique"),
            IndexModel([("api_key_hash", ASCENDING)], unique=True, name="api_key_hash_unique"),
        ]
    )
    await db[ENTITLEMENTS].create_indexes(
        [
            IndexModel(
                [("partner_of_record.partner_id", ASCENDING), ("_id", ASCENDING)],
                name="partner_of_record",
            ),
        ]
    )
    await db[CONFLICTS].create_indexes(
        [
            IndexModel([("license_key", ASCENDING)], name="license_key"),
            IndexModel([("claimant_partner_id", ASCENDING)], name="claimant"),
            IndexModel([("partner_of_record.partner_id", ASCENDING)], name="partner_of_record"),
            IndexModel([("recorded_at", DESCENDING)], name="recorded_at"),
        ]
    )
    await db[PROCESSED_ORDERS].create_indexes(
        [
            IndexModel([("order_ids", ASCENDING)], name="order_ids"),
            IndexModel([("event_ids", ASCENDING)], name="event_ids"),
            IndexModel([("license_keys", ASCENDING)], name="license_keys"),
        ]
    )
    await db[OUTBOX].create_indexes(
        [IndexModel([("sent_at", ASCENDING), ("created_at", ASCENDING)], name="unsent")]
    )


class MongoPartnerRepository(PartnerRepository):
    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[PARTNERS]

    # Change tracking by document form: cheaper than a deep copy, and exactly what
    # would be written.
    def _snapshot(self, entity: Partner) -> Any:
        return documents.partner_to_doc(entity, entity.version)

    def _changed(self, entity: Partner, snapshot: Any) -> bool:
        return bool(documents.partner_to_doc(entity, entity.version) != snapshot)

    async def _fetch(self, partner_ids: list[str]) -> list[Partner]:
        docs = await _find_in(self._collection, "_id", partner_ids)
        return [documents.partner_from_doc(d) for d in docs]

    async def _fetch_by_seller_codes(self, codes: list[str]) -> list[Partner]:
        docs = await _find_in(self._collection, "seller_code", codes)
        return [documents.partner_from_doc(d) for d in docs]

    async def _fetch_by_api_key_hash(self, key_hash: str) -> Partner | None:
        doc = await self._collection.find_one({"api_key_hash": key_hash})
        return documents.partner_from_doc(doc) if doc is not None else None


class MongoEntitlementRepository(EntitlementRepository):
    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[ENTITLEMENTS]

    def _snapshot(self, entity: Entitlement) -> Any:
        return documents.entitlement_to_doc(entity, entity.version)

    def _changed(self, entity: Entitlement, snapshot: Any) -> bool:
        return bool(documents.entitlement_to_doc(entity, entity.version) != snapshot)

    async def _fetch(self, license_keys: list[str]) -> list[Entitlement]:
        docs = await _find_in(self._collection, "_id", license_keys)
        return [documents.entitlement_from_doc(d) for d in docs]

    async def list_for_partner(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[Entitlement]:
        query: dict[str, Any] = {"partner_of_record.partner_id": partner_id}
        if term_end_before is not None:
            query["term_end"] = {"$lt": term_end_before.isoformat()}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self._collection.find(query).sort("_id", ASCENDING).limit(limit)
        return [documents.entitlement_from_doc(d) async for d in cursor]


class MongoConflictRepository(ConflictRepository):
    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[CONFLICTS]

    async def query(
        self,
        *,
        license_key: str | None = None,
        partner_id: str | None = None,
        limit: int = 100,
    ) -> list[AttributionConflict]:
        query: dict[str, Any] = {}
        if license_key is not None:
            query["license_key"] = license_key
        if partner_id is not None:
            query["$or"] = [
                {"claimant_partner_id": partner_id},
                {"partner_of_record.partner_id": partner_id},
            ]
        cursor = self._collection.find(query).sort("recorded_at", DESCENDING).limit(limit)
        return [documents.conflict_from_doc(d) async for d in cursor]


class MongoProcessedOrderRepository(ProcessedOrderRepository):
    """Processed orders are stored a committed batch per document (see `processed_batch_doc`)."""

    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[PROCESSED_ORDERS]

    async def find(
        self, order_ids: Iterable[str], event_ids: Iterable[str]
    ) -> list[ProcessedOrder]:
        orders, events = set(order_ids), set(event_ids)
        if not orders and not events:
            return []
        # Two indexed queries: an `$or` over two multikey indexes is a scan on some servers.
        docs: dict[str, dict[str, Any]] = {}
        for field, values in (("order_ids", orders), ("event_ids", events)):
            if values:
                async for doc in self._collection.find({field: {"$in": sorted(values)}}):
                    docs.setdefault(doc["_id"], doc)
        found: dict[str, ProcessedOrder] = {}
        for doc in docs.values():
            for entry in doc["orders"]:
                if entry["order_id"] in orders or entry["event_id"] in events:
                    found.setdefault(entry["order_id"], documents.processed_from_doc(entry))
        return list(found.values())

    async def for_license_key(self, license_key: str, limit: int = 50) -> list[ProcessedOrder]:
        cursor = self._collection.find({"license_keys": license_key}, {"orders.outputs": 0})
        found = [
            documents.processed_from_doc(entry)
            async for doc in cursor
            for entry in doc["orders"]
            if license_key in entry.get("license_keys", [])
        ]
        found.sort(key=lambda p: p.occurred_at, reverse=True)
        return found[:limit]


PROCESSED_DOC_BYTES = 4 * 1024 * 1024


def _chunks_by_size(processed: list[ProcessedOrder]) -> list[list[ProcessedOrder]]:
    """Split a batch so no processed-orders document nears MongoDB's 16 MB limit."""
    chunks: list[list[ProcessedOrder]] = [[]]
    size = 0
    for record in processed:
        record_size = 1024 + sum(len(r.value) + len(r.key) + 64 for r in record.outputs)
        if chunks[-1] and size + record_size > PROCESSED_DOC_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += record_size
    return chunks


def _is_duplicate(error: BulkWriteError) -> str | None:
    """The index a bulk write's duplicate-key error hit, if that is what failed."""
    for item in error.details.get("writeErrors", []):
        if item.get("code") == 11000:
            pattern = item.get("keyPattern") or {}
            return next(iter(pattern), "_id")
    return None


class MongoUnitOfWork(UnitOfWork):
    def __init__(
        self,
        db: Db,
        *,
        on_events_committed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._db = db
        self._on_events_committed = on_events_committed
        self.partners = MongoPartnerRepository(db)
        self.entitlements = MongoEntitlementRepository(db)
        self.conflicts = MongoConflictRepository(db)
        self.processed_orders = MongoProcessedOrderRepository(db)

    async def _commit(self) -> None:
        new_partners, changed_partners = self.partners.pending()
        new_entitlements, changed_entitlements = self.entitlements.pending()
        conflicts = self.conflicts.added
        processed = self.processed_orders.added
        events = self.events
        if not any(
            (
                new_partners,
                changed_partners,
                new_entitlements,
                changed_entitlements,
                conflicts,
                processed,
                events,
            )
        ):
            return
        client = self._db.client
        try:
            async with client.start_session() as session, await session.start_transaction():
                await self._write_versioned(
                    self._db[PARTNERS],
                    new_partners,
                    changed_partners,
                    lambda p, v: documents.partner_to_doc(p, v),
                    session,
                )
                await self._write_versioned(
                    self._db[ENTITLEMENTS],
                    new_entitlements,
                    changed_entitlements,
                    lambda e, v: documents.entitlement_to_doc(e, v),
                    session,
                )
                if conflicts:
                    # Deterministic ids: a replayed order records its conflict once.
                    await self._db[CONFLICTS].bulk_write(
                        [
                            ReplaceOne(
                                {"_id": c.conflict_id}, documents.conflict_to_doc(c), upsert=True
                            )
                            for c in conflicts
                        ],
                        session=session,
                    )
                if processed:
                    await self._db[PROCESSED_ORDERS].insert_many(
                        [
                            documents.processed_batch_doc(uuid.uuid4().hex, chunk)
                            for chunk in _chunks_by_size(processed)
                        ],
                        session=session,
                    )
                if events:
                    await self._db[OUTBOX].insert_many(self._outbox_docs(), session=session)
        except BulkWriteError as error:
            index = _is_duplicate(error)
            if index is None:
                raise
            if "seller_code" in index:
                raise DuplicateKey("seller_code") from None
            raise ConcurrentUpdate(f"duplicate key on {index}") from None
        except DuplicateKeyError as error:
            pattern = (error.details or {}).get("keyPattern") or {"_id": 1}
            field = next(iter(pattern))
            if "seller_code" in field:
                raise DuplicateKey("seller_code") from None
            raise ConcurrentUpdate(f"duplicate key on {field}") from None
        except OperationFailure as error:
            if error.has_error_label("TransientTransactionError") or error.code == 112:
                raise ConcurrentUpdate("write conflict") from None
            raise
        for partner in (*new_partners, *changed_partners):
            partner.version += 1
        for entitlement in (*new_entitlements, *changed_entitlements):
            entitlement.version += 1
        if events and self._on_events_committed is not None:
            self._on_events_committed()

    def _outbox_docs(self) -> list[dict[str, Any]]:
        created_at = dt.datetime.now(dt.UTC)
        batch = uuid.uuid4().hex
        return [
            {
                "_id": event.event_id,
                "topic": event.topic,
                "key": event.key,
                "value": event.value(),
                "version": event.aggregate_version,
                "created_at": created_at,
                "batch": batch,
                "seq": seq,
                "sent_at": None,
            }
            for seq, event in enumerate(self.events)
        ]

    @staticmethod
    async def _write_versioned(
        collection: Collection,
        new: list[Any],
        changed: list[Any],
        to_doc: Callable[[Any, int], dict[str, Any]],
        session: AsyncClientSession,
    ) -> None:
        if not new and not changed:
            return
        operations: list[Any] = [InsertOne(to_doc(entity, 1)) for entity in new]
        for entity in changed:
            doc = to_doc(entity, entity.version + 1)
            operations.append(ReplaceOne({"_id": doc["_id"], "version": entity.version}, doc))
        result = await collection.bulk_write(operations, ordered=True, session=session)
        if result.matched_count != len(changed):
            raise ConcurrentUpdate(f"{collection.name}: changed since read")
