"""checkout.orders.v1 in, entitlement state and registration.entitlements.v1 out, on the real
broker and database: events, dead letters, idempotency and a crash between the two commits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound
from services.registration.adapters.mongo import MongoUnitOfWork
from services.registration.bootstrap import (
    build_processors,
    order_handler,
    prepare_worker,
    utc_now,
)
from services.registration.config import Settings
from services.registration.service_layer.partners import PartnerChanges, PartnerService
from shared.envelope import encode, new_envelope
from shared.events import OrderPlaced
from shared.topics import CHECKOUT_ORDERS, REGISTRATION_ENTITLEMENTS
from tests.conftest import Names
from tests.integration.registration.conftest import decoded, produce, read_topic
from tests.unit.registration.builders import at, enrol, line, order


def record(placed: OrderPlaced, occurred_at: str, event_id: str) -> tuple[bytes, bytes]:
    envelope = new_envelope(
        "order.placed", placed, occurred_at=at(occurred_at), producer="webshop", event_id=event_id
    )
    return placed.order_id.encode(), encode(envelope)


class Pipeline:
    """Fresh topics for one test, and the worker's processor on them."""

    def __init__(self, settings: Settings, db: Any, names: Names) -> None:
        self.settings = settings
        self.db = db
        self.source = names.topic(CHECKOUT_ORDERS)
        self.out = names.topic("entitlements")
        self.group = names.group("registration")
        self.counters = WorkerCounters()

    async def topics(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, [self.source, self.out], partitions=1)
        await prepare_worker(self.db)  # as the worker does before it consumes

    def processor(
        self,
        wrap: Callable[[Callable[[list[Inbound]], Awaitable[HandlerResult]]], Any] | None = None,
    ) -> TransactionalProcessor:
        if wrap is None:
            [processor] = build_processors(
                self.settings,
                topics=[self.source],
                group_id=self.group,
                schema_of={self.source: CHECKOUT_ORDERS},
                topic_map={REGISTRATION_ENTITLEMENTS: self.out},
                retry_backoff_s=0.1,
            )(self.db, self.counters, "test")
            return processor
        handler = order_handler(
            self.db, self.counters, self.settings, topic_map={REGISTRATION_ENTITLEMENTS: self.out}
        )
        return TransactionalProcessor(
            bootstrap=self.settings.kafka_bootstrap,
            topics=[self.source],
            group_id=self.group,
            transactional_id=f"{self.group}-tx",
            handler=wrap(handler),
            counters=self.counters,
            schema_of={self.source: CHECKOUT_ORDERS},
            retry_backoff_s=0.1,
        )

    async def run_until(
        self, processor: TransactionalProcessor, done: Callable[[], bool], timeout_s: float = 30
    ) -> None:
        await processor.start()
        task = asyncio.create_task(processor.run())
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while not done() and loop.time() < deadline:  # noqa: ASYNC110 - polls counters
                await asyncio.sleep(0.1)
        finally:
            processor.request_stop()
            await asyncio.wait_for(task, 10)
            await processor.stop()
        assert done(), "the worker did not get through its input in time"

    async def outputs(self, expect: int) -> list[dict[str, Any]]:
        return decoded(await read_topic(self.settings.kafka_bootstrap, self.out, expect=expect))

    async def dead_letters(self, expect: int) -> list[Any]:
        return await read_topic(
            self.settings.kafka_bootstrap, f"{self.source}.dlq", expect=expect, settle_s=0.5
        )


async def test_orders_in_entitlement_state_and_events_out(
    settings: Settings, mongo_db: Any, names: Names
) -> None:
    pipeline = Pipeline(settings, mongo_db, names)
    await pipeline.topics()
    partners = PartnerService(lambda: MongoUnitOfWork(mongo_db), utc_now)
    dist, _, _ = await enrol(
        partners, "Distri", type="distributor", effective_at=at("2025-01-01T00:00:00Z")
    )
    pid, code, _ = await enrol(
        partners, tier="silver", parent=dist, effective_at=at("2025-01-01T00:00:00Z")
    )
    await partners.update(pid, PartnerChanges(tier="gold", effective_at=at("2026-06-01T00:00:00Z")))

    sale = order("P-1", line("LK-1"), channel="partner", partner_code=code)
    renewal = order("W-2", line("LK-1", "renewal", term=("2027-01-10", "2028-01-09")))
    await produce(
        settings.kafka_bootstrap,
        pipeline.source,
        [
            record(sale, "2026-01-10T09:00:00Z", "e-1"),
            record(renewal, "2027-01-05T10:00:00Z", "e-2"),
        ],
    )
    await pipeline.run_until(
        pipeline.processor(), lambda: pipeline.counters.get("orders_applied_total") >= 2
    )
    events = await pipeline.outputs(expect=5)
    assert [e["event_type"] for e in events] == [
        "entitlement.updated",
        "entitlement.attribution_changed",
        "entitlement.order_applied",
        "entitlement.updated",
        "entitlement.order_applied",
    ]
    first, second = events[2]["data"], events[4]["data"]
    assert first["partner"]["tier"] == "silver" and second["partner"]["tier"] == "gold"
    assert second["partner"]["parent"] == {"partner_id": dist, "status": "active"}
    assert second["partner"]["since"] == "2026-01-10T09:00:00Z"
    assert second["order"]["occurred_at"] == "2027-01-05T10:00:00Z"
    assert second["term_end"] == "2028-01-09"
    stored = await mongo_db["entitlements"].find_one({"_id": "LK-1"})
    assert stored["term_end"] == "2028-01-09"
    assert stored["partner_of_record"]["partner_id"] == pid


async def test_bad_input_goes_to_the_dead_letter_topic_and_duplicates_are_no_ops(
    settings: Settings, mongo_db: Any, names: Names
) -> None:
    pipeline = Pipeline(settings, mongo_db, names)
    await pipeline.topics()
    good = order("W-1", line("LK-1"), seller_code="ZZZZ-ZZZZ")
    schema_broken = json.loads(record(good, "2026-01-10T09:00:00Z", "e-bad")[1])
    schema_broken["data"]["lines"][0]["net_amount_minor"] = -5
    await produce(
        settings.kafka_bootstrap,
        pipeline.source,
        [
            record(good, "2026-01-10T09:00:00Z", "e-1"),
            (b"x", b"\xff not json"),
            (b"W-1", json.dumps(schema_broken).encode()),
            record(good, "2026-01-10T09:00:00Z", "e-1"),  # same event again
            record(good, "2026-01-10T09:00:00Z", "e-2"),  # same order, new event id
            record(order("W-1", line("LK-1", net=1)), "2026-01-10T09:00:00Z", "e-3"),
            record(
                order("P-9", channel="partner", partner_code="7K3M-9QXF"),
                "2026-01-10T09:00:00Z",
                "e-4",
            ),
            record(order("W-5", line("LK-5")), "2026-01-11T09:00:00Z", "e-5"),
        ],
    )
    await pipeline.run_until(
        pipeline.processor(), lambda: pipeline.counters.get("orders_applied_total") >= 2
    )
    dead = await pipeline.dead_letters(expect=4)
    reasons = sorted(dict(r.headers)["error.reason"].decode() for r in dead)
    assert reasons == [
        "conflicting_duplicate_order",
        "schema_violation",
        "unknown_partner_code",
        "unparsable",
    ]
    unparsable = next(r for r in dead if dict(r.headers)["error.reason"] == b"unparsable")
    assert (unparsable.key, unparsable.value) == (b"x", b"\xff not json")
    events = await pipeline.outputs(expect=4)
    applied = [e for e in events if e["event_type"] == "entitlement.order_applied"]
    assert [e["data"]["order"]["order_id"] for e in applied] == ["W-1", "W-5"]
    assert pipeline.counters.get("orders_duplicate_total") == 2
    batch = await mongo_db["processed_orders"].find_one({"order_ids": "W-1"})
    [processed] = [o for o in batch["orders"] if o["order_id"] == "W-1"]
    assert processed["seller_code_outcome"] == "invalid_seller_code"
    assert await mongo_db["entitlements"].count_documents({}) == 2


async def test_a_crash_between_the_database_and_the_kafka_commit_produces_once(
    settings: Settings, mongo_db: Any, names: Names
) -> None:
    pipeline = Pipeline(settings, mongo_db, names)
    await pipeline.topics()
    partners = PartnerService(lambda: MongoUnitOfWork(mongo_db), utc_now)
    _, code, _ = await enrol(partners)
    orders = [
        record(
            order(f"P-{i}", line(f"LK-{i}"), channel="partner", partner_code=code),
            "2026-01-10T09:00:00Z",
            f"e-{i}",
        )
        for i in range(5)
    ]
    await produce(settings.kafka_bootstrap, pipeline.source, orders)
    calls = {"n": 0}

    def crash_once(
        handler: Callable[[list[Inbound]], Awaitable[HandlerResult]],
    ) -> Callable[[list[Inbound]], Awaitable[HandlerResult]]:
        async def wrapped(batch: list[Inbound]) -> HandlerResult:
            result = await handler(batch)  # the database transaction has committed here
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("worker died before its Kafka transaction committed")
            return result

        return wrapped

    await pipeline.run_until(
        pipeline.processor(wrap=crash_once),
        lambda: pipeline.counters.get("orders_replayed_total") >= 5 or calls["n"] >= 3,
    )
    events = await pipeline.outputs(expect=15)
    assert len(events) == 15  # updated + attribution_changed + order_applied, once per order
    assert len({e["event_id"] for e in events}) == 15
    assert pipeline.counters.get("orders_replayed_total") == 5
    batches = await mongo_db["processed_orders"].find().to_list()
    assert sorted(o for b in batches for o in b["order_ids"]) == [f"P-{i}" for i in range(5)]

    # A second run of the group finds the offsets committed: nothing more comes out.
    again = Pipeline(settings, mongo_db, names)
    again.source, again.out, again.group = pipeline.source, pipeline.out, pipeline.group
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + 3
    await again.run_until(again.processor(), lambda: loop.time() > stop_at)
    assert again.counters.get("orders_applied_total") == 0
    assert len(await pipeline.outputs(expect=15)) == 15
