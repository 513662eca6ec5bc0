"""Running the commissions worker against the real embedded broker and database in a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from services.commissions.bootstrap import (
    build_background,
    build_processors,
    consumes,
    prepare_worker,
    produces,
)
from services.commissions.config import Settings
from shared.envelope import encode, new_envelope
from shared.events import EventData
from tests.conftest import Names

ADMIN_TOKEN = "test-admin-token-0123456789"


def settings_for(names: Names, kafka_bootstrap: str, mongo_url: str, db_name: str) -> Settings:
    return Settings(
        admin_token=ADMIN_TOKEN,
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        mongo_db=db_name,
        entitlements_topic=names.topic("entitlements"),
        refunds_topic=names.topic("refunds"),
        ledger_topic=names.topic("ledger"),
        worker_group=names.group("commissions-worker"),
        outbox_relay_id=names.group("commissions-relay"),
        topic_partitions=3,
        relay_interval_seconds=0.1,
        consumer_batch_max=500,
    )


def env_for(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for a worker subprocess."""
    return {
        "ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MONGO_URL": settings.mongo_url.get_secret_value(),
        "COMMISSIONS_MONGO_DB": settings.mongo_db,
        "COMMISSIONS_ENTITLEMENTS_TOPIC": settings.entitlements_topic,
        "COMMISSIONS_REFUNDS_TOPIC": settings.refunds_topic,
        "COMMISSIONS_LEDGER_TOPIC": settings.ledger_topic,
        "COMMISSIONS_WORKER_GROUP": settings.worker_group,
        "COMMISSIONS_OUTBOX_RELAY_ID": settings.outbox_relay_id,
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "CONSUMER_BATCH_MAX": str(settings.consumer_batch_max),
        "CONSUMER_EMPTY_FETCH_BACKOFF_MS": str(settings.consumer_empty_fetch_backoff_ms),
        "RELAY_INTERVAL_SECONDS": str(settings.relay_interval_seconds),
    }


async def create_topics(settings: Settings) -> None:
    await ensure_topics(
        settings.kafka_bootstrap,
        [*consumes(settings), *produces(settings)],
        partitions=settings.topic_partitions,
    )


class Worker:
    """The worker's processors and background tasks, in this event loop."""

    def __init__(self, settings: Settings, db: Any, *, relay: bool = True) -> None:
        self.settings = settings
        self.db = db
        self.counters = WorkerCounters()
        self.relay = relay
        self.processors: list[TransactionalProcessor] = []
        self.tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> Worker:
        await create_topics(self.settings)
        await prepare_worker(self.db)  # as run_worker_process does before it consumes
        factory = build_processors(self.settings)
        self.processors = list(factory(self.db, self.counters, "test"))
        for processor in self.processors:
            await processor.start()
            self.tasks.append(asyncio.create_task(processor.run()))
        if self.relay:
            relay = build_background(self.settings)[0]
            self.tasks.append(asyncio.create_task(relay(self.db, self.counters)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for processor in self.processors:
            processor.request_stop()
        for task in self.tasks[len(self.processors) :]:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        for processor in self.processors:
            await processor.stop()


async def produce(
    bootstrap: str, records: Sequence[tuple[str, bytes, bytes]], *, chunk: int = 1000
) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for start in range(0, len(records), chunk):
            futures = [
                await producer.send(topic, value, key=key)
                for topic, key, value in records[start : start + chunk]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def event_bytes(event_type: str, data: EventData, occurred_at: Any, event_id: str) -> bytes:
    return encode(
        new_envelope(event_type, data, occurred_at=occurred_at, producer="test", event_id=event_id)
    )


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    wait_s: float = 30.0,
    settle_s: float = 1.5,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything committed on `topic` (read_committed), waiting for `expect`, then a bit more."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while len(got) < expect and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                got.extend(records)
        # Anything beyond `expect` would be a duplicate: give it time to show up.
        settle = loop.time() + settle_s
        while loop.time() < settle:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                got.extend(records)
    finally:
        await consumer.stop()
    return got


async def wait_for(predicate: Any, within_s: float = 30.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
