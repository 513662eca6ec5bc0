"""Bad input catalogue (CONTRACT 1.4) against the running suite.

Every kind of bad event is injected into every topic a service consumes. Each
lands on `<topic>.dlq` unchanged (same key and value) with a precise
`error.reason`; no worker dies, every /status stays 200, and valid events sent
after the bad ones are processed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.reliability.harness import (
    Live,
    dumps,
    envelope,
    order_data,
    produce,
    read_topic,
    refund_data,
    running_suite,
)

pytestmark = [pytest.mark.e2e]

ORDERS = "checkout.orders.v1"
REFUNDS = "checkout.refunds.v1"
ADVISORIES = "vendor.advisories.v1"
PARTNERS = "registration.partners.v1"
ENTITLEMENTS = "registration.entitlements.v1"
LEDGER = "commissions.ledger.v1"

# Which consumer groups read each topic: a bad record lands on the DLQ once per group.
CONSUMERS = {
    ORDERS: 1,
    REFUNDS: 1,
    ADVISORIES: 1,
    PARTNERS: 1,
    ENTITLEMENTS: 2,  # commissions and notifications
    LEDGER: 1,
}


@dataclass(frozen=True)
class Case:
    topic: str
    kind: str
    key: bytes
    value: bytes
    reason: str
    consumers: int = 0  # consumer groups that dead-letter it; 0: every group of the topic

    @property
    def copies(self) -> int:
        return self.consumers or CONSUMERS[self.topic]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_suite(tmp_path_factory.mktemp("bad-input"))


def _wait(check: Callable[[], Any], what: str, wait_s: float = 60.0) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def _partner(live: Live, run: str) -> dict[str, Any]:
    with live.http() as http:
        response = http.post(
            f"{live.url('registration')}/v1/admin/partners",
            headers=live.admin(),
            json={
                "display_name": f"Bad Input {run}",
                "legal_name": f"Bad Input {run} GmbH",
                "type": "var",
                "tier": "gold",
                "contact_email": f"bad-{run.lower()}@partner.example",
                "branding": {},
                "co_brand_customer_messages": False,
                "customer_ids": [],
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


def _decided(live: Live, order_id: str) -> bool:
    with live.http() as http:
        response = http.get(
            f"{live.url('commissions')}/v1/admin/decisions",
            params={"order_id": order_id},
            headers=live.admin(),
        )
    if response.status_code != 200:
        return False
    body = response.json()
    items = body.get("decisions", body) if isinstance(body, dict) else body
    return bool(items)


def _generic(topic: str, template: dict[str, Any], run: str) -> list[tuple[str, Any, str]]:
    """Bad events any consumed topic must refuse: (kind, value, reason)."""
    data_field = next(iter(template["data"]))

    def mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        document = copy.deepcopy(template)
        document["event_id"] = str(uuid.uuid4())
        change(document)
        return document

    return [
        ("not UTF-8", b"\xff\xfe\x00garbage", "unparsable"),
        ("not JSON", b"{this is not json", "unparsable"),
        ("empty value", b"", "unparsable"),
        ("JSON array", b"[1, 2, 3]", "unparsable"),
        ("NaN literal", b'{"event_type": NaN}', "unparsable"),
        ("missing event_type", mutate(lambda d: d.pop("event_type")), "schema_violation"),
        (
            "unknown event type",
            mutate(lambda d: d.update(event_type="order.cancelled")),
            "unknown_event_type",
        ),
        ("missing data", mutate(lambda d: d.pop("data")), "schema_violation"),
        (
            f"missing data.{data_field}",
            mutate(lambda d: d["data"].pop(data_field)),
            "schema_violation",
        ),
        (
            "wrong type: schema_version string",
            mutate(lambda d: d.update(schema_version="1")),
            "schema_violation",
        ),
        (
            "naive occurred_at",
            mutate(lambda d: d.update(occurred_at="2027-01-05T10:00:00")),
            "schema_violation",
        ),
        (
            "future schema_version",
            mutate(lambda d: d.update(schema_version=2)),
            "unsupported_schema_version",
        ),
        (
            "~900 KB payload",
            mutate(lambda d: d.update(padding="x" * 900_000)),
            "payload_too_large",
        ),
    ]


def _order_cases(run: str, code: str) -> list[tuple[str, Any, str]]:
    def order(change: Callable[[dict[str, Any]], None], **kw: Any) -> dict[str, Any]:
        data = order_data(f"BAD-{run}-{uuid.uuid4().hex[:6]}", f"LK-BAD-{run}", **kw)
        change(data)
        return envelope("order.placed", data)

    line = "lines"
    return [
        (
            "negative amount",
            order(lambda d: d[line][0].update(net_amount_minor=-1)),
            "schema_violation",
        ),
        (
            "float amount",
            order(lambda d: d[line][0].update(net_amount_minor=10.5)),
            "schema_violation",
        ),
        (
            "string amount",
            order(lambda d: d[line][0].update(net_amount_minor="100")),
            "schema_violation",
        ),
        (
            "huge amount (> int64)",
            order(lambda d: d[line][0].update(net_amount_minor=10**30)),
            "schema_violation",
        ),
        ("unknown currency", order(lambda d: d.update(currency="XXY")), "schema_violation"),
        ("lower-case currency", order(lambda d: d.update(currency="eur")), "schema_violation"),
        ("unknown line kind", order(lambda d: d[line][0].update(kind="gift")), "schema_violation"),
        ("no lines", order(lambda d: d.update(lines=[])), "schema_violation"),
        (
            "partner sale without partner_code",
            order(lambda d: d.update(sales_channel="partner", partner_code=None)),
            "schema_violation",
        ),
        (
            "term_end before term_start",
            order(lambda d: d[line][0].update(term_end="2026-01-01")),
            "schema_violation",
        ),
        (
            "bad e-mail",
            order(lambda d: d["customer"].update(email="no-at-sign")),
            "schema_violation",
        ),
        ("zero quantity", order(lambda d: d[line][0].update(quantity=0)), "schema_violation"),
        (
            "unknown sales channel",
            order(lambda d: d.update(sales_channel="telepathy")),
            "schema_violation",
        ),
    ]


def _refund_cases(run: str) -> list[tuple[str, Any, str]]:
    order_id = f"BAD-{run}-BASE"

    def refund(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        data = refund_data(f"RF-{run}-{uuid.uuid4().hex[:6]}", order_id, 100)
        change(data)
        return envelope("refund.issued", data)

    return [
        ("zero refund", refund(lambda d: d.update(amount_minor=0)), "schema_violation"),
        ("negative refund", refund(lambda d: d.update(amount_minor=-5)), "schema_violation"),
        (
            "huge refund (> int64)",
            refund(lambda d: d.update(amount_minor=10**30)),
            "schema_violation",
        ),
        ("unknown currency", refund(lambda d: d.update(currency="ABC")), "schema_violation"),
        ("mismatched currency", refund(lambda d: d.update(currency="USD")), "currency_mismatch"),
        (
            "refund over the line",
            refund(lambda d: d.update(amount_minor=100001)),
            "refund_exceeds_line",
        ),
    ]


def _reason_counts(records: list[Any], key: bytes) -> list[str]:
    return [r.headers.get("error.reason", "") for r in records if r.key == key]


def test_bad_input_lands_on_dlq_and_the_stream_goes_on(live: Live) -> None:
    run = uuid.uuid4().hex[:6].upper()
    partner = _partner(live, run)
    code = partner["seller_code"]

    # Phase 1: valid history the rule checks need (an order line commissions knows).
    base_order = envelope(
        "order.placed", order_data(f"BAD-{run}-BASE", f"LK-BAD-{run}-BASE", net=100000)
    )
    partner_sale = envelope(
        "order.placed",
        order_data(f"BAD-{run}-PRT", f"LK-BAD-{run}-PRT", channel="partner", partner_code=code),
    )
    asyncio.run(
        produce(
            live.bootstrap,
            [
                (ORDERS, base_order["data"]["order_id"].encode(), dumps(base_order)),
                (ORDERS, partner_sale["data"]["order_id"].encode(), dumps(partner_sale)),
            ],
        )
    )
    _wait(lambda: _decided(live, f"BAD-{run}-BASE"), "the base order's decision")

    # Real records of the topics the services produce, as templates to break.
    templates: dict[str, dict[str, Any]] = {
        ORDERS: base_order,
        REFUNDS: envelope("refund.issued", refund_data(f"RF-{run}-T", f"BAD-{run}-BASE", 1)),
        ADVISORIES: envelope(
            "advisory.published",
            {
                "advisory_id": f"VSA-{run}",
                "severity": "high",
                "title": "t",
                "summary": "s",
                "url": "https://vendor.example/a",
                "products": ["secure-pro"],
            },
        ),
    }
    for topic, event_type in (
        (PARTNERS, "partner.created"),
        (ENTITLEMENTS, "entitlement.order_applied"),
    ):
        found = asyncio.run(
            read_topic(
                live.bootstrap,
                topic,
                until=lambda rs, t=event_type: any(t.encode() in r.value for r in rs),
            )
        )
        template = next(json.loads(r.value) for r in found if event_type.encode() in r.value)
        templates[topic] = template
    ledger_template = envelope(
        "commission.accrued",
        {
            "line_id": str(uuid.uuid4()),
            "partner_id": partner["partner_id"],
            "role": "partner_of_record",
            "order_id": f"BAD-{run}-L",
            "line_ref": "1",
            "license_key": f"LK-BAD-{run}-L",
            "refund_id": None,
            "kind": "renewal",
            "tier": "gold",
            "base_amount_minor": 1000,
            "rate_bps": 1500,
            "amount_minor": 150,
            "currency": "EUR",
            "status": "accrued",
            "rate_table_version": 1,
            "occurred_at": "2027-01-05T10:00:00Z",
            "payable_at": "2027-02-04T10:00:00Z",
        },
    )
    templates[LEDGER] = ledger_template

    cases: list[Case] = []

    def add(topic: str, items: list[tuple[str, Any, str]], consumers: int = 0) -> None:
        for kind, value, reason in items:
            raw = value if isinstance(value, bytes) else dumps(value)
            key = f"bad-{run}-{len(cases):03d}".encode()
            cases.append(Case(topic, kind, key, raw, reason, consumers))

    for topic, template in templates.items():
        add(topic, _generic(topic, template, run))
    add(ORDERS, _order_cases(run, code))
    add(REFUNDS, _refund_cases(run))

    # Duplicate order_id with other content; an exact duplicate under a new event_id is a no-op.
    conflicting = copy.deepcopy(base_order)
    conflicting["event_id"] = str(uuid.uuid4())
    conflicting["data"]["lines"][0]["net_amount_minor"] = 99
    add(ORDERS, [("duplicate order_id, other content", conflicting, "conflicting_duplicate_order")])
    # An applied event_id reused for another order: processed once, and not silently.
    reused = copy.deepcopy(base_order)
    reused["data"]["order_id"] = f"{reused['data']['order_id']}-REUSED"
    reused["data"]["lines"][0]["license_key"] = f"{reused['data']['lines'][0]['license_key']}-R"
    add(ORDERS, [("reused event_id, other content", reused, "conflicting_duplicate_event")])
    exact = copy.deepcopy(base_order)
    exact["event_id"] = str(uuid.uuid4())
    exact_key = f"bad-{run}-exact-duplicate".encode()
    # A notification-rule break: attribution_changed that changes nothing.
    unchanged = copy.deepcopy(templates[ENTITLEMENTS])
    unchanged["event_id"] = str(uuid.uuid4())
    unchanged["event_type"] = "entitlement.attribution_changed"
    unchanged["data"]["partner_of_record"] = {
        "partner_id": partner["partner_id"],
        "since": "2027-01-05T10:00:00Z",
        "source": "partner_sale",
    }
    unchanged["data"]["previous_partner_id"] = partner["partner_id"]
    # Only notifications judges attribution changes; commissions ignores the event type.
    add(
        ENTITLEMENTS,
        [("attribution_changed to the same partner", unchanged, "attribution_unchanged")],
        consumers=1,
    )

    records = [(c.topic, c.key, c.value) for c in cases]
    records.append((ORDERS, exact_key, dumps(exact)))
    # Valid events after the bad ones: a partner-channel sale and a refund of the base order.
    after = envelope(
        "order.placed",
        order_data(f"BAD-{run}-AFTER", f"LK-BAD-{run}-AFTER", channel="partner", partner_code=code),
    )
    refund_after = envelope("refund.issued", refund_data(f"RF-{run}-OK", f"BAD-{run}-BASE", 500))
    records.append((ORDERS, after["data"]["order_id"].encode(), dumps(after)))
    records.append((REFUNDS, f"BAD-{run}-BASE".encode(), dumps(refund_after)))
    asyncio.run(produce(live.bootstrap, records))

    # The stream went on: the valid sale after the bad ones is applied and decided.
    _wait(lambda: _decided(live, f"BAD-{run}-AFTER"), "the order sent after the bad ones", 90)

    # Every bad record on its DLQ, unchanged, with the precise reason, once per consumer group.
    by_topic: dict[str, list[Case]] = {}
    for case in cases:
        by_topic.setdefault(case.topic, []).append(case)
    failures: list[str] = []
    for topic, topic_cases in by_topic.items():
        keys = {c.key for c in topic_cases}
        expected = sum(c.copies for c in topic_cases)
        dead = asyncio.run(
            read_topic(
                live.bootstrap,
                f"{topic}.dlq",
                until=lambda rs, k=keys, n=expected: sum(r.key in k for r in rs) >= n,
                wait_s=20,
            )
        )
        for case in topic_cases:
            mine = [r for r in dead if r.key == case.key]
            reasons = [r.headers.get("error.reason") for r in mine]
            if reasons != [case.reason] * case.copies:
                failures.append(f"{topic} [{case.kind}]: expected {case.reason}, got {reasons}")
                continue
            for r in mine:
                if r.value != case.value:
                    failures.append(f"{topic} [{case.kind}]: DLQ value changed")
                if not r.headers.get("error.detail"):
                    failures.append(f"{topic} [{case.kind}]: no error.detail")
        if topic == ORDERS:
            assert not [r for r in dead if r.key == exact_key], (
                "an exact duplicate was dead-lettered"
            )
    assert not failures, "\n".join(failures)
    assert len({c.kind for c in cases}) >= 15
    # Nothing crashed: every process alive, every service ready.
    dead_processes = [p.name for p in live.suite.services if not p.alive()]
    assert not dead_processes, dead_processes
    with live.http() as http:
        for service in ("registration", "commissions", "notifications"):
            assert http.get(f"{live.url(service)}/status").status_code == 200, service
