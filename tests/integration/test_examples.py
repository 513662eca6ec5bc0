"""The integrator examples, run against the real broker."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from chassis.kafka import ensure_topics, make_producer
from examples import checkout_producer, finance_consumer
from shared.envelope import encode, key_for, parse_event
from shared.examples import example_events
from shared.topics import CHECKOUT_ORDERS, COMMISSIONS_LEDGER
from tests.conftest import Names


def test_the_checkout_refuses_a_seller_code_with_a_typo() -> None:
    with pytest.raises(SystemExit, match="check"):
        checkout_producer.checked_seller_code("7K3M-9QXE")
    assert checkout_producer.checked_seller_code("7k3m 9qxf") == "7K3M-9QXF"


async def test_the_checkout_producer_emits_a_valid_keyed_order(
    kafka_bootstrap: str, names: Names
) -> None:
    topic = names.topic(CHECKOUT_ORDERS)
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    argv = [
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        "--seller-code",
        "7k3m-9qxf",
        "--order-id",
        "WEB-EXAMPLE-1",
        "--registration-url",
        "http://127.0.0.1:9",  # nothing listens: the shop renews direct and still sells
    ]
    assert await asyncio.to_thread(checkout_producer.main, argv) == 0
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
    envelope = parse_event(CHECKOUT_ORDERS, record.value)
    assert record.key == b"WEB-EXAMPLE-1"
    assert envelope.data.seller_code == "7K3M-9QXF"  # type: ignore[attr-defined]


async def test_the_checkout_asks_whom_to_steer_a_renewal_to(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    """The example's lookup against the real registration API (in process) and database."""
    from services.registration.bootstrap import build_api
    from tests.integration.registration.conftest import ADMIN, make_settings, seed_orders
    from tests.unit.registration.builders import incoming, line, order

    settings = make_settings(
        kafka_bootstrap, mongo_url, mongo_db.name, checkout_token="example-checkout-token"
    )
    api = build_api(settings, run_relay=False)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as admin:
            created = await admin.post(
                "/v1/admin/partners",
                headers=ADMIN,
                json={
                    "display_name": "Nordlicht IT",
                    "legal_name": "Nordlicht IT GmbH",
                    "type": "var",
                    "tier": "gold",
                    "contact_email": "partners@nordlicht-it.example",
                    "branding": {"phone": "+49 30 1234567"},
                },
            )
            code = created.json()["seller_code"]
        sold = order("O-1", line("LK-5F2A-0001"), channel="partner", partner_code=code)
        await seed_orders(mongo_db, incoming(sold, "2026-01-10T09:00:00Z"))

        async def ask(key: str, token: str = "example-checkout-token") -> str:  # noqa: S107
            found = await checkout_producer.partner_of_record(
                "http://r", token, key, transport=transport
            )
            return checkout_producer.steer_message(key, found)

        assert await ask("LK-5F2A-0001") == (
            "LK-5F2A-0001: renew with Nordlicht IT (+49 30 1234567);"
            " renewing direct here is still possible"
        )
        assert "renews direct" in await ask("LK-UNKNOWN")
        assert "renews direct" in await ask("LK-5F2A-0001", token="wrong-token")


async def test_finance_books_each_committed_line_once_and_never_an_aborted_one(
    kafka_bootstrap: str, names: Names, tmp_path: Path
) -> None:
    topic = names.topic(COMMISSIONS_LEDGER)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    ledger = [(t, e) for t, e in example_events() if t == COMMISSIONS_LEDGER]
    producer = make_producer(kafka_bootstrap, transactional_id=f"ledger-{names.run}")
    await producer.start()
    try:
        async with producer.transaction():
            for t, envelope in ledger:
                await producer.send(topic, encode(envelope), key=key_for(t, envelope))
        # An aborted transaction: a read_committed reader must never see this line.
        aborted = ledger[0][1].model_copy(update={"event_id": "aborted-line"})
        await producer.begin_transaction()
        await producer.send(topic, encode(aborted), key=b"P-X")
        await producer.abort_transaction()
    finally:
        await producer.stop()

    gl = tmp_path / "gl.csv"
    run = [kafka_bootstrap, topic, names.group(), gl, 3.0]
    assert await finance_consumer.consume(*run) == len(ledger)  # type: ignore[arg-type]
    # A new group replays the whole topic: the CSV is the record, nothing is booked twice.
    run[2] = names.group("replay")
    assert await finance_consumer.consume(*run) == 0  # type: ignore[arg-type]
    with gl.open(newline="") as booked:
        rows = list(csv.DictReader(booked))
    assert len(rows) == len(ledger)
    assert "aborted-line" not in {r["event_id"] for r in rows}
    assert {r["event_type"] for r in rows} == {
        "commission.accrued",
        "commission.clawed_back",
        "commission.adjusted",
        "commission.payable",
        "commission.paid",
    }
    clawbacks = [r for r in rows if r["event_type"] == "commission.clawed_back"]
    assert all(int(r["amount_minor"]) < 0 for r in clawbacks)
    # An adjustment is payable at once, with finance's reason and reference (CONTRACT 6.5).
    (adjusted,) = [r for r in rows if r["event_type"] == "commission.adjusted"]
    assert (adjusted["account"], adjusted["order_id"], adjusted["reference"]) == (
        "commissions_payable",
        "",
        "FIN-2027-0042",
    )
