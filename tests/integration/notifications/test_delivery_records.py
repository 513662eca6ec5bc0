"""Delivery records on the real database: the outbox collection, the searches by recipient."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from services.notifications.adapters.collections import DELIVERIES, DELIVERY_OUTBOX
from services.notifications.adapters.deliveries import MongoDeliveries
from services.notifications.adapters.delivery_log import (
    MongoDeliveryLog,
    partner_log_query,
    recipient_query,
)
from services.notifications.adapters.indexes import ensure_indexes
from services.notifications.domain.model import Customer
from services.notifications.domain.rules import plan_advisory_digest, plan_security_advisory
from tests.unit.notifications.builders import JANA, NORDLICHT, OCCURRED, entitlement

NOW = dt.datetime(2027, 1, 5, 11, 0, tzinfo=dt.UTC)


def advisory_plans() -> list[Any]:
    others = [
        Customer(f"C-{i}", f"Org {i}", f"Contact {i}", f"contact{i}@kunde.example")
        for i in range(3)
    ]
    plans = [
        plan_security_advisory("ADV-1", [entitlement(f"LK-{i}", NORDLICHT, customer=c)], OCCURRED)
        for i, c in enumerate([JANA, *others])
    ]
    digest = plan_advisory_digest(
        "ADV-1", NORDLICHT.partner_id, [entitlement("LK-0", NORDLICHT)], 1, OCCURRED, ["email"]
    )
    return [p for p in plans if p is not None] + digest


async def test_outcomes_not_published_wait_in_the_outbox_collection(mongo_db: Any) -> None:
    await ensure_indexes(mongo_db)
    deliveries = MongoDeliveries(mongo_db)
    plans = advisory_plans()
    assert await deliveries.plan(plans, NOW) == len(plans)
    states = await deliveries.due(NOW, 10)
    sent = [dataclasses.replace(s, status="sent", attempts=1, finished_at=NOW) for s in states[:2]]
    retry = dataclasses.replace(
        states[2], attempts=1, next_attempt_at=NOW + dt.timedelta(minutes=1), error="smtp_451"
    )
    await deliveries.settle([*sent, retry], published=False)

    waiting = await deliveries.unpublished(100)
    assert sorted(s.planned.notification_id for s in waiting) == sorted(
        s.planned.notification_id for s in sent
    )
    assert {s.status for s in waiting} == {"sent"}
    assert "outbox" not in (
        await mongo_db[DELIVERIES].find_one({"_id": waiting[0].planned.notification_id})
    )
    await deliveries.mark_published([s.planned.notification_id for s in waiting])
    assert await deliveries.unpublished(100) == []

    # A crash between the outbox write and the settle: the record is still pending,
    # its outcome comes when it is sent again, not from the outbox.
    pending = states[3].planned.notification_id
    await mongo_db[DELIVERY_OUTBOX].insert_one({"_id": pending})
    assert await deliveries.unpublished(100) == []
    assert await mongo_db[DELIVERY_OUTBOX].count_documents({}) == 0


async def test_records_flagged_by_an_older_version_move_into_the_outbox(mongo_db: Any) -> None:
    collection = mongo_db[DELIVERIES]
    await collection.create_index([("outbox", 1)], sparse=True)
    await collection.create_index([("recipient", 1)])
    deliveries = MongoDeliveries(mongo_db)
    plans = advisory_plans()
    await deliveries.plan(plans, NOW)
    first = plans[0].notification_id
    await collection.update_one(
        {"_id": first}, {"$set": {"status": "sent", "finished_at": NOW, "outbox": True}}
    )

    # The API and the worker start together: both migrate, neither fails.
    await asyncio.gather(ensure_indexes(mongo_db), ensure_indexes(mongo_db))
    await ensure_indexes(mongo_db)

    indexes = set(await collection.index_information())
    assert {"outbox_1", "recipient_1", "partner_id_1_created_at_1"}.isdisjoint(indexes)
    assert "recipient_1_created_at_1" in indexes
    assert [s.planned.notification_id for s in await deliveries.unpublished(10)] == [first]
    assert await collection.count_documents({"outbox": True}) == 0


async def test_searches_by_address_and_by_partner(mongo_db: Any) -> None:
    await ensure_indexes(mongo_db)
    deliveries = MongoDeliveries(mongo_db)
    await deliveries.plan(advisory_plans(), NOW)
    deliveries_log = MongoDeliveryLog(mongo_db)

    by_address = await deliveries_log.search(recipient_query(" Jana@Mueller-Logistik.example "), 10)
    assert [d["recipient"] for d in by_address] == [JANA.email]
    by_partner_id = await deliveries_log.search(recipient_query(NORDLICHT.partner_id), 10)
    assert [(d["audience"], d["type"]) for d in by_partner_id] == [
        ("partner", "advisory_partner_digest")
    ]
    log = partner_log_query(NORDLICHT.partner_id)
    assert await deliveries_log.count(log) == 1
    assert (await deliveries_log.search(log, 10))[0]["partner_id"] == NORDLICHT.partner_id
