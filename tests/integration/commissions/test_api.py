"""The commissions API on the real database: auth, partner views, statements, admin actions."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chassis import heartbeat
from chassis.auth import PartnerPrincipal
from services.commissions.adapters.mongo import prepare
from services.commissions.bootstrap import build_api, build_ingest
from services.commissions.config import Settings
from services.commissions.domain.statements import CSV_COLUMNS
from tests.conftest import Names
from tests.integration.commissions.harness import (
    ADMIN_TOKEN,
    Worker,
    produce,
    settings_for,
    wait_for,
)
from tests.unit.commissions.builders import at
from tests.unit.commissions.events import Stream, order_applied, refund_issued
from tests.unit.commissions.fakes import FakeHorizon, FixedClock

KEYS = {"key-gold": "P-GOLD", "key-dist": "P-DIST", "key-other": "P-OTHER"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GOLD = {"Authorization": "Bearer key-gold"}
DIST = {"Authorization": "Bearer key-dist"}
OTHER = {"Authorization": "Bearer key-other"}


async def partner_keys(token: str) -> PartnerPrincipal | None:
    partner_id = KEYS.get(token)
    return PartnerPrincipal(partner_id) if partner_id else None


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: Settings, db: Any) -> None:
        self.client = client
        self.settings = settings
        self.db = db
        self.stream = Stream()
        self.ingest = build_ingest(settings, db)

    async def feed(self, *events: Any) -> Any:
        return await self.ingest.handle([self.stream.record(e) for e in events])


@pytest.fixture
async def api(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names
) -> AsyncIterator[Api]:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    # The API prepares its collections at start-up (create_app's `prepare`, which goes
    # on in the background past 5 s); this test feeds events at once, and the embedded
    # database can livelock when a collection is created by an index build and an
    # insert at the same moment. Prepared first, as a worker does, the two never race.
    await prepare(mongo_db)
    app = build_api(
        settings,
        partner_keys=partner_keys,
        horizon=FakeHorizon(),
        clock=FixedClock(at("2027-03-01T08:00:00Z")),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://commissions") as client:
            yield Api(client, settings, mongo_db)


async def test_tokens_missing_unknown_or_of_the_wrong_kind(api: Api) -> None:
    c = api.client
    assert (await c.get("/v1/partner/commissions")).status_code == 401
    unknown = await c.get("/v1/partner/commissions", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == "unauthorized"
    assert (await c.get("/v1/partner/commissions", headers=ADMIN)).status_code == 403
    assert (await c.get("/v1/admin/commissions", headers=GOLD)).status_code == 403
    assert (await c.get("/v1/admin/commissions")).status_code == 401
    assert (await c.get("/v1/admin/commissions", headers=ADMIN)).status_code == 200


async def test_a_partner_sees_its_own_lines_only_with_filters(api: Api) -> None:
    await api.feed(
        order_applied(),
        order_applied("WEB-2", occurred_at="2027-02-10T00:00:00Z"),
        order_applied("WEB-3", partner_id="P-OTHER", parent=None),
    )
    await api.feed(refund_issued("RF-1", 61728))
    c = api.client
    mine = (await c.get("/v1/partner/commissions", headers=GOLD)).json()["lines"]
    assert {x["partner_id"] for x in mine} == {"P-GOLD"}
    assert sorted(x["amount_minor"] for x in mine) == [-9259, 18519, 18519]
    january = (
        await c.get("/v1/partner/commissions?from=2027-01-01&to=2027-01-31", headers=GOLD)
    ).json()["lines"]
    assert [x["amount_minor"] for x in january] == [18519, -9259]
    accrued = (await c.get("/v1/partner/commissions?status=payable", headers=GOLD)).json()
    assert accrued["lines"] == []
    distributor = (await c.get("/v1/partner/commissions", headers=DIST)).json()["lines"]
    assert {x["role"] for x in distributor} == {"distributor_override"}
    other = (await c.get("/v1/partner/commissions", headers=OTHER)).json()["lines"]
    assert [x["order_id"] for x in other] == ["WEB-3"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("from=2027-13-01", "from"), ("to=yesterday", "to"), ("status=owed", "status")],
)
async def test_bad_query_parameters_are_422_naming_the_field(
    api: Api, query: str, field: str
) -> None:
    response = await api.client.get(f"/v1/partner/commissions?{query}", headers=GOLD)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_statement_json_totals_per_currency_and_status(api: Api) -> None:
    await api.feed(order_applied(), order_applied("WEB-JP", net=98765, currency="JPY", kind="new"))
    await api.feed(refund_issued("RF-1", 61728))
    response = await api.client.get("/v1/partner/statements/2027-01", headers=GOLD)
    assert response.status_code == 200
    statement = response.json()
    assert statement["partner_id"] == "P-GOLD" and statement["month"] == "2027-01"
    assert len(statement["lines"]) == 3
    assert statement["totals"] == [
        {
            "currency": "EUR",
            "accrued_minor": 9260,
            "payable_minor": 0,
            "paid_minor": 0,
            "net_minor": 9260,
            "carried_forward_minor": 0,
        },
        {
            "currency": "JPY",
            "accrued_minor": 9876,
            "payable_minor": 0,
            "paid_minor": 0,
            "net_minor": 9876,
            "carried_forward_minor": 0,
        },
    ]


async def test_a_month_without_lines_is_200_with_no_lines_and_zero_totals(api: Api) -> None:
    response = await api.client.get("/v1/partner/statements/2031-05", headers=GOLD)
    assert response.status_code == 200
    assert response.json() == {
        "partner_id": "P-GOLD",
        "month": "2031-05",
        "lines": [],
        "totals": [],
    }
    bad = await api.client.get("/v1/partner/statements/2031-13", headers=GOLD)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "month"


async def test_statement_csv_has_the_documented_columns(api: Api) -> None:
    await api.feed(order_applied())
    await api.feed(refund_issued("RF-1", 61728))
    response = await api.client.get(
        "/v1/partner/statements/2027-01", headers={**GOLD, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [dict(zip(rows[0], row, strict=True))["amount_minor"] for row in rows[1:]] == [
        "18519",
        "-9259",
    ]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["occurred_at"] == "2027-01-05T10:00:00Z"
    assert first["payable_at"] == "2027-02-04T10:00:00Z"
    assert first["refund_id"] == ""


async def test_admin_lines_by_partner_and_order_and_decisions_with_reasons(api: Api) -> None:
    await api.feed(
        order_applied(),
        order_applied("WEB-2", line_id="1", channel="partner"),
        order_applied("WEB-2", line_id="2", partner_id=None),
        order_applied("WEB-2", line_id="3", status="suspended"),
    )
    c = api.client
    by_partner = (await c.get("/v1/admin/commissions?partner_id=P-DIST", headers=ADMIN)).json()
    assert [x["role"] for x in by_partner["lines"]] == ["distributor_override"]
    by_order = (await c.get("/v1/admin/commissions?order_id=WEB-100017", headers=ADMIN)).json()
    assert len(by_order["lines"]) == 2
    decisions = (await c.get("/v1/admin/decisions?order_id=WEB-2", headers=ADMIN)).json()
    assert [(d["line_id"], d["decision"], d["reason"]) for d in decisions["decisions"]] == [
        ("1", "denied", "partner_channel_sale"),
        ("2", "denied", "no_partner_of_record"),
        ("3", "denied", "partner_inactive"),
    ]
    granted = (await c.get("/v1/admin/decisions?order_id=WEB-100017", headers=ADMIN)).json()
    assert granted["decisions"][0]["decision"] == "granted"
    assert granted["decisions"][0]["rate_table_version"] == 1


def table(bps: int, effective_from: str = "2027-04-01T00:00:00Z") -> dict[str, Any]:
    per_kind = {"new": bps, "renewal": bps, "upgrade": bps}
    return {
        "effective_from": effective_from,
        "rates": {tier: per_kind for tier in ("platinum", "gold", "silver", "bronze")},
        "distributor_override_bps": 300,
    }


async def test_rate_tables_are_added_never_edited_and_apply_from_effective_from(api: Api) -> None:
    c = api.client
    listed = (await c.get("/v1/admin/rate-tables", headers=ADMIN)).json()
    assert [v["version"] for v in listed["versions"]] == [1]
    assert listed["versions"][0]["rates"]["gold"] == {"new": 1000, "renewal": 1500, "upgrade": 1000}
    added = await c.put("/v1/admin/rate-tables", json=table(2500), headers=ADMIN)
    assert added.status_code == 201 and added.json()["version"] == 2
    listed = (await c.get("/v1/admin/rate-tables", headers=ADMIN)).json()
    assert [v["version"] for v in listed["versions"]] == [1, 2]
    assert listed["in_force"] == 1
    await api.feed(
        order_applied("WEB-BEFORE", occurred_at="2027-03-31T23:59:59Z"),
        order_applied("WEB-AFTER", occurred_at="2027-04-01T00:00:00Z"),
    )
    lines = (await c.get("/v1/admin/commissions?partner_id=P-GOLD", headers=ADMIN)).json()["lines"]
    assert [(x["order_id"], x["rate_bps"], x["rate_table_version"]) for x in lines] == [
        ("WEB-BEFORE", 1500, 1),
        ("WEB-AFTER", 2500, 2),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (table(2500, effective_from="2027-02-01T00:00:00Z"), "effective_from"),
        (table(10001), "rates.platinum.new"),
        (
            {**table(100), "rates": {"gold": {"new": 1, "renewal": 1, "upgrade": 1}}},
            "rates.platinum",
        ),
        ({**table(100), "distributor_override_bps": 1.5}, "distributor_override_bps"),
    ],
)
async def test_bad_rate_tables_are_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.client.put("/v1/admin/rate-tables", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_payables_run_and_paid_statement_through_the_outbox(api: Api) -> None:
    await api.feed(order_applied(), order_applied("WEB-2", net=1000))
    await api.feed(refund_issued("RF-ALL", 1000, order_id="WEB-2"))
    c = api.client
    early = await c.post("/v1/admin/payables/run?as_of=2027-02-03", headers=ADMIN)
    assert early.json() == {"as_of": "2027-02-03T23:59:59.999Z", "payable_lines": 0}
    run = await c.post("/v1/admin/payables/run?as_of=2027-02-04", headers=ADMIN)
    assert run.json()["payable_lines"] == 2
    again = await c.post("/v1/admin/payables/run?as_of=2027-02-04", headers=ADMIN)
    assert again.json()["payable_lines"] == 0
    statement = (await c.get("/v1/partner/statements/2027-01", headers=GOLD)).json()
    assert statement["totals"][0]["payable_minor"] == 18519
    # WEB-2 was refunded in full inside its hold: its 150 and -150 stay accrued, netting 0.
    assert statement["totals"][0]["accrued_minor"] == 0
    paid = await c.post("/v1/admin/statements/P-GOLD/2027-01/paid", headers=ADMIN)
    assert paid.json() == {
        "partner_id": "P-GOLD",
        "month": "2027-01",
        "paid_lines": 1,
        "totals": [
            {
                "currency": "EUR",
                "accrued_minor": 0,
                "payable_minor": 0,
                "paid_minor": 18519,
                "net_minor": 18519,
                "carried_forward_minor": 0,
            }
        ],
    }
    assert (await c.post("/v1/admin/statements/P-GOLD/2027-01/paid", headers=ADMIN)).json()[
        "paid_lines"
    ] == 0
    outbox = [doc async for doc in api.db["outbox"].find({}).sort("_id", 1)]
    assert [doc["_id"] for doc in outbox] == [1, 2, 3]
    bad = await c.post("/v1/admin/payables/run?as_of=tomorrow", headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "as_of"


async def test_metrics_count_the_workers_dead_letters_by_reason(api: Api) -> None:
    settings = api.settings
    async with Worker(settings, api.db, relay=False) as worker:
        line = order_applied(net=10)
        await produce(
            settings.kafka_bootstrap,
            [
                (settings.entitlements_topic, b"LK", api.stream.record(line).value),
                (
                    settings.refunds_topic,
                    b"WEB-100017",
                    api.stream.record(refund_issued("RF-1", 11)).value,
                ),
            ],
        )
        await wait_for(
            lambda: worker.counters.get(
                "dead_letters_total", topic=settings.refunds_topic, reason="refund_exceeds_line"
            ),
            what="the dead letter to be counted",
        )
        # What the worker's heartbeat loop does every few seconds.
        await heartbeat.beat(
            api.db,
            instance="worker-1",
            assigned=["x:0"],
            counters=worker.counters.snapshot(),
            gauges={},
        )
    text = (await api.client.get("/metrics")).text
    assert any(
        line.startswith("channelkeep_worker_dead_letters")
        and 'reason="refund_exceeds_line"' in line
        for line in text.splitlines()
    ), text


async def test_statement_csv_cells_never_run_as_formulas(api: Api) -> None:
    """CONTRACT 6.9: text that starts =, +, -, @, tab or CR gets a leading ', numbers stay."""
    await api.feed(order_applied())
    await api.feed(refund_issued("RF-1", 61728))
    await api.feed(order_applied('=HYPERLINK("http://evil.example","x")'))
    await api.feed(order_applied("@SUM(1+1)*cmd|' /C calc'!A0"))
    response = await api.client.get(
        "/v1/partner/statements/2027-01", headers={**GOLD, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    rows = [dict(zip(*pair, strict=True)) for pair in _pairs(response.text)]
    order_ids = {row["order_id"] for row in rows}
    assert '\'=HYPERLINK("http://evil.example","x")' in order_ids
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in order_ids
    assert "-9259" in {row["amount_minor"] for row in rows}  # a number stays a number
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell.lstrip("-").isdigit(), cell


def _pairs(text: str) -> list[tuple[list[str], list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return [(rows[0], row) for row in rows[1:]]


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", "/v1/partner/commissions?to=9999-12-31", "to"),
        ("GET", "/v1/partner/commissions?from=1999-12-31", "from"),
        ("GET", "/v1/partner/commissions?from=2200-01-01T00:00:00Z", "from"),
        ("GET", "/v1/partner/commissions?to=0999-01-01", "to"),
        ("POST", "/v1/admin/payables/run?as_of=9999-12-31", "as_of"),
        ("POST", "/v1/admin/payables/run?as_of=2199-12-31T23:00:00-05:00", "as_of"),
    ],
)
async def test_out_of_range_query_dates_are_422_naming_the_parameter(
    api: Api, method: str, url: str, field: str
) -> None:
    headers = ADMIN if "/admin/" in url else GOLD
    response = await api.client.request(method, url, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_the_bounds_themselves_are_accepted(api: Api) -> None:
    ok = await api.client.get("/v1/partner/commissions?from=2000-01-01&to=2199-12-31", headers=GOLD)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "effective_from", ["9999-12-31T00:00:00Z", "2200-01-01T00:00:00Z", "1999-12-31T23:59:59Z"]
)
async def test_a_rate_table_outside_the_bounds_is_refused(api: Api, effective_from: str) -> None:
    """A table dated 9999 would block every later version (CONTRACT 6.9)."""
    response = await api.client.put(
        "/v1/admin/rate-tables", json=table(2500, effective_from=effective_from), headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "effective_from"
    listed = (await api.client.get("/v1/admin/rate-tables", headers=ADMIN)).json()
    assert [v["version"] for v in listed["versions"]] == [1]
