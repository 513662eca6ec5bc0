"""Earned tiers on the real database: rules, certifications, the worker's revenue lines
and refunds, evaluate / preview / the partner's view over HTTP (CONTRACT 6.4)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from chassis.metrics import WorkerCounters
from chassis.records import Inbound
from services.registration.bootstrap import order_handler
from services.registration.config import Settings
from shared.envelope import new_envelope
from shared.events import RefundIssued
from tests.integration.registration.conftest import ADMIN
from tests.integration.registration.test_api import bearer, create_partner, error
from tests.unit.registration.builders import at, incoming, line, order

pytestmark = pytest.mark.integration

RULES = {
    "effective_from": "2025-01-01T00:00:00Z",
    "currency": "EUR",
    "fx": {"USD": "0.92"},
    "tiers": {
        "platinum": {"min_revenue_minor": 10_000_000, "min_certified": 5},
        "gold": {"min_revenue_minor": 1_000_000, "min_certified": 2},
        "silver": {"min_revenue_minor": 100_000, "min_certified": 1},
        "bronze": {"min_revenue_minor": 0, "min_certified": 0},
    },
    "demotion_grace_days": 90,
}


def _inbound(envelope: Any, topic: str, offset: int) -> Inbound:
    return Inbound(topic, 0, offset, None, b"", (), envelope)


async def test_tier_rules_validation_names_the_field(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"tiers": {**RULES["tiers"], "gold": {"min_revenue_minor": 50, "min_certified": 2}}},
            "tiers.gold.min_revenue_minor",
        ),
        (
            {"tiers": {**RULES["tiers"], "gold": {"min_revenue_minor": 10**6, "min_certified": 0}}},
            "tiers.gold.min_certified",
        ),
        ({"fx": {"USD": "0,92"}}, "fx.USD"),
        ({"fx": {"USD": 0.92}}, "fx.USD"),
        ({"fx": {"USD": "-1"}}, "fx.USD"),
        ({"effective_from": "9999-01-01T00:00:00Z"}, "effective_from"),
        ({"effective_from": "1999-12-31T00:00:00Z"}, "effective_from"),
        (
            {
                "tiers": {
                    **RULES["tiers"],
                    "platinum": {"min_revenue_minor": 10**15 + 1, "min_certified": 5},
                }
            },
            "tiers.platinum.min_revenue_minor",
        ),
        ({"demotion_grace_days": -1}, "demotion_grace_days"),
        ({"surprise": 1}, "surprise"),
    ]
    for fields, field in cases:
        response = await client.put("/v1/admin/tier-rules", json={**RULES, **fields}, headers=ADMIN)
        assert response.status_code == 422, (fields, response.text)
        assert error(response)["field"] == field, (fields, error(response))
    listed = await client.get("/v1/admin/tier-rules", headers=ADMIN)
    assert listed.json() == {"versions": [], "in_force": None}


async def test_evaluation_end_to_end(
    client: httpx.AsyncClient, mongo_db: Any, settings: Settings
) -> None:
    assert (await client.put("/v1/admin/tier-rules", json=RULES, headers=ADMIN)).status_code == 201
    listed = (await client.get("/v1/admin/tier-rules", headers=ADMIN)).json()
    assert listed["in_force"] == 1 and listed["versions"][0]["fx"] == {"USD": "0.92"}

    rising = await create_partner(client, tier="bronze", effective_at="2025-01-01T00:00:00Z")
    resting = await create_partner(client, tier="silver", effective_at="2025-01-01T00:00:00Z")
    pid = rising["partner_id"]
    for holder in ("Ana Example", "Ben Example"):
        made = await client.post(
            f"/v1/admin/partners/{pid}/certifications",
            json={"name": "Secure Pro Engineer", "holder": holder, "expires_on": "2027-06-30"},
            headers=ADMIN,
        )
        assert made.status_code == 201, made.text
    bad = await client.post(
        f"/v1/admin/partners/{pid}/certifications",
        json={"name": "X", "holder": "Ana\u202eExample", "expires_on": "2027-06-30"},
        headers=ADMIN,
    )
    assert (bad.status_code, error(bad)["field"]) == (422, "holder")
    missing = await client.post(
        "/v1/admin/partners/P-NOBODY/certifications",
        json={"name": "X", "holder": "Ana", "expires_on": "2027-06-30"},
        headers=ADMIN,
    )
    assert missing.status_code == 404

    # Orders and a refund through the worker's handler, as the worker reads them.
    handle = order_handler(mongo_db, WorkerCounters(), settings)
    sales = [
        incoming(
            order(
                "O-1",
                line("LK-1", net=900_000),
                channel="partner",
                partner_code=rising["seller_code"],
            ),
            "2026-06-01T10:00:00Z",
        ),
        incoming(
            order(
                "O-2",
                line("LK-2", net=300_000),
                channel="partner",
                partner_code=rising["seller_code"],
            ),
            "2026-07-01T10:00:00Z",
        ),
    ]
    batch = [
        _inbound(
            new_envelope(
                "order.placed",
                s.order,
                occurred_at=s.occurred_at,
                producer="t",
                event_id=s.event_id,
            ),
            "checkout.orders.v1",
            n,
        )
        for n, s in enumerate(sales)
    ]
    refund = RefundIssued(
        refund_id="R-1",
        order_id="O-2",
        line_id="1",
        amount_minor=100_000,
        currency="EUR",
        reason="x",
    )
    batch.append(
        _inbound(
            new_envelope(
                "refund.issued", refund, occurred_at=at("2026-07-05T00:00:00Z"), producer="t"
            ),
            "checkout.refunds.v1",
            0,
        )
    )
    await handle(batch)
    await handle(batch)  # a redelivery writes the same lines again
    assert await mongo_db["tier_revenue_lines"].count_documents({}) == 2

    preview = await client.get("/v1/admin/tiers/preview?as_of=2027-01-01", headers=ADMIN)
    assert preview.status_code == 200, preview.text
    moves = {c["partner_id"]: c for c in preview.json()["changes"]}
    assert moves[pid]["move"] == "promotion" and moves[pid]["new_tier"] == "gold"
    assert moves[pid]["revenue"]["amount_minor"] == 1_100_000
    assert moves[resting["partner_id"]]["move"] == "pending_demotion"
    assert preview.json()["applied"] is False

    ran = await client.post("/v1/admin/tiers/evaluate?as_of=2027-01-01", headers=ADMIN)
    assert ran.status_code == 200 and ran.json()["promotions"] == 1
    again = await client.post("/v1/admin/tiers/evaluate?as_of=2027-01-01", headers=ADMIN)
    assert again.json()["promotions"] == 0
    outbox = await mongo_db["outbox"].find({"key": pid}).to_list()
    updates = [json.loads(d["value"]) for d in outbox]
    updates = [u for u in updates if u["event_type"] == "partner.updated"]
    assert len(updates) == 1
    assert (updates[0]["data"]["tier"], updates[0]["data"]["tier_reason"]) == ("gold", "evaluation")

    mine = await client.get("/v1/partner/tier?as_of=2027-01-01", headers=bearer(rising["api_key"]))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["tier"], body["qualifies_for"], body["certified"]) == ("gold", "gold", 2)
    assert body["next_tier"] == {
        "tier": "platinum",
        "min_revenue_minor": 10_000_000,
        "min_certified": 5,
        "revenue_minor_missing": 8_900_000,
        "certified_missing": 3,
    }
    assert (await client.get("/v1/partner/tier", headers=ADMIN)).status_code == 403
    assert (
        await client.post("/v1/admin/tiers/evaluate", headers=bearer(rising["api_key"]))
    ).status_code == 403
    late = await client.put(
        "/v1/admin/tier-rules",
        json={**RULES, "effective_from": "2026-06-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert (late.status_code, error(late)["field"]) == (422, "effective_from")
