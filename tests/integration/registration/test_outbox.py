"""The transactional outbox: API writes and their events are never split, across crashes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from chassis.kafka import ensure_topics, make_producer
from services.registration.adapters.outbox import OutboxRelay
from services.registration.bootstrap import build_api
from services.registration.config import Settings
from shared.topics import REGISTRATION_ENTITLEMENTS, REGISTRATION_PARTNERS
from tests.conftest import Names
from tests.integration.registration.conftest import ADMIN, decoded, read_topic, seed_orders
from tests.unit.registration.builders import incoming, line, order

PARTNER = {
    "display_name": "Nordlicht IT",
    "legal_name": "Nordlicht IT GmbH",
    "type": "var",
    "tier": "gold",
    "contact_email": "p@nordlicht.example",
}
# The contact checkout supplied (tests/unit/registration/builders.py): no confirmation
# request, so the registration writes exactly the events counted below (CONTRACT 6.9).
CUSTOMER = {
    "org_name": "M GmbH",
    "contact_name": "J",
    "email": "jana@mueller-logistik.example",
    "country": "DE",
}


async def started_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = make_producer(bootstrap)
    await producer.start()
    return producer


async def api_writes(client: httpx.AsyncClient, db: Any, license_key: str) -> str:
    """A partner, a tier change and a customer registration with its code: 4 events."""
    created = (await client.post("/v1/admin/partners", json=PARTNER, headers=ADMIN)).json()
    pid = created["partner_id"]
    await client.patch(f"/v1/admin/partners/{pid}", json={"tier": "platinum"}, headers=ADMIN)
    await seed_orders(db, incoming(order(f"O-{license_key}", line(license_key))))
    registered = await client.post(
        "/v1/registrations",
        json={
            "license_key": license_key,
            "customer": CUSTOMER,
            "seller_code": created["seller_code"],
        },
    )
    assert registered.status_code == 201
    return str(pid)


async def published(
    bootstrap: str, pid: str, license_key: str, expect: int
) -> list[dict[str, Any]]:
    keys = {pid.encode(), license_key.encode()}
    partners = await read_topic(
        bootstrap, REGISTRATION_PARTNERS, expect=2, keep=lambda r: r.key in keys, settle_s=0.5
    )
    entitlements = await read_topic(
        bootstrap,
        REGISTRATION_ENTITLEMENTS,
        expect=expect - 2,
        keep=lambda r: r.key in keys,
        settle_s=0.5,
    )
    return decoded(partners) + decoded(entitlements)


async def test_events_written_before_a_crash_are_relayed_once_after_restart(
    settings: Settings, mongo_db: Any, names: Names, kafka_bootstrap: str
) -> None:
    license_key = f"LK-{names.run}"
    # The API process writes and "crashes" before its relay ran.
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            pid = await api_writes(client, mongo_db, license_key)
    assert await mongo_db["outbox"].count_documents({"sent_at": None}) == 4

    await ensure_topics(
        kafka_bootstrap, [REGISTRATION_PARTNERS, REGISTRATION_ENTITLEMENTS], partitions=1
    )
    producer = await started_producer(kafka_bootstrap)
    try:
        relay = OutboxRelay(mongo_db, lambda: producer, owner="after-restart")
        assert await relay.hold_lease()
        assert await relay.publish_pending(producer) == 4
        # Restarted again: nothing left to send.
        again = OutboxRelay(mongo_db, lambda: producer, owner="after-restart")
        assert await again.hold_lease()
        assert await again.publish_pending(producer) == 0
    finally:
        await producer.stop()
    events = await published(kafka_bootstrap, pid, license_key, expect=4)
    assert [e["event_type"] for e in events] == [
        "partner.created",
        "partner.updated",
        "entitlement.registered",
        "entitlement.attribution_changed",
    ]
    assert len({e["event_id"] for e in events}) == 4
    assert events[1]["data"]["tier"] == "platinum"
    assert await mongo_db["outbox"].count_documents({"sent_at": None}) == 0


async def test_the_api_relays_its_own_writes_promptly(
    settings: Settings, mongo_db: Any, names: Names, kafka_bootstrap: str
) -> None:
    license_key = f"LK-{names.run}"
    app = build_api(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            pid = await api_writes(client, mongo_db, license_key)
            events = await published(kafka_bootstrap, pid, license_key, expect=4)
    assert len(events) == 4
    assert await mongo_db["outbox"].count_documents({"sent_at": None}) == 0


async def test_a_failed_write_leaves_no_event(settings: Settings, mongo_db: Any) -> None:
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            refused = await client.post(
                "/v1/admin/partners",
                json={**PARTNER, "parent_partner_id": "P-NOPE"},
                headers=ADMIN,
            )
    assert refused.status_code == 422
    assert await mongo_db["outbox"].count_documents({}) == 0
    assert await mongo_db["partners"].count_documents({}) == 0


async def test_only_the_lease_holder_relays(mongo_db: Any) -> None:
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    first = OutboxRelay(mongo_db, lambda: None, owner="a", lease_s=10, clock=lambda: now[0])
    second = OutboxRelay(mongo_db, lambda: None, owner="b", lease_s=10, clock=lambda: now[0])
    assert await first.hold_lease()
    assert not await second.hold_lease()
    now[0] += dt.timedelta(seconds=11)  # the first relay died
    assert await second.hold_lease()
    assert not await first.hold_lease()
    await second.release_lease()
    assert await first.hold_lease()


async def test_a_crash_between_send_and_mark_resends_with_the_same_event_ids(
    settings: Settings, mongo_db: Any, names: Names, kafka_bootstrap: str
) -> None:
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            created = await client.post("/v1/admin/partners", json=PARTNER, headers=ADMIN)
    pid = created.json()["partner_id"]

    class DiesBeforeMarking(OutboxRelay):
        async def _mark_sent(self, ids: list[str]) -> None:
            raise ConnectionError("process killed after the broker acknowledged")

    producer = await started_producer(kafka_bootstrap)
    try:
        dying = DiesBeforeMarking(mongo_db, lambda: producer, owner="dying")
        with pytest.raises(ConnectionError):
            await dying.publish_pending(producer)
        restarted = OutboxRelay(mongo_db, lambda: producer, owner="restarted")
        assert await restarted.publish_pending(producer) == 1
    finally:
        await producer.stop()
    records = await read_topic(
        kafka_bootstrap, REGISTRATION_PARTNERS, expect=2, keep=lambda r: r.key == pid.encode()
    )
    ids = [json.loads(r.value)["event_id"] for r in records]
    # At-least-once: the one event twice, with one event_id, which consumers dedupe on.
    assert len(ids) == 2 and len(set(ids)) == 1
