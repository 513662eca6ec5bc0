"""CONTRACT 6.5 on the real database: rate overrides, adjustments, minimum payout."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.commissions.domain.decisions import commission_minor
from shared.envelope import parse_event
from shared.ids import adjustment_line_id
from shared.topics import COMMISSIONS_LEDGER
from tests.integration.commissions import test_api
from tests.integration.commissions.test_api import ADMIN, DIST, GOLD, Api
from tests.unit.commissions.events import order_applied

api = test_api.api
"""The commissions API on the real database, with its clock at 2027-03-01T08:00:00Z."""

OVERRIDES = "/v1/admin/rate-overrides"
ADJUSTMENTS = "/v1/admin/adjustments"


def lines_of(decisions: dict[str, Any]) -> dict[str, tuple[int, str, int]]:
    """role -> (rate_bps, rate_source, amount_minor) of the one order line decided."""
    (decision,) = decisions["decisions"]
    return {
        x["role"]: (x["rate_bps"], x["rate_source"], x["amount_minor"]) for x in decision["lines"]
    }


async def decided(api: Api, order_id: str) -> dict[str, tuple[int, str, int]]:
    response = await api.client.get(f"/v1/admin/decisions?order_id={order_id}", headers=ADMIN)
    return lines_of(response.json())


async def test_the_most_specific_override_in_force_beats_the_tier_table(api: Api) -> None:
    c = api.client
    put = await c.put(
        OVERRIDES,
        headers=ADMIN,
        json={
            "entries": [
                {
                    "product": "secure-pro",
                    "rate_bps": 1200,
                    "effective_from": "2027-03-15T00:00:00Z",
                },
                {
                    "partner_id": "P-GOLD",
                    "rate_bps": 1800,
                    "effective_from": "2027-03-15T00:00:00Z",
                },
                {
                    "partner_id": "P-GOLD",
                    "product": "secure-pro",
                    "rate_bps": 2500,
                    "effective_from": "2027-03-15T00:00:00Z",
                },
                {
                    "partner_id": "P-GOLD",
                    "kind": "upgrade",
                    "rate_bps": 3000,
                    "effective_from": "2027-03-15T00:00:00Z",
                },
            ]
        },
    )
    assert put.status_code == 201, put.text
    listed = (await c.get(OVERRIDES, headers=ADMIN)).json()["entries"]
    assert [(e["version"], e["position"], e["rate_bps"]) for e in listed] == [
        (1, 0, 1200),
        (1, 1, 1800),
        (1, 2, 2500),
        (1, 3, 3000),
    ]
    await api.feed(
        order_applied("WEB-BEFORE", occurred_at="2027-03-14T23:59:59Z"),
        order_applied("WEB-PP", occurred_at="2027-04-01T10:00:00Z"),
        order_applied("WEB-P", occurred_at="2027-04-01T10:00:00Z", product="secure-basic"),
        order_applied(
            "WEB-PK", occurred_at="2027-04-01T10:00:00Z", product="secure-basic", kind="upgrade"
        ),
        order_applied("WEB-PROD", occurred_at="2027-04-01T10:00:00Z", partner_id="P-OTHER"),
        order_applied(
            "WEB-TIER",
            occurred_at="2027-04-01T10:00:00Z",
            partner_id="P-OTHER",
            product="secure-basic",
        ),
    )
    net = 123457
    # Before the entries start: the tier table (gold renewal 1500).
    assert (await decided(api, "WEB-BEFORE"))["partner_of_record"] == (1500, "tier_table", 18519)
    # Partner and product beats partner and product alone; the distributor keeps its 200.
    pp = await decided(api, "WEB-PP")
    assert pp["partner_of_record"] == (2500, "override", commission_minor(net, 2500))
    assert pp["distributor_override"] == (200, "tier_table", 2469)
    assert (await decided(api, "WEB-P"))["partner_of_record"][:2] == (1800, "override")
    # Within the partner level, the entry naming the line's kind is the more specific.
    assert (await decided(api, "WEB-PK"))["partner_of_record"][:2] == (3000, "override")
    assert (await decided(api, "WEB-PROD"))["partner_of_record"][:2] == (1200, "override")
    assert (await decided(api, "WEB-TIER"))["partner_of_record"][:2] == (1500, "tier_table")
    mine = (await c.get("/v1/partner/commissions", headers=GOLD)).json()["lines"]
    assert {x["order_id"]: x["rate_source"] for x in mine}["WEB-PP"] == "override"
    # A second PUT is a new version; nothing earlier is edited.
    again = await c.put(
        OVERRIDES,
        headers=ADMIN,
        json={
            "entries": [{"product": "x", "rate_bps": 1, "effective_from": "2027-05-01T00:00:00Z"}]
        },
    )
    assert [e["version"] for e in again.json()["entries"]] == [2]
    assert len((await c.get(OVERRIDES, headers=ADMIN)).json()["entries"]) == 5


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (
            {"partner_id": "P-1", "rate_bps": 10_001, "effective_from": "2027-04-01T00:00:00Z"},
            "rate_bps",
        ),
        (
            {"partner_id": "P-1", "rate_bps": -1, "effective_from": "2027-04-01T00:00:00Z"},
            "rate_bps",
        ),
        (
            {"partner_id": "P-1", "rate_bps": 1.5, "effective_from": "2027-04-01T00:00:00Z"},
            "rate_bps",
        ),
        (
            {"partner_id": "P-1", "rate_bps": 100, "effective_from": "2200-01-01T00:00:00Z"},
            "effective_from",
        ),
        (
            {"partner_id": "P-1", "rate_bps": 100, "effective_from": "2027-01-01T00:00:00Z"},
            "effective_from",
        ),
        ({"rate_bps": 100, "effective_from": "2027-04-01T00:00:00Z"}, "partner_id"),
        (
            {"partner_id": "P-1", "rate_bps": 1, "effective_from": "2027-04-01T00:00:00Z", "x": 1},
            "x",
        ),
        (
            {
                "partner_id": "P-1",
                "kind": "resale",
                "rate_bps": 1,
                "effective_from": "2027-04-01T00:00:00Z",
            },
            "kind",
        ),
    ],
)
async def test_bad_override_entries_are_422_naming_the_field(
    api: Api, entry: dict[str, Any], field: str
) -> None:
    response = await api.client.put(OVERRIDES, headers=ADMIN, json={"entries": [entry]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].endswith(field)
    assert (await api.client.get(OVERRIDES, headers=ADMIN)).json()["entries"] == []


def adjustment(**changes: Any) -> dict[str, Any]:
    return {
        "partner_id": "P-GOLD",
        "amount_minor": 25000,
        "currency": "EUR",
        "reason": "Q1 launch bonus",
        "reference": "FIN-2027-0042",
        **changes,
    }


async def test_an_adjustment_is_idempotent_per_key_and_payable_at_once(api: Api) -> None:
    await api.feed(order_applied())
    c = api.client
    key = {"Idempotency-Key": "adj-0042"}
    first = await c.post(ADJUSTMENTS, headers={**ADMIN, **key}, json=adjustment())
    assert first.status_code == 201, first.text
    line = first.json()
    assert line["line_id"] == adjustment_line_id("adj-0042")
    assert (line["role"], line["status"], line["amount_minor"]) == ("adjustment", "payable", 25000)
    assert line["order_id"] is None and line["reason"] == "Q1 launch bonus"
    assert line["occurred_at"] == line["payable_at"] == "2027-03-01T08:00:00Z"
    same = await c.post(ADJUSTMENTS, headers={**ADMIN, **key}, json=adjustment())
    assert (same.status_code, same.json()) == (201, line)
    other = await c.post(ADJUSTMENTS, headers={**ADMIN, **key}, json=adjustment(amount_minor=1))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # A negative adjustment (a correction) is a line of its own under its own key.
    minus = await c.post(
        ADJUSTMENTS,
        headers={**ADMIN, "Idempotency-Key": "adj-0043"},
        json=adjustment(amount_minor=-500),
    )
    assert minus.status_code == 201
    outbox = [doc async for doc in api.db["outbox"].find({}).sort("_id", 1)]
    events = [parse_event(COMMISSIONS_LEDGER, bytes(doc["value"])) for doc in outbox]
    assert [(e.event_type, e.data.amount_minor) for e in events] == [  # type: ignore[attr-defined]
        ("commission.adjusted", 25000),
        ("commission.adjusted", -500),
    ]
    march = (await c.get("/v1/partner/statements/2027-03", headers=GOLD)).json()
    assert sorted(x["amount_minor"] for x in march["lines"] if x["role"] == "adjustment") == [
        -500,
        25000,
    ]
    paid = await c.post("/v1/admin/statements/P-GOLD/2027-03/paid", headers=ADMIN)
    assert paid.json()["paid_lines"] == 2
    assert [
        e.event_type
        for e in [
            parse_event(COMMISSIONS_LEDGER, bytes(d["value"]))
            async for d in api.db["outbox"].find({"_id": {"$gt": 2}})
        ]
    ] == [
        "commission.paid",
        "commission.paid",
    ]
    # Paid since, the same request still answers what it answered first.
    later = await c.post(ADJUSTMENTS, headers={**ADMIN, **key}, json=adjustment())
    assert (later.status_code, later.json()) == (201, line)


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        (adjustment(amount_minor=0), {"Idempotency-Key": "k"}, "amount_minor"),
        (adjustment(currency="USD"), {"Idempotency-Key": "k"}, "currency"),
        (adjustment(partner_id="P-NOBODY"), {"Idempotency-Key": "k"}, "currency"),
        (adjustment(currency="XXX"), {"Idempotency-Key": "k"}, "currency"),
        (adjustment(amount_minor=10**15 + 1), {"Idempotency-Key": "k"}, "amount_minor"),
        (adjustment(amount_minor="5"), {"Idempotency-Key": "k"}, "amount_minor"),
        (adjustment(note="x"), {"Idempotency-Key": "k"}, "note"),
        (adjustment(), {}, "Idempotency-Key"),
    ],
)
async def test_bad_adjustments_are_422_naming_the_field(
    api: Api, body: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    await api.feed(order_applied())
    response = await api.client.post(ADJUSTMENTS, headers={**ADMIN, **headers}, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert await api.db["outbox"].count_documents({}) == 0


async def test_below_the_minimum_payout_lines_carry_into_the_next_statement(api: Api) -> None:
    c = api.client
    # The distributor earns 2469 EUR in January: below the 5000 default minimum.
    await api.feed(order_applied())
    await c.post("/v1/admin/payables/run?as_of=2027-02-04", headers=ADMIN)
    refused = await c.post("/v1/admin/statements/P-DIST/2027-01/paid", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "below_minimum_payout"
    february = (await c.get("/v1/partner/statements/2027-02", headers=DIST)).json()
    assert [(x["amount_minor"], x["status"], x["carried_forward"]) for x in february["lines"]] == [
        (2469, "payable", True)
    ]
    assert february["totals"][0]["payable_minor"] == 2469
    assert february["totals"][0]["carried_forward_minor"] == 2469
    text = (
        await c.get("/v1/partner/statements/2027-02", headers={**DIST, "Accept": "text/csv"})
    ).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["amount_minor"], r["carried_forward"], r["rate_source"]) for r in rows] == [
        ("2469", "true", "tier_table")
    ]
    # February adds 4000: 6469 reaches the minimum, and both lines are paid.
    await api.feed(order_applied("WEB-FEB", net=200000, occurred_at="2027-02-01T00:00:00Z"))
    await c.post("/v1/admin/payables/run?as_of=2027-03-03", headers=ADMIN)
    paid = await c.post("/v1/admin/statements/P-DIST/2027-02/paid", headers=ADMIN)
    assert paid.status_code == 200, paid.text
    assert paid.json()["paid_lines"] == 2
    assert paid.json()["totals"][0]["paid_minor"] == 6469
    january = (await c.get("/v1/partner/statements/2027-01", headers=DIST)).json()
    assert [x["status"] for x in january["lines"]] == ["paid"]
    march = (await c.get("/v1/partner/statements/2027-03", headers=DIST)).json()
    assert march["lines"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", OVERRIDES), ("GET", OVERRIDES), ("POST", ADJUSTMENTS)],
)
async def test_the_new_admin_routes_refuse_partner_keys_and_strangers(
    api: Api, method: str, path: str
) -> None:
    # Auth comes before the Idempotency-Key and the body are looked at.
    for headers, expected in (({}, 401), (GOLD, 403), ({"Authorization": "Bearer x"}, 401)):
        response = await api.client.request(method, path, headers=headers)
        assert response.status_code == expected, (headers, response.text)
        assert response.json()["error"]["code"]
