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
from types import TracebackType
from typing import Any, Self

from pymongo import ASCENDING, DESCENDING, DeleteMany, IndexModel, InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ClientBulkWriteException,
    DuplicateKeyError,
    OperationFailure,
)

from chassis import tracing
from services.registration.adapters import documents
from services.registration.adapters.deals import (
    DEALS,
    MongoDealRepository,
    deal_to_doc,
    ensure_deal_indexes,
)
from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Partner
from services.registration.service_layer.admission import Admission
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

CLIENT_BULK_WRITE_WIRE_VERSION = 25
"""MongoDB 8.0: the client-level `bulkWrite` command (writes to many collections)."""

ONE_COMMAND_MAX_OPS = 32
"""Commits of up to this many writes (an API use case) go as one `bulkWrite`: one
statement of the transaction instead of one per collection. Larger ones (an order
batch) go per collection: the embedded database runs a big `bulkWrite` a document
at a time, several times slower than the same documents in `insert` / `delete`."""

REWRITE_AT = 16
"""From this many changed documents in one commit, rewrite them (a versioned delete,
then an insert) instead of one replace each: the embedded database runs a replace
at a few times the cost of a delete plus an insert."""


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
            # Sparse: only entitlements with a contact change waiting (CONTRACT 6.9).
            IndexModel(
                [("pending_contact.token_hash", ASCENDING)],
                name="pending_contact_token",
                sparse=True,
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
    await ensure_deal_indexes(db)


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

    async def page(self, *, after: str | None, limit: int) -> list[Partner]:
        query: dict[str, Any] = {"_id": {"$gt": after}} if after is not None else {}
        cursor = self._collection.find(query).sort("_id", ASCENDING).limit(limit)
        return [documents.partner_from_doc(d) async for d in cursor]


class MongoEntitlementRepository(EntitlementRepository):
    def __init__(self, db: Db) -> None:
        super().__init__()
        self._collection = db[ENTITLEMENTS]
        self._compared: dict[str, dict[str, Any]] = {}

    def _snapshot(self, entity: Entitlement) -> Any:
        return documents.entitlement_to_doc(entity, entity.version)

    def _changed(self, entity: Entitlement, snapshot: Any) -> bool:
        doc = documents.entitlement_to_doc(entity, entity.version)
        if doc == snapshot:
            return False
        # What the commit writes, less the version: no second conversion.
        self._compared[entity.license_key] = doc
        return True

    def to_doc(self, entity: Entitlement, version: int) -> dict[str, Any]:
        compared = self._compared.pop(entity.license_key, None)
        if compared is None:
            return documents.entitlement_to_doc(entity, version)
        compared["version"] = version
        return compared

    async def _fetch(self, license_keys: list[str]) -> list[Entitlement]:
        docs = await _find_in(self._collection, "_id", license_keys)
        return [documents.entitlement_from_doc(d) for d in docs]

    async def _fetch_by_contact_token_hash(self, token_hash: str) -> Entitlement | None:
        doc = await self._collection.find_one({"pending_contact.token_hash": token_hash})
        return documents.entitlement_from_doc(doc) if doc is not None else None

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
    return _is_duplicate_item(error.details.get("writeErrors", []))


def _is_duplicate_item(items: Iterable[Any]) -> str | None:
    for item in items:
        if item.get("code") == 11000:
            pattern = item.get("keyPattern") or {}
            return next(iter(pattern), "_id")
    return None


class _WritePlan:
    """A commit's writes, in order, with the optimistic checks they carry.

    A few writes on a server with the client-level `bulkWrite` command (MongoDB
    8.0, wire version 25) go as one command, one statement of the transaction;
    otherwise as one bulk write per run of one collection. Version-checked
    replaces must each match a document, version-checked deletes must delete
    as many as expected; otherwise another writer got there first.
    """

    def __init__(self) -> None:
        # (collection, kind, arguments); kind is insert / replace / delete_many.
        self.ops: list[tuple[str, str, dict[str, Any]]] = []
        self.checked_replaces: set[int] = set()
        self.deletes: dict[int, int] = {}

    def insert(self, collection: str, doc: dict[str, Any]) -> None:
        self.ops.append((collection, "insert", {"document": doc}))

    def replace(
        self,
        collection: str,
        filter: dict[str, Any],
        doc: dict[str, Any],
        *,
        upsert: bool = False,
        checked: bool = False,
    ) -> None:
        if checked:
            self.checked_replaces.add(len(self.ops))
        self.ops.append(
            (collection, "replace", {"filter": filter, "replacement": doc, "upsert": upsert})
        )

    def delete_many(self, collection: str, filter: dict[str, Any], expect: int) -> None:
        self.deletes[len(self.ops)] = expect
        self.ops.append((collection, "delete_many", {"filter": filter}))

    def versioned(
        self,
        collection: str,
        new: list[Any],
        changed: list[Any],
        to_doc: Callable[[Any, int], dict[str, Any]],
    ) -> None:
        """New aggregates at version 1; changed ones at the next version, if still as read."""
        if len(changed) < REWRITE_AT:
            for entity in new:
                self.insert(collection, to_doc(entity, 1))
            for entity in changed:
                doc = to_doc(entity, entity.version + 1)
                filter = {"_id": doc["_id"], "version": entity.version}
                self.replace(collection, filter, doc, checked=True)
            return
        # Many changed documents (an order batch): delete them as read (by id and
        # version, a statement per version and chunk), then insert them anew. Same
        # outcome and the same optimistic check as a replace each, at a fraction of
        # the cost on the embedded database.
        docs = [to_doc(entity, entity.version + 1) for entity in changed]
        by_version: dict[int, list[str]] = {}
        for entity, doc in zip(changed, docs, strict=True):
            by_version.setdefault(entity.version, []).append(doc["_id"])
        for version, ids in by_version.items():
            for start in range(0, len(ids), READ_CHUNK):
                chunk = ids[start : start + READ_CHUNK]
                filter = {"_id": {"$in": chunk}, "version": version}
                self.delete_many(collection, filter, len(chunk))
        for entity in new:
            self.insert(collection, to_doc(entity, 1))
        for doc in docs:
            self.insert(collection, doc)

    async def execute(self, db: Db, session: AsyncClientSession) -> None:
        if not self.ops:
            return
        wire = db.client.topology_description.common_wire_version or 0
        if wire >= CLIENT_BULK_WRITE_WIRE_VERSION and len(self.ops) <= ONE_COMMAND_MAX_OPS:
            await self._in_one_command(db, session)
        else:
            await self._per_collection(db, session)

    def _changed_since_read(self, collection: str) -> ConcurrentUpdate:
        return ConcurrentUpdate(f"{collection}: changed since read")

    async def _in_one_command(self, db: Db, session: AsyncClientSession) -> None:
        models: list[Any] = []
        for collection, kind, args in self.ops:
            namespace = f"{db.name}.{collection}"
            if kind == "insert":
                models.append(InsertOne(args["document"], namespace=namespace))
            elif kind == "replace":
                models.append(ReplaceOne(**args, namespace=namespace))
            else:
                models.append(DeleteMany(args["filter"], namespace=namespace))
        verbose = bool(self.checked_replaces)
        result = await db.client.bulk_write(
            models, session=session, ordered=True, verbose_results=verbose
        )
        if result.deleted_count != sum(self.deletes.values()):
            raise self._changed_since_read("a rewritten document")
        if verbose:
            updates = result.update_results
            for index in self.checked_replaces:
                update = updates.get(index)
                if update is None or update.matched_count != 1:
                    raise self._changed_since_read(self.ops[index][0])

    async def _per_collection(self, db: Db, session: AsyncClientSession) -> None:
        start = 0
        while start < len(self.ops):
            collection = self.ops[start][0]
            end = start
            while end < len(self.ops) and self.ops[end][0] == collection:
                end += 1
            requests: list[Any] = []
            for _, kind, args in self.ops[start:end]:
                if kind == "insert":
                    requests.append(InsertOne(args["document"]))
                elif kind == "replace":
                    requests.append(ReplaceOne(**args))
                else:
                    requests.append(DeleteMany(args["filter"]))
            result = await db[collection].bulk_write(requests, ordered=True, session=session)
            checked = sum(1 for i in range(start, end) if i in self.checked_replaces)
            deletes = sum(self.deletes.get(i, 0) for i in range(start, end))
            # Unchecked replaces (upserts) live in collections without checked ones.
            if checked and result.matched_count != checked:
                raise self._changed_since_read(collection)
            if result.deleted_count != deletes:
                raise self._changed_since_read(collection)
            start = end


class MongoUnitOfWork(UnitOfWork):
    def __init__(
        self,
        db: Db,
        *,
        on_events_committed: Callable[[], None] | None = None,
        admission: Admission | None = None,
    ) -> None:
        super().__init__()
        self._db = db
        self._on_events_committed = on_events_committed
        # The API's units of work take a place first (service_layer/admission.py);
        # the worker's batches run one at a time and need none.
        self._admission = admission
        self._admitted = False
        self.partners = MongoPartnerRepository(db)
        self._entitlements = MongoEntitlementRepository(db)
        self.entitlements = self._entitlements
        self.conflicts = MongoConflictRepository(db)
        self.processed_orders = MongoProcessedOrderRepository(db)
        self.deals = MongoDealRepository(db)

    async def __aenter__(self) -> Self:
        if self._admission is not None:
            await self._admission.acquire()
            self._admitted = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._admitted and self._admission is not None:
            self._admitted = False
            self._admission.release()

    async def _commit(self) -> None:
        new_partners, changed_partners = self.partners.pending()
        new_entitlements, changed_entitlements = self.entitlements.pending()
        new_deals, changed_deals = self.deals.pending()
        # One record per id, the last one recorded (what upserting each would leave).
        conflicts = list({c.conflict_id: c for c in self.conflicts.added}.values())
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
                new_deals,
                changed_deals,
            )
        ):
            return
        plan = _WritePlan()
        plan.versioned(PARTNERS, new_partners, changed_partners, documents.partner_to_doc)
        plan.versioned(
            ENTITLEMENTS, new_entitlements, changed_entitlements, self._entitlements.to_doc
        )
        plan.versioned(DEALS, new_deals, changed_deals, deal_to_doc)
        # Deterministic ids: a claim made again (a partner asking twice) replaces its
        # record; one made once (an order line) is inserted.
        for c in conflicts:
            doc = documents.conflict_to_doc(c)
            if c.conflict_id in self.conflicts.known_new:
                plan.insert(CONFLICTS, doc)
            else:
                plan.replace(CONFLICTS, {"_id": c.conflict_id}, doc, upsert=True)
        if processed:
            for chunk in _chunks_by_size(processed):
                plan.insert(
                    PROCESSED_ORDERS, documents.processed_batch_doc(uuid.uuid4().hex, chunk)
                )
        for doc in self._outbox_docs() if events else []:
            plan.insert(OUTBOX, doc)
        client = self._db.client
        try:
            async with client.start_session() as session, await session.start_transaction():
                await plan.execute(self._db, session)
        except ClientBulkWriteException as error:
            cause = error.error
            if isinstance(cause, OperationFailure) and (
                cause.has_error_label("TransientTransactionError") or cause.code == 112
            ):
                raise ConcurrentUpdate("write conflict") from None
            items: list[dict[str, Any]] = error.details.get("writeErrors") or []
            if any(item.get("code") == 112 for item in items):
                raise ConcurrentUpdate("write conflict") from None
            index = _is_duplicate_item(items)
            if index is None:
                raise
            if "seller_code" in index:
                raise DuplicateKey("seller_code") from None
            raise ConcurrentUpdate(f"duplicate key on {index}") from None
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
        for deal in (*new_deals, *changed_deals):
            deal.version += 1
        if events and self._on_events_committed is not None:
            self._on_events_committed()

    def _outbox_docs(self) -> list[dict[str, Any]]:
        created_at = dt.datetime.now(dt.UTC)
        batch = uuid.uuid4().hex
        # The API request's trace context (tracing on), published with the events.
        traceparent = tracing.current_traceparent()
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
                **({tracing.TRACEPARENT: traceparent} if traceparent else {}),
            }
            for seq, event in enumerate(self.events)
        ]
