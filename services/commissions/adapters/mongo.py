"""MongoDB storage of the commissions service: order lines, refund ids, rate tables, outbox.

Collections (database `COMMISSIONS_MONGO_DB`):

- `order_lines`: one document per order line (the aggregate: decision, ledger
  lines, refunds, the source records applied), `_id = "<order_id>/<line_id>"`,
  version `v` for optimistic concurrency, and `w`, the token of the worker's write
  that replaced it last (so a writer that lost the version check knows it lost).
  No secondary index: on the hot path every index entry costs more than the
  document itself.
- `partner_refs`: which order lines hold lines of a partner in a month, one small
  document per (partner, month) per write batch; index `(partner_id, month)`.
  Written before the order lines they name, so a reference may point at an order
  line not yet stored (ignored), never the other way round.
- `refund_ids`: `_id = refund_id` -> the order line it belongs to.
- `rate_tables`: `_id = version`; version 1 seeded on first start.
- `rate_overrides`: `_id = "<version>/<position>"`, one document per entry of a PUT.
- Adjustments are order-line documents too, `_id = "adjustment/<Idempotency-Key>"`,
  inserted with their partner reference and outbox message in one transaction.
- `outbox`, `counters`: the transactional outbox of API-made transitions; `leases`: the
  relay's lease (chassis.lease).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

from pymongo import ASCENDING, InsertOne, ReplaceOne, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.commissions.adapters.documents import (
    aggregate_from_doc,
    aggregate_to_doc,
    rate_override_from_doc,
    rate_override_to_doc,
    rate_table_from_doc,
    rate_table_to_doc,
)
from services.commissions.domain.order_line import OrderLineCommission, OrderLineKey
from services.commissions.domain.periods import Month
from services.commissions.domain.rates import (
    DEFAULT_RATE_TABLE,
    RateBook,
    RateOverride,
    RateTable,
)
from services.commissions.service_layer.ports import OutboxMessage

Db = AsyncDatabase[dict[str, Any]]

ORDER_LINES: Final = "order_lines"
PARTNER_REFS: Final = "partner_refs"
REFUND_IDS: Final = "refund_ids"
RATE_TABLES: Final = "rate_tables"
RATE_OVERRIDES: Final = "rate_overrides"
OUTBOX: Final = "outbox"
COUNTERS: Final = "counters"

# The embedded database answers large $in lists slowly; chunks keep lookups linear.
IN_CHUNK: Final = 100
DUPLICATE_KEY: Final = 11000
WRITER: Final = "w"
"""An order line's field naming the `update` call that wrote it (a random token)."""


async def prepare(db: Db) -> None:
    """Indexes and the default rate table; idempotent, safe for racing processes."""
    await db[PARTNER_REFS].create_index(
        [("partner_id", ASCENDING), ("month", ASCENDING)], name="partner_month"
    )
    with contextlib.suppress(DuplicateKeyError):
        await db[RATE_TABLES].insert_one(rate_table_to_doc(DEFAULT_RATE_TABLE))


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _duplicate_indexes(error: BulkWriteError) -> set[int]:
    problems = error.details.get("writeErrors", [])
    other = [p for p in problems if p.get("code") != DUPLICATE_KEY]
    if other:
        raise error
    return {int(p["index"]) for p in problems}


def _partner_refs(lines: Sequence[OrderLineCommission]) -> list[dict[str, Any]]:
    keys_by_bucket: dict[tuple[str, str], set[str]] = {}
    for aggregate in lines:
        for entry in aggregate.lines:
            bucket = (entry.partner_id, str(Month.of(entry.occurred_at)))
            keys_by_bucket.setdefault(bucket, set()).add(aggregate.key.text)
    return [
        {"partner_id": partner_id, "month": month, "keys": sorted(keys)}
        for (partner_id, month), keys in sorted(keys_by_bucket.items())
    ]


def _months(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, str]:
    """The `month` condition covering [start, end): "YYYY-MM" strings compare in order."""
    condition = {}
    if start is not None:
        condition["$gte"] = str(Month.of(start))
    if end is not None:
        condition["$lte"] = str(Month.of(end - dt.timedelta(milliseconds=1)))
    return condition


class MongoOrderLines:
    def __init__(self, db: Db) -> None:
        self._coll = db[ORDER_LINES]
        self._refs = db[PARTNER_REFS]

    async def _reference(self, lines: Sequence[OrderLineCommission]) -> None:
        refs = _partner_refs(lines)
        if refs:
            await self._refs.insert_many(refs, ordered=False)

    async def _referenced(
        self, partner_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[str]:
        query: dict[str, Any] = {"partner_id": partner_id}
        months = _months(start, end)
        if months:
            query["month"] = months
        keys: set[str] = set()
        async for doc in self._refs.find(query, {"keys": 1}):
            keys.update(doc["keys"])
        return sorted(keys)

    async def _load(self, texts: Sequence[str]) -> list[OrderLineCommission]:
        found: list[OrderLineCommission] = []
        for chunk in _chunks(texts):
            async for doc in self._coll.find({"_id": {"$in": list(chunk)}}):
                found.append(aggregate_from_doc(doc))
        return sorted(found, key=lambda line: line.key.text)

    async def get_many(
        self, keys: Collection[OrderLineKey]
    ) -> dict[OrderLineKey, OrderLineCommission]:
        return {line.key: line for line in await self._load(sorted({k.text for k in keys}))}

    async def add(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        if not lines:
            return set()
        await self._reference(lines)
        existing: set[int] = set()
        try:
            await self._coll.insert_many(
                [aggregate_to_doc(line, 1) for line in lines], ordered=False
            )
        except BulkWriteError as error:
            existing = _duplicate_indexes(error)
        for number, line in enumerate(lines):
            if number not in existing:
                line.version, line.dirty = 1, False
        return {lines[number].key for number in existing}

    async def update(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        if not lines:
            return set()
        await self._reference(lines)
        # Each replacement carries this call's token: a version number alone cannot tell
        # our v+1 from that of another writer who read the same v and got there first.
        token = uuid.uuid4().hex
        requests = [
            ReplaceOne(
                {"_id": line.key.text, "v": line.version},
                {**aggregate_to_doc(line, line.version + 1), WRITER: token},
            )
            for line in lines
        ]
        result = await self._coll.bulk_write(requests, ordered=False)
        if result.matched_count == len(lines):
            for line in lines:
                line.version, line.dirty = line.version + 1, False
            return set()
        # Some were changed by someone else: find which by their stored version and token.
        stored: dict[str, tuple[int, str | None]] = {}
        for chunk in _chunks([line.key.text for line in lines]):
            async for doc in self._coll.find({"_id": {"$in": list(chunk)}}, {"v": 1, WRITER: 1}):
                stored[doc["_id"]] = (int(doc["v"]), doc.get(WRITER))
        conflicts = set()
        for line in lines:
            if stored.get(line.key.text) == (line.version + 1, token):
                line.version, line.dirty = line.version + 1, False
            else:
                conflicts.add(line.key)
        return conflicts

    async def for_partner(
        self, partner_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[OrderLineCommission]:
        return await self._load(await self._referenced(partner_id, start, end))

    async def search(
        self, *, order_id: str | None, partner_id: str | None, limit: int
    ) -> list[OrderLineCommission]:
        if partner_id is not None:
            texts = await self._referenced(partner_id, None, None)
            if order_id is not None:
                texts = [t for t in texts if t.startswith(f"{order_id}/")]
            found = await self._load(texts[:limit])
        else:
            query: dict[str, Any] = {}
            if order_id is not None:
                # From "<order_id>/" up to "<order_id>0" ("0" follows "/"): found by the _id index.
                query["_id"] = {"$gte": f"{order_id}/", "$lt": f"{order_id}0"}
            cursor = self._coll.find(query).sort("_id", 1).limit(limit)
            found = [aggregate_from_doc(doc) async for doc in cursor]
        return [line for line in found if order_id is None or line.key.order_id == order_id]

    async def due(
        self, as_of: dt.datetime, after: OrderLineKey | None, limit: int
    ) -> list[OrderLineCommission]:
        query: dict[str, Any] = {"due_at": {"$ne": None, "$lte": as_of}}
        if after is not None:
            query["_id"] = {"$gt": after.text}
        cursor = self._coll.find(query).sort("_id", 1).limit(limit)
        return [aggregate_from_doc(doc) async for doc in cursor]


class MongoRefundRegistry:
    def __init__(self, db: Db) -> None:
        self._coll = db[REFUND_IDS]

    async def claim(self, claims: Mapping[str, OrderLineKey]) -> dict[str, OrderLineKey]:
        if not claims:
            return {}
        ids = list(claims)
        owners = dict(claims)
        try:
            await self._coll.insert_many(
                [
                    {"_id": rid, "order_id": k.order_id, "line_id": k.line_id}
                    for rid, k in claims.items()
                ],
                ordered=False,
            )
            return owners
        except BulkWriteError as error:
            taken = [ids[number] for number in _duplicate_indexes(error)]
        for chunk in _chunks(taken):
            async for doc in self._coll.find({"_id": {"$in": list(chunk)}}):
                owners[doc["_id"]] = OrderLineKey(doc["order_id"], doc["line_id"])
        return owners


class MongoRateTables:
    def __init__(self, db: Db) -> None:
        self._coll = db[RATE_TABLES]
        self._overrides = db[RATE_OVERRIDES]

    async def book(self) -> RateBook:
        tables = [rate_table_from_doc(doc) async for doc in self._coll.find({})]
        overrides = [rate_override_from_doc(doc) async for doc in self._overrides.find({})]
        return RateBook(tables or [DEFAULT_RATE_TABLE], overrides)

    async def add_overrides(self, entries: Sequence[RateOverride]) -> bool:
        """False, with nothing written, when that version exists already."""
        try:
            await self._overrides.insert_many(
                [rate_override_to_doc(entry) for entry in entries], ordered=True
            )
        except BulkWriteError as error:
            if _duplicate_indexes(error) != {0}:
                raise
            return False
        return True

    async def add(self, table: RateTable) -> bool:
        try:
            await self._coll.insert_one(rate_table_to_doc(table))
        except DuplicateKeyError:
            return False
        return True


class _Conflict(Exception):
    pass


class MongoTransitions:
    """Order-line changes and their outbox messages in one MongoDB transaction."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def commit(
        self, lines: Sequence[OrderLineCommission], messages: Sequence[OutboxMessage]
    ) -> bool:
        async def body(session: AsyncClientSession) -> None:
            # New aggregates (an adjustment) are inserted with their partner references;
            # a duplicate _id aborts the whole transaction.
            fresh = [line for line in lines if line.version == 0]
            for line in fresh:
                await self._db[ORDER_LINES].insert_one(aggregate_to_doc(line, 1), session=session)
            refs = _partner_refs(fresh)
            if refs:
                await self._db[PARTNER_REFS].insert_many(refs, session=session)
            requests = [
                ReplaceOne(
                    {"_id": line.key.text, "v": line.version},
                    aggregate_to_doc(line, line.version + 1),
                )
                for line in lines
                if line.version
            ]
            if requests:
                result = await self._db[ORDER_LINES].bulk_write(requests, session=session)
                if result.matched_count != len(requests):
                    raise _Conflict
            if messages:
                # The counter is written in this transaction: concurrent transitions
                # serialise on it (write conflict, retried), so sequence numbers become
                # visible in order and an aborted transaction leaves no gap.
                counter = await self._db[COUNTERS].find_one_and_update(
                    {"_id": "outbox"},
                    {"$inc": {"seq": len(messages)}, "$setOnInsert": {"epoch": uuid.uuid4().hex}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                assert counter is not None  # upsert with ReturnDocument.AFTER
                first = int(counter["seq"]) - len(messages) + 1
                await self._db[OUTBOX].bulk_write(
                    [
                        InsertOne(
                            {
                                "_id": first + number,
                                "event_id": m.event_id,
                                "topic": m.topic,
                                "key": m.key,
                                "value": m.value,
                                "published": False,
                            }
                        )
                        for number, m in enumerate(messages)
                    ],
                    session=session,
                )

        async with self._db.client.start_session() as session:
            try:
                await session.with_transaction(body)
            except (_Conflict, DuplicateKeyError):
                return False
        for line in lines:
            line.version, line.dirty = line.version + 1, False
        return True


class MongoOutbox:
    def __init__(self, db: Db) -> None:
        self._coll = db[OUTBOX]
        self._counters = db[COUNTERS]

    async def after(self, seq: int, limit: int) -> list[OutboxMessage]:
        cursor = self._coll.find({"_id": {"$gt": seq}}).sort("_id", 1).limit(limit)
        return [
            OutboxMessage(
                event_id=doc["event_id"],
                topic=doc["topic"],
                key=bytes(doc["key"]),
                value=bytes(doc["value"]),
                seq=int(doc["_id"]),
            )
            async for doc in cursor
        ]

    async def identity(self) -> tuple[str, int] | None:
        counter = await self._counters.find_one({"_id": "outbox"})
        if counter is None:
            return None
        cursor = self._coll.find({"published": True}, {"_id": 1}).sort("_id", -1).limit(1)
        marks = [int(doc["_id"]) async for doc in cursor]
        return str(counter["epoch"]), marks[0] if marks else 0

    async def mark_published(self, up_to_seq: int) -> None:
        await self._coll.update_many(
            {"_id": {"$lte": up_to_seq}, "published": False}, {"$set": {"published": True}}
        )
