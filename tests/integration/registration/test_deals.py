"""Deal registration (CONTRACT 6.3) on the real embedded broker and database: the API,
a direct order that wins the deal, the commission it earns, conflicts and expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from chassis.kafka import ensure_topics
from chassis.metrics import WorkerCounters
from services.registration.adapters.mongo import ensure_indexes
from services.registration.bootstrap import build_processors
from services.registration.config import Settings
from shared.envelope import encode, new_envelope
from shared.topics import CHECKOUT_ORDERS, REGISTRATION_DEALS, REGISTRATION_ENTITLEMENTS
from tests.conftest import Names
from tests.integration.commissions.harness import Worker as CommissionsWorker
from tests.integration.commissions.harness import read_topic as read_ledger
from tests.integration.commissions.harness import settings_for as commissions_settings
from tests.integration.registration.conftest import ADMIN, decoded, produce, read_topic
from tests.unit.registration.builders import line, order


async def partner(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    created = await client.post(
        "/v1/admin/partners",
        headers=ADMIN,
        json={
            "display_name": name,
            "legal_name": f"{name} GmbH",
            "type": "var",
            "tier": "gold",
            "contact_email": "partners@example.com",
            "effective_at": "2025-01-01T00:00:00Z",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["partner_id"], {"Authorization": f"Bearer {body['api_key']}"}


def deal_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {
            "customer_id": "C-881",
            "org_name": "Müller Logistik GmbH",
            "email": "jana@mueller-logistik.example",
            "country": "DE",
        },
        "product": "secure-pro",
        "expected_close": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "estimated_amount_minor": 123457,
        "currency": "EUR",
    }
    body.update(changes)
    return body


async def test_partner_and_admin_endpoints_conflict_isolation_and_bad_input(
    client: httpx.AsyncClient,
) -> None:
    a, key_a = await partner(client, "Nordlicht IT")
    _, key_b = await partner(client, "Südwind Systems")
    submitted = await client.post("/v1/partner/deals", headers=key_a, json=deal_body())
    assert submitted.status_code == 201, submitted.text
    deal_id = submitted.json()["deal_id"]
    assert submitted.json() == {"deal_id": deal_id, "status": "submitted"}

    assert (await client.get(f"/v1/partner/deals/{deal_id}", headers=key_a)).status_code == 200
    other = await client.get(f"/v1/partner/deals/{deal_id}", headers=key_b)
    assert other.status_code == 404 and other.json()["error"]["code"] == "unknown_deal"
    assert (await client.get("/v1/partner/deals", headers=key_b)).json()["deals"] == []
    assert (await client.get("/v1/admin/deals", headers=key_a)).status_code == 403

    queue = await client.get("/v1/admin/deals?status=submitted", headers=ADMIN)
    assert [d["deal_id"] for d in queue.json()["deals"]] == [deal_id]
    approved = await client.post(f"/v1/admin/deals/{deal_id}/approve", headers=ADMIN)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    taken = await client.post(
        "/v1/partner/deals",
        headers=key_b,
        json=deal_body(customer={**deal_body()["customer"], "customer_id": None}),
    )
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert error["code"] == "deal_conflict"
    assert a not in taken.text and "Nordlicht" not in taken.text
    mine = await client.get(f"/v1/partner/deals/{error['deal_id']}", headers=key_b)
    assert (mine.json()["status"], mine.json()["reason"]) == ("rejected", "deal_conflict")

    for changes, field in (
        ({"product": "no-such-product"}, "product"),
        ({"expected_close": "2020-01-01"}, "expected_close"),
        ({"expected_close": "2200-01-01"}, "expected_close"),
        ({"estimated_amount_minor": 10**15 + 1}, "estimated_amount_minor"),
        ({"estimated_amount_minor": -1}, "estimated_amount_minor"),
        ({"currency": "XYZ"}, "currency"),
        (
            {"customer": {**deal_body()["customer"], "org_name": "Evil\u202eCorp"}},
            "customer.org_name",
        ),
    ):
        bad = await client.post("/v1/partner/deals", headers=key_a, json=deal_body(**changes))
        assert bad.status_code == 422, (changes, bad.text)
        assert field in json.dumps(bad.json()["error"]), (field, bad.text)

    rejected = await client.post(
        f"/v1/admin/deals/{deal_id}/reject", headers=ADMIN, json={"reason": "late"}
    )
    assert rejected.status_code == 409 and rejected.json()["error"]["code"] == "deal_not_pending"


async def test_expiry_is_idempotent_and_as_of_the_end_of_a_day(client: httpx.AsyncClient) -> None:
    _, key = await partner(client, "Nordlicht IT")
    deal_id = (await client.post("/v1/partner/deals", headers=key, json=deal_body())).json()[
        "deal_id"
    ]
    approved = (await client.post(f"/v1/admin/deals/{deal_id}/approve", headers=ADMIN)).json()
    until = dt.datetime.fromisoformat(approved["protected_until"].replace("Z", "+00:00"))
    day_before = (until.date() - dt.timedelta(days=1)).isoformat()
    early = await client.post(f"/v1/admin/deals/expire?as_of={day_before}", headers=ADMIN)
    assert early.status_code == 200 and early.json()["expired"] == 0
    run = await client.post(f"/v1/admin/deals/expire?as_of={until.date()}", headers=ADMIN)
    assert run.json()["deal_ids"] == [deal_id]
    again = await client.post(f"/v1/admin/deals/expire?as_of={until.date()}", headers=ADMIN)
    assert again.json()["expired"] == 0
    shown = (await client.get(f"/v1/partner/deals/{deal_id}", headers=key)).json()
    assert shown["status"] == "expired"
    bad = await client.post("/v1/admin/deals/expire?as_of=2200-01-01", headers=ADMIN)
    assert bad.status_code == 422 and "as_of" in bad.text


async def test_submit_approve_direct_order_wins_the_deal_and_earns_the_commission(
    client: httpx.AsyncClient,
    settings: Settings,
    mongo_db: Any,
    mongo_url: str,
    names: Names,
) -> None:
    pid, key = await partner(client, "Nordlicht IT")
    deal_id = (await client.post("/v1/partner/deals", headers=key, json=deal_body())).json()[
        "deal_id"
    ]
    await client.post(f"/v1/admin/deals/{deal_id}/approve", headers=ADMIN)

    # The registration worker's processor on fresh topics.
    source, out, deals_out = names.topic("orders"), names.topic("ents"), names.topic("deals")
    await ensure_topics(settings.kafka_bootstrap, [source, out, deals_out], partitions=1)
    await ensure_indexes(mongo_db)
    counters = WorkerCounters()
    [processor] = build_processors(
        settings,
        topics=[source],
        group_id=names.group("registration"),
        schema_of={source: CHECKOUT_ORDERS},
        topic_map={REGISTRATION_ENTITLEMENTS: out, REGISTRATION_DEALS: deals_out},
        retry_backoff_s=0.1,
    )(mongo_db, counters, "test")
    occurred = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    placed = order("WEB-DEAL-1", line("LK-DEAL-1"), customer_id="C-881")
    envelope = new_envelope(
        "order.placed", placed, occurred_at=occurred, producer="webshop", event_id="e-deal-1"
    )
    await produce(settings.kafka_bootstrap, source, [(b"WEB-DEAL-1", encode(envelope))])

    # Commissions reads registration's output topic, as in production.
    cdb_name = names.database("commissions")
    client_c: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    csettings = commissions_settings(names, settings.kafka_bootstrap, mongo_url, cdb_name)
    csettings = csettings.model_copy(update={"entitlements_topic": out})
    try:
        async with CommissionsWorker(csettings, client_c[cdb_name]):
            await processor.start()
            task = asyncio.create_task(processor.run())
            try:
                won = decoded(await read_topic(settings.kafka_bootstrap, deals_out, expect=1))
                ledger = await read_ledger(
                    settings.kafka_bootstrap, csettings.ledger_topic, expect=1
                )
            finally:
                processor.request_stop()
                await asyncio.wait_for(task, 10)
                await processor.stop()
        entitlements = decoded(await read_topic(settings.kafka_bootstrap, out, expect=3))
    finally:
        await client_c.drop_database(cdb_name)
        await client_c.close()

    assert [(e["event_type"], e["data"]["order_id"]) for e in won] == [("deal.won", "WEB-DEAL-1")]
    applied = next(e for e in entitlements if e["event_type"] == "entitlement.order_applied")
    assert applied["data"]["partner"]["partner_id"] == pid
    assert applied["data"]["partner"]["source"] == "deal_registration"
    lines = [json.loads(r.value)["data"] for r in ledger]
    assert [(x["partner_id"], x["kind"], x["rate_bps"], x["amount_minor"]) for x in lines] == [
        (pid, "new", 1000, 12346)
    ]
    shown = (await client.get(f"/v1/partner/deals/{deal_id}", headers=key)).json()
    assert (shown["status"], shown["order_id"]) == ("won", "WEB-DEAL-1")
