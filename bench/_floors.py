"""Each stage's floor: the least its own guarantees cannot avoid, on the same broker and database.

A stage's figure divided by its floor, measured in the same run, is what issue 20 aims
at; unlike a ratio to the bare Kafka passthrough, it does not count the durable writes
every design of the stage must make, so it is fair on any infrastructure.

- registration, per order: consume, one bulk upsert per entitlement (one document each),
  produce the event it must emit, offsets in the same Kafka transaction; no rules.
- commissions, per order line: consume, one bulk insert of its ledger document, produce
  its ledger events (two per line in the bench: partner and distributor), offsets in the
  same Kafka transaction.
- notifications, per message: one bulk insert of the delivery record, a pipelined SMTP
  send to the sink (the service's own pooled PIPELINING client), one bulk outcome write
  (an appended outcome record).

The Mongo writes of a batch go in one Mongo transaction, as the services' batches do;
the Kafka loop is `_passthrough`'s. Every line is the same shape for the guard in
`bench/_guard.py`:

    floor <stage>: <value>/s against a floor of <floor>/s, ratio 0.NN
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from pymongo import InsertOne, UpdateOne

from chassis.kafka import make_producer

FLOOR_PREFIX = "floor "

Write = Callable[[Sequence[ConsumerRecord[Any, Any]]], Awaitable[None]]


def floor_line(stage: str, value: float, floor: float) -> str:
    """The one line each benchmark prints (and `_guard.py` parses)."""
    return (
        f"{FLOOR_PREFIX}{stage}: {value:,.0f}/s against a floor of {floor:,.0f}/s,"
        f" ratio {value / floor:.2f}"
    )


async def _in_transaction(db: Any, write: Callable[[Any], Awaitable[Any]]) -> None:
    async with db.client.start_session() as session, await session.start_transaction():
        await write(session)


async def transactional_floor(
    bootstrap: str,
    source: str,
    out: str,
    events: int,
    *,
    write: Write,
    emits: int = 1,
    batch: int = 500,
) -> float:
    """Records per second: consume, `write` the batch, produce `emits` per record, exactly once.

    As in the passthrough, the clock starts at the first batch (the group join is not
    counted), and each produced record is the consumed value (a realistic envelope size).
    """
    group = f"bench-floor-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch,
    )
    producer = make_producer(bootstrap, transactional_id=f"{group}-tx")
    await consumer.start()
    await producer.start()
    done, started = 0, None
    try:
        while done < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=batch)
            if not batches:
                continue
            started = started or time.perf_counter()
            records = [r for rs in batches.values() for r in rs]
            await write(records)
            async with producer.transaction():
                futures = []
                for record in records:
                    for n in range(emits):
                        key = record.key if n == 0 else (record.key or b"") + b"/%d" % n
                        futures.append(await producer.send(out, record.value, key=key))
                await asyncio.gather(*futures)
                offsets = {
                    tp: OffsetAndMetadata(rs[-1].offset + 1, "") for tp, rs in batches.items()
                }
                await producer.send_offsets_to_transaction(offsets, group)
            done += len(records)
        return events / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()


def registration_write(db: Any) -> Write:
    """One bulk upsert of every entitlement (order line) in the batch, in one transaction."""
    entitlements = db["floor_entitlements"]

    async def write(records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        upserts = []
        for record in records:
            envelope = json.loads(record.value)
            order = envelope["data"]
            for line in order["lines"]:
                upserts.append(
                    UpdateOne(
                        {"_id": line["license_key"]},
                        {
                            "$set": {
                                "product": line["product"],
                                "term_end": line["term_end"],
                                "customer": order["customer"],
                                "last_order": order["order_id"],
                                "last_event": envelope["event_id"],
                            }
                        },
                        upsert=True,
                    )
                )
        if upserts:
            await _in_transaction(
                db, lambda s: entitlements.bulk_write(upserts, ordered=True, session=s)
            )

    return write


def commissions_write(db: Any) -> Write:
    """One bulk insert of each order line's ledger document, in one transaction."""
    ledger = db["floor_ledger"]

    async def write(records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        inserts = []
        for record in records:
            envelope = json.loads(record.value)
            data = envelope["data"]
            inserts.append(
                InsertOne(
                    {
                        "_id": envelope["event_id"],
                        "order_id": data.get("order_id"),
                        "license_key": data.get("license_key"),
                        "lines": data.get("lines"),
                        "occurred_at": envelope.get("occurred_at"),
                    }
                )
            )
        await _in_transaction(db, lambda s: ledger.bulk_write(inserts, ordered=False, session=s))

    return write


async def notifications_floor(
    db: Any,
    send: Callable[[int], Awaitable[None]],
    messages: int,
    *,
    batch: int,
    concurrency: int,
) -> float:
    """Messages per second: per batch, insert the delivery records in bulk, send every
    message (`concurrency` at a time over the pipelined pool), append the outcomes in bulk."""
    deliveries, outcomes = db["floor_deliveries"], db["floor_outcomes"]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await send(i)

    started = time.perf_counter()
    for first in range(0, messages, batch):
        numbers = range(first, min(messages, first + batch))
        await deliveries.insert_many(
            [
                {
                    "_id": f"floor-{i}",
                    "type": "security_advisory",
                    "contact": f"c{i}",
                    "status": "pending",
                }
                for i in numbers
            ],
            ordered=False,
        )
        await asyncio.gather(*(one(i) for i in numbers))
        now = time.time()
        await outcomes.insert_many(
            [{"delivery_id": f"floor-{i}", "status": "sent", "at": now} for i in numbers],
            ordered=False,
        )
    return messages / (time.perf_counter() - started)
