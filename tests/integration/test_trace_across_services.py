"""One renewal followed across the suite by its `traceparent` (README "Tracing").

Checkout's `order.placed` carries a traceparent; registration's worker, commissions'
worker and notifications' worker and dispatcher run in this process on the embedded
broker and database, with tracing on and an in-memory exporter. The renewal's
entitlement events, its ledger lines and the delivery record of the commission notice
carry the renewal's trace id, and the spans they were published in are that trace's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chassis import tracing
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from services.registration.adapters.mongo import MongoUnitOfWork
from services.registration.bootstrap import build_processors, prepare_worker, utc_now
from services.registration.service_layer.partners import PartnerService
from shared.topics import CHECKOUT_ORDERS, COMMISSIONS_LEDGER, REGISTRATION_ENTITLEMENTS
from tests.conftest import Names
from tests.integration.commissions.harness import Worker as CommissionsWorker
from tests.integration.commissions.harness import settings_for as commissions_settings
from tests.integration.notifications.harness import MailSink, Service, until
from tests.integration.notifications.harness import read_topic as read_with_headers
from tests.integration.registration.conftest import make_settings
from tests.integration.registration.test_order_consumer import record
from tests.unit.registration.builders import at, enrol, line, order

SALE_TRACE = "0af7651916cd43dd8448eb211c80319c"
RENEWAL_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def traceparent(trace_id: str) -> bytes:
    return f"00-{trace_id}-00f067aa0ba902b7-01".encode()


def trace_id_of(headers: dict[str, bytes]) -> str | None:
    value = headers.get("traceparent")
    return value.decode().split("-")[1] if value else None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("trace-test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


async def test_a_renewal_carries_its_trace_id_from_checkout_to_the_delivery_record(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names, spans: InMemorySpanExporter
) -> None:
    mail = MailSink().start()
    notifications = Service(kafka_bootstrap, mongo_url, names.run, mail.port)
    entitlements = notifications.contract_to_actual[REGISTRATION_ENTITLEMENTS]
    ledger = notifications.contract_to_actual[COMMISSIONS_LEDGER]
    orders = names.topic(CHECKOUT_ORDERS)
    await notifications.provision()
    await ensure_topics(kafka_bootstrap, [orders], partitions=1)

    # registration: a reseller sells a licence, the customer renews direct a year later
    registration = make_settings(kafka_bootstrap, mongo_url, mongo_db.name)
    await prepare_worker(mongo_db)  # as the worker does before it consumes
    partners = PartnerService(lambda: MongoUnitOfWork(mongo_db), utc_now)
    _, code, _ = await enrol(partners, tier="gold", effective_at=at("2025-01-01T00:00:00Z"))
    sale = order("P-1", line("LK-1"), channel="partner", partner_code=code)
    renewal = order("W-2", line("LK-1", "renewal", term=("2027-01-10", "2028-01-09")))
    sale_key, sale_value = record(sale, "2026-01-10T09:00:00Z", "e-sale")
    renewal_key, renewal_value = record(renewal, "2027-01-05T10:00:00Z", "e-renewal")
    await produce_with_headers(
        kafka_bootstrap,
        orders,
        [
            (sale_key, sale_value, traceparent(SALE_TRACE)),
            (renewal_key, renewal_value, traceparent(RENEWAL_TRACE)),
        ],
    )
    counters = WorkerCounters()
    [reg_processor] = build_processors(
        registration,
        topics=[orders],
        group_id=names.group("registration"),
        schema_of={orders: CHECKOUT_ORDERS},
        topic_map={REGISTRATION_ENTITLEMENTS: entitlements},
        retry_backoff_s=0.1,
    )(mongo_db, counters, "test")

    commissions = commissions_settings(names, kafka_bootstrap, mongo_url, names.database("com"))
    commissions = commissions.model_copy(
        update={"entitlements_topic": entitlements, "ledger_topic": ledger}
    )
    client, _ = notifications.db()
    tasks: list[asyncio.Task[Any]] = []
    try:
        await reg_processor.start()
        tasks.append(asyncio.create_task(reg_processor.run()))
        async with CommissionsWorker(commissions, client[commissions.mongo_db], relay=False):
            await notifications.start_worker()
            deliveries: list[dict[str, Any]] = []

            async def commission_delivered() -> bool:
                deliveries[:] = await read_with_headers(
                    kafka_bootstrap, notifications.deliveries_topic, settle_s=0.3
                )
                return any(
                    d["value"]["data"]["notification_type"] == "commission_earned"
                    for d in deliveries
                )

            await until(commission_delivered, within=60, what="the commission notice's delivery")
            await notifications.stop_worker()
    finally:
        reg_processor.request_stop()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        await reg_processor.stop()
        mail.stop()
        await client.drop_database(commissions.mongo_db)
        await client.drop_database(notifications.settings.mongo_db)
        await client.close()

    events = await read_with_headers(kafka_bootstrap, entitlements, settle_s=0.3)
    renewal_events = [
        e for e in events if e["value"]["data"].get("order", {}).get("order_id") == "W-2"
    ]
    assert renewal_events, "no entitlement.order_applied for the renewal"
    for event in events:
        order_id = event["value"]["data"].get("order", {}).get("order_id")
        if order_id is not None:
            expected = RENEWAL_TRACE if order_id == "W-2" else SALE_TRACE
            assert trace_id_of(event["headers"]) == expected, event["value"]["event_type"]
    assert {trace_id_of(e["headers"]) for e in events} <= {SALE_TRACE, RENEWAL_TRACE}

    lines = await read_with_headers(kafka_bootstrap, ledger, settle_s=0.3)
    assert lines and all(line["value"]["data"]["order_id"] == "W-2" for line in lines)
    assert {trace_id_of(line["headers"]) for line in lines} == {RENEWAL_TRACE}

    earned = [
        d for d in deliveries if d["value"]["data"]["notification_type"] == "commission_earned"
    ]
    assert {trace_id_of(d["headers"]) for d in earned} == {RENEWAL_TRACE}

    # The records were published in spans of the renewal's trace, one per record.
    finished = spans.get_finished_spans()
    published = {
        (s.name, format(s.context.trace_id, "032x"))
        for s in finished
        if s.name.endswith(" publish")
    }
    assert (f"{ledger} publish", RENEWAL_TRACE) in published
    assert (f"{entitlements} publish", RENEWAL_TRACE) in published
    assert (f"{notifications.deliveries_topic} publish", RENEWAL_TRACE) in published
    # Each batch's consumer span links to the contexts of its records.
    processed = [s for s in finished if s.name.endswith(" process")]
    linked = {format(link.context.trace_id, "032x") for s in processed for link in s.links}
    assert {SALE_TRACE, RENEWAL_TRACE} <= linked


async def produce_with_headers(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, bytes]]
) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for key, value, parent in records:
            await producer.send_and_wait(topic, value, key=key, headers=[("traceparent", parent)])
    finally:
        await producer.stop()
