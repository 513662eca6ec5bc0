"""The worker on the real broker and database: ledger out exactly once, DLQ, replays, outbox."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from services.commissions.bootstrap import lifecycle
from services.commissions.config import Settings
from services.commissions.domain.periods import Month
from shared.envelope import parse_event
from shared.topics import COMMISSIONS_LEDGER
from tests.conftest import Names
from tests.integration.commissions.harness import (
    Worker,
    event_bytes,
    produce,
    read_topic,
    settings_for,
    wait_for,
)
from tests.integration.commissions.oracle import OracleLine, expected_events
from tests.unit.commissions.builders import at
from tests.unit.commissions.events import order_applied, refund_issued

TIERS = ["platinum", "gold", "silver", "bronze"]
KINDS = ["new", "renewal", "upgrade"]


def order_record(settings: Settings, line: OracleLine, event_id: str) -> tuple[str, bytes, bytes]:
    data = order_applied(
        line.order_id,
        line.line_id,
        net=line.net,
        tier=line.tier,
        kind=line.kind,
        partner_id=line.partner_id,
        parent=line.parent_id,
        channel="direct" if line.granted else "partner",
    )
    value = event_bytes("entitlement.order_applied", data, at("2027-01-05T10:00:00Z"), event_id)
    return settings.entitlements_topic, data.license_key.encode(), value


def refund_record(
    settings: Settings, line: OracleLine, refund_id: str, amount: int, event_id: str, **kw: Any
) -> tuple[str, bytes, bytes]:
    data = refund_issued(refund_id, amount, order_id=line.order_id, line_id=line.line_id, **kw)
    value = event_bytes("refund.issued", data, at("2027-01-20T14:30:00Z"), event_id)
    return settings.refunds_topic, line.order_id.encode(), value


def ledger_summary(records: list[Any]) -> dict[str, tuple[str, str, int]]:
    summary: dict[str, tuple[str, str, int]] = {}
    for record in records:
        envelope = parse_event(COMMISSIONS_LEDGER, record.value)
        data: Any = envelope.data
        assert record.key == data.partner_id.encode()
        summary[data.line_id] = (envelope.event_type, data.partner_id, data.amount_minor)
    return summary


def make_stream(
    settings: Settings, orders: int, seed: int
) -> tuple[list[OracleLine], list[tuple[str, bytes, bytes]], list[tuple[str, bytes, bytes]]]:
    """Order lines and their refunds; some refunds are produced before their order."""
    rng = random.Random(seed)
    lines, early, late = [], [], []
    for number in range(orders):
        line = OracleLine(
            order_id=f"WEB-{seed}-{number}",
            line_id=str(rng.randint(1, 3)),
            net=rng.randint(0, 500_000),
            tier=rng.choice(TIERS),
            kind=rng.choice(KINDS),
            partner_id=f"P-{rng.randint(1, 5)}",
            parent_id=rng.choice([None, "P-DIST"]),
            granted=rng.random() > 0.1,
        )
        if line.net == 0:
            line.granted = False
        lines.append(line)
        remaining = line.net
        is_early = rng.random() < 0.3
        for refund_no in range(rng.choice([0, 0, 1, 2])):
            if remaining == 0:
                break
            amount = rng.randint(1, remaining)
            remaining -= amount
            refund_id = f"RF-{line.order_id}-{refund_no}"
            line.refunds.append((refund_id, amount))
            record = refund_record(settings, line, refund_id, amount, f"evt-{refund_id}")
            # A line's refunds keep their order on the topic (keyed by order_id), so once
            # one comes after the order, the later ones do too.
            is_early = is_early and rng.random() < 0.7
            (early if is_early else late).append(record)
    return lines, early, late


async def test_order_stream_with_refunds_in_and_out_of_order_gives_the_ledger_exactly_once(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names
) -> None:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    lines, early, late = make_stream(settings, 300, seed=7)
    orders = [order_record(settings, line, f"evt-{line.order_id}") for line in lines]
    expected = expected_events(lines)
    async with Worker(settings, mongo_db):
        await produce(kafka_bootstrap, early)
        await produce(kafka_bootstrap, orders)
        await produce(kafka_bootstrap, late)
        records = await read_topic(kafka_bootstrap, settings.ledger_topic, expect=len(expected))
    ids = Counter(parse_event(COMMISSIONS_LEDGER, r.value).event_id for r in records)
    assert max(ids.values()) == 1, "a ledger event was committed twice"
    assert ledger_summary(records) == expected
    decisions = await mongo_db["order_lines"].count_documents({"decision": {"$ne": None}})
    assert decisions == len(lines)


async def test_the_same_stream_delivered_twice_gives_the_same_ledger(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names
) -> None:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    lines, early, late = make_stream(settings, 60, seed=11)
    orders = [order_record(settings, line, f"evt-{line.order_id}") for line in lines]
    expected = expected_events(lines)
    async with Worker(settings, mongo_db) as worker:
        await produce(kafka_bootstrap, [*early, *orders, *late])
        await read_topic(kafka_bootstrap, settings.ledger_topic, expect=len(expected), settle_s=0)
        # Delivered again: same events (and the orders again under new event ids).
        again = [order_record(settings, line, f"evt-again-{line.order_id}") for line in lines]
        await produce(kafka_bootstrap, [*early, *orders, *late, *again])
        total = 2 * (len(early) + len(orders) + len(late)) + len(again)
        await wait_for(
            lambda: (
                sum(
                    worker.counters.get("records_total", topic=t)
                    for t in (settings.entitlements_topic, settings.refunds_topic)
                )
                >= total
            ),
            what="the second delivery to be consumed",
        )
        records = await read_topic(kafka_bootstrap, settings.ledger_topic, expect=len(expected))
    assert len(records) == len(expected)
    assert ledger_summary(records) == expected


async def test_bad_input_goes_to_the_dead_letter_topics_and_the_worker_goes_on(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names
) -> None:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    line = OracleLine("WEB-DLQ", "1", 1000, "gold", "renewal", "P-1", None)
    broken = json.loads(order_record(settings, line, "evt-broken")[2])
    broken["data"]["order"]["net_amount_minor"] = 12.5
    bad_entitlements = [
        (settings.entitlements_topic, b"LK-x", b"{not json"),
        (settings.entitlements_topic, b"LK-y", json.dumps(broken).encode()),
    ]
    bad_refunds = [
        refund_record(settings, line, "RF-1", 1001, "evt-rf-1"),
        refund_record(settings, line, "RF-2", 10, "evt-rf-2", currency="USD"),
    ]
    good_after = OracleLine("WEB-OK", "1", 2000, "gold", "renewal", "P-1", None)
    async with Worker(settings, mongo_db) as worker:
        await produce(
            kafka_bootstrap,
            [
                *bad_entitlements,
                order_record(settings, line, "evt-order"),
                *bad_refunds,
                order_record(settings, good_after, "evt-ok"),
            ],
        )
        ledger = await read_topic(kafka_bootstrap, settings.ledger_topic, expect=2, settle_s=0.5)
        dead_entitlements = await read_topic(
            kafka_bootstrap, f"{settings.entitlements_topic}.dlq", expect=2, settle_s=0.5
        )
        dead_refunds = await read_topic(
            kafka_bootstrap, f"{settings.refunds_topic}.dlq", expect=2, settle_s=0.5
        )
        counted = {
            reason: worker.counters.get(
                "dead_letters_total", topic=settings.refunds_topic, reason=reason
            )
            for reason in ("refund_exceeds_line", "currency_mismatch")
        }
    assert len(ledger) == 2
    reasons = sorted(dict(r.headers)["error.reason"].decode() for r in dead_entitlements)
    assert reasons == ["schema_violation", "unparsable"]
    by_reason = {dict(r.headers)["error.reason"].decode(): r for r in dead_refunds}
    assert set(by_reason) == {"refund_exceeds_line", "currency_mismatch"}
    assert by_reason["refund_exceeds_line"].value == bad_refunds[0][2]
    assert by_reason["refund_exceeds_line"].key == bad_refunds[0][1]
    assert counted == {"refund_exceeds_line": 1, "currency_mismatch": 1}


async def test_payables_run_and_paid_produce_their_events_once(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any, names: Names
) -> None:
    settings = settings_for(names, kafka_bootstrap, mongo_url, mongo_db.name)
    lines = [
        OracleLine(f"WEB-PAY-{n}", "1", 100_000 + n, "gold", "renewal", "P-1", "P-DIST")
        for n in range(5)
    ]
    refunds = [refund_record(settings, lines[0], "RF-FULL", lines[0].net, "evt-full")]
    async with Worker(settings, mongo_db):
        await produce(
            kafka_bootstrap, [order_record(settings, x, f"e-{x.order_id}") for x in lines]
        )
        await produce(kafka_bootstrap, refunds)
        await read_topic(kafka_bootstrap, settings.ledger_topic, expect=12, settle_s=0)
        ledger = lifecycle(settings, mongo_db)
        made_payable = await ledger.run_payables(at("2027-02-28T00:00:00Z"))
        # The fully refunded line (and its override) stays withheld: 4 lines x 2 roles.
        assert len(made_payable) == 8
        assert await ledger.run_payables(at("2027-02-28T00:00:00Z")) == []
        paid = await ledger.mark_paid("P-1", Month(2027, 1))
        assert len(paid.lines) == 4
        assert (await ledger.mark_paid("P-1", Month(2027, 1))).lines == []
        records = await read_topic(kafka_bootstrap, settings.ledger_topic, expect=12 + 8 + 4)
    types = Counter(parse_event(COMMISSIONS_LEDGER, r.value).event_type for r in records)
    assert types == {
        "commission.accrued": 10,
        "commission.clawed_back": 2,
        "commission.payable": 8,
        "commission.paid": 4,
    }
    ids = Counter(parse_event(COMMISSIONS_LEDGER, r.value).event_id for r in records)
    assert max(ids.values()) == 1
    # Per line, the accrual comes before its payable on the partner's partition.
    positions = {}
    for record in records:
        envelope = parse_event(COMMISSIONS_LEDGER, record.value)
        positions[(envelope.event_type, envelope.data.line_id)] = (  # type: ignore[attr-defined]
            record.partition,
            record.offset,
        )
    for (event_type, line_id), position in positions.items():
        if event_type == "commission.payable":
            assert positions[("commission.accrued", line_id)] < position
