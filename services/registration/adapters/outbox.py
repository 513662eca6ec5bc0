"""The transactional outbox relay: publishes committed outbox documents to Kafka, in order.

API use cases write their state and their events (as outbox documents) in one
MongoDB transaction. This relay, running in the API process, reads unsent
documents oldest first, produces them with the idempotent producer
(acks=all), waits for every acknowledgement and only then marks them sent.
A crash before the mark re-sends those events after a restart: at-least-once,
with the same `event_id`, which consumers dedupe on (CONTRACT 1.1). Per
record key (aggregate) the order is the order of the aggregate's versions.

Only one relay publishes at a time: it holds a lease (chassis.lease), renewed
while it runs, taken over by another API replica when it lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo.asynchronous.database import AsyncDatabase

from chassis import tracing
from chassis.kafka import OutRecord, send_all
from chassis.lease import MongoLease
from services.registration.adapters.mongo import OUTBOX

log = logging.getLogger(__name__)

LEASES = "outbox_lease"
"""The collection of registration's API leases: the relay's and deal expiry's."""
LEASE_ID = "outbox-relay"


def outbox_record(doc: dict[str, Any]) -> OutRecord:
    """The record of an outbox document, with the trace context it was written in."""
    record = OutRecord(doc["topic"], doc["key"].encode("utf-8"), bytes(doc["value"]))
    stored = doc.get(tracing.TRACEPARENT)
    parent = tracing.valid_traceparent(stored.encode("ascii")) if isinstance(stored, str) else None
    return tracing.produced(record, parent)


class OutboxRelay:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        producer: Callable[[], AIOKafkaProducer | None],
        *,
        owner: str,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
        linger_s: float = 0.05,
        lease_s: float = 15.0,
        retention: dt.timedelta = dt.timedelta(days=7),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._db = db
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._linger_s = linger_s
        self._lease = MongoLease(
            db,
            LEASE_ID,
            owner=owner,
            ttl=dt.timedelta(seconds=lease_s),
            clock=clock,
            collection=LEASES,
        )
        self._retention = retention
        self._clock = clock
        self._wake = asyncio.Event()
        self._next_purge: dt.datetime | None = None
        self.published = 0

    def wake(self) -> None:
        """Called after a commit that wrote outbox documents: publish now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Publish until cancelled; survives broker and database outages."""
        delay = self._poll_interval_s
        while True:
            self._wake.clear()
            try:
                producer = self._producer()
                if producer is not None and await self.hold_lease():
                    sent = await self.publish_pending(producer)
                    delay = self._poll_interval_s
                    if sent >= self._batch_size:
                        continue
                    await self._purge()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # broker or database away: keep the documents, retry
                log.warning("outbox relay failed; retrying", extra={"error": type(error).__name__})
                delay = min(delay * 2, 10.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            # Let a burst of commits gather: one read and one mark for many events.
            # Each cycle costs a read and a durable update (the mark); 50 ms keeps
            # that to a few per second under load for at most 50 ms of delay.
            await asyncio.sleep(self._linger_s)

    async def hold_lease(self) -> bool:
        """Hold the relay lease; renewed only once half of it has run (one write per cycle
        would be one more durable write per publish)."""
        until = self._lease.held_until
        if until is not None and self._clock() < until - self._lease.ttl / 2:
            return True
        return await self._lease.acquire()

    async def release_lease(self) -> None:
        await self._lease.release()

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """One batch: send, await the acknowledgements, then mark sent. Returns how many."""
        outbox = self._db[OUTBOX]
        docs = (
            await outbox.find({"sent_at": None})
            .sort([("created_at", 1), ("batch", 1), ("seq", 1)])
            .limit(self._batch_size)
            .to_list()
        )
        if not docs:
            return 0
        # Stable sort: per key by aggregate version (writers of one aggregate are
        # serialised by its version check, so this is their commit order).
        docs.sort(key=lambda d: (d["topic"], d["key"], d.get("version", 0)))
        await send_all(producer, [outbox_record(d) for d in docs])
        await self._mark_sent([d["_id"] for d in docs])
        self.published += len(docs)
        return len(docs)

    async def _mark_sent(self, ids: list[str]) -> None:
        await self._db[OUTBOX].update_many(
            {"_id": {"$in": ids}}, {"$set": {"sent_at": self._clock()}}
        )

    async def _purge(self) -> None:
        now = self._clock()
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + dt.timedelta(minutes=10)
        await self._db[OUTBOX].delete_many({"sent_at": {"$lt": now - self._retention}})
