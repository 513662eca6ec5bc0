"""The worker's use case on fakes: events in, ledger lines and records out, exactly once."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chassis.records import HandlerResult, Inbound
from services.commissions.domain.decisions import Policy
from services.commissions.service_layer.ingest import LedgerIngest
from services.commissions.service_layer.translate import fast_entry_value, ledger_event
from shared.envelope import parse_event
from shared.ids import commission_line_id, derive_id
from shared.topics import COMMISSIONS_LEDGER
from tests.unit.commissions import builders
from tests.unit.commissions.builders import applied, order, refund_into
from tests.unit.commissions.events import Stream, order_applied, refund_issued, registered
from tests.unit.commissions.fakes import FakeOrderLines, FakeRateTables, FakeRefundRegistry


class World:
    def __init__(self) -> None:
        self.order_lines = FakeOrderLines()
        self.refund_ids = FakeRefundRegistry()
        self.ingest = LedgerIngest(
            order_lines=self.order_lines,
            refund_ids=self.refund_ids,
            rate_tables=FakeRateTables(),
            policy=Policy(),
            ledger_topic=COMMISSIONS_LEDGER,
        )
        self.stream = Stream()

    async def handle(self, *batch: Inbound) -> HandlerResult:
        return await self.ingest.handle(list(batch))


def produced(result: HandlerResult) -> list[tuple[str, str, int]]:
    found = []
    for record in result.produce:
        envelope = parse_event(COMMISSIONS_LEDGER, record.value)
        data: Any = envelope.data
        assert record.key == data.partner_id.encode()
        found.append((envelope.event_type, data.role, data.amount_minor))
    return found


def reasons(result: HandlerResult) -> list[str]:
    return [reason for _, reason in result.rejected]


async def test_an_order_line_accrues_and_announces_both_lines_with_the_contract_shape() -> None:
    world = World()
    result = await world.handle(world.stream.record(order_applied()))
    assert produced(result) == [
        ("commission.accrued", "partner_of_record", 18519),
        ("commission.accrued", "distributor_override", 2469),
    ]
    document = json.loads(result.produce[0].value)
    line_id = commission_line_id("WEB-100017", "1", "P-GOLD", "partner_of_record")
    assert document["event_id"] == derive_id("commission.accrued", line_id)
    assert document["occurred_at"] == "2027-01-05T10:00:00Z"
    assert document["data"] == {
        "line_id": line_id,
        "partner_id": "P-GOLD",
        "role": "partner_of_record",
        "order_id": "WEB-100017",
        "line_ref": "1",
        "license_key": "LK-WEB-100017-1",
        "refund_id": None,
        "kind": "renewal",
        "tier": "gold",
        "base_amount_minor": 123457,
        "rate_bps": 1500,
        "amount_minor": 18519,
        "currency": "EUR",
        "status": "accrued",
        "rate_table_version": 1,
        "occurred_at": "2027-01-05T10:00:00Z",
        "payable_at": "2027-02-04T10:00:00Z",
        # CONTRACT 6.5, additive: where the rate came from; an adjustment's fields, null.
        "rate_source": "tier_table",
        "reason": None,
        "reference": None,
    }
    assert result.produce[0].topic == COMMISSIONS_LEDGER


async def test_a_denied_line_is_decided_without_ledger_output() -> None:
    world = World()
    result = await world.handle(world.stream.record(order_applied(channel="partner")))
    assert result.produce == [] and result.rejected == []
    stored = next(iter(world.order_lines.stored.values()))
    assert stored.decision is not None and stored.decision.reason == "partner_channel_sale"


async def test_other_entitlement_events_are_ignored() -> None:
    world = World()
    result = await world.handle(world.stream.record(registered()))
    assert result.produce == [] and result.rejected == [] and world.order_lines.stored == {}


async def test_refunds_after_the_order_claw_back_cumulatively() -> None:
    world = World()
    s = world.stream
    await world.handle(s.record(order_applied()))
    first = await world.handle(s.record(refund_issued("RF-1", 61728)))
    second = await world.handle(s.record(refund_issued("RF-2", 61729)))
    assert produced(first) == [
        ("commission.clawed_back", "partner_of_record", -9259),
        ("commission.clawed_back", "distributor_override", -1234),
    ]
    assert [amount for *_, amount in produced(second)] == [-9260, -1235]


async def test_refunds_before_the_order_are_held_and_applied_with_the_same_result() -> None:
    world = World()
    s = world.stream
    held = await world.handle(s.record(refund_issued("RF-1", 61728)))
    assert held.produce == [] and held.rejected == []
    await world.handle(s.record(refund_issued("RF-2", 61729)))
    result = await world.handle(s.record(order_applied()))
    assert [amount for *_, amount in produced(result)] == [18519, 2469, -9259, -1234, -9260, -1235]


async def test_order_and_its_refund_in_one_batch_in_either_order() -> None:
    for reverse in (False, True):
        world = World()
        s = world.stream
        batch = [s.record(order_applied()), s.record(refund_issued("RF-1", 61728))]
        result = await world.handle(*(reversed(batch) if reverse else batch))
        assert sorted(amount for *_, amount in produced(result)) == [-9259, -1234, 2469, 18519]


async def test_rule_breaking_refunds_go_to_the_dead_letter_topic_unchanged() -> None:
    world = World()
    s = world.stream
    await world.handle(s.record(order_applied(net=1000)))
    too_much = s.record(refund_issued("RF-1", 1001))
    other_currency = s.record(refund_issued("RF-2", 10, currency="USD"))
    result = await world.handle(too_much, other_currency)
    assert reasons(result) == ["refund_exceeds_line", "currency_mismatch"]
    dead = result.rejected[0][0]
    assert dead.topic == "checkout.refunds.v1.dlq"
    assert dead.value == too_much.value and dead.key == too_much.key
    headers = dict(dead.headers)
    assert headers["error.reason"] == b"refund_exceeds_line"
    assert b"1001" in headers["error.detail"]


async def test_a_held_refund_that_breaks_a_rule_is_dead_lettered_when_its_order_arrives() -> None:
    world = World()
    s = world.stream
    refund = s.record(refund_issued("RF-1", 5, currency="JPY"))
    await world.handle(refund)
    result = await world.handle(s.record(order_applied()))
    assert reasons(result) == ["currency_mismatch"]
    dead = result.rejected[0][0]
    assert dead.topic == "checkout.refunds.v1.dlq" and dead.value == refund.value
    assert len(produced(result)) == 2


async def test_a_refund_id_reused_for_another_line_is_a_rule_break() -> None:
    world = World()
    s = world.stream
    await world.handle(s.record(order_applied()), s.record(order_applied(line_id="2")))
    await world.handle(s.record(refund_issued("RF-1", 10)))
    result = await world.handle(s.record(refund_issued("RF-1", 10, line_id="2")))
    assert reasons(result) == ["refund_id_conflict"]


async def test_duplicates_are_no_ops_and_changed_duplicates_conflicts() -> None:
    world = World()
    s = world.stream
    order = s.record(order_applied())
    refund = s.record(refund_issued("RF-1", 100))
    await world.handle(order, refund)
    # Same data under a new event_id, or the same event delivered again: no-ops.
    again = await world.handle(s.record(order_applied()), s.again(order), s.again(refund))
    assert again.produce == [] and again.rejected == []
    changed = await world.handle(
        s.record(order_applied(net=5)), s.record(refund_issued("RF-1", 101))
    )
    assert reasons(changed) == ["conflicting_order_line", "conflicting_refund"]
    assert changed.produce == []


async def test_a_batch_retried_after_a_crash_produces_the_same_records_and_no_new_lines() -> None:
    world = World()
    s = world.stream
    held = s.record(refund_issued("RF-0", 5, currency="USD"))
    await world.handle(held)
    batch = [
        s.record(order_applied()),
        s.record(refund_issued("RF-1", 61728)),
        s.record(order_applied(order_id="WEB-2", net=0)),
        s.record(refund_issued("RF-9", 10, order_id="WEB-2")),
    ]
    first = await world.handle(*batch)
    ledger = world.order_lines.ledger()
    # The Kafka transaction of `first` never committed: the same records come again.
    retried = await world.handle(*batch)
    assert [r.value for r in retried.produce] == [r.value for r in first.produce]
    assert [(r.value, reason) for r, reason in retried.rejected] == [
        (r.value, reason) for r, reason in first.rejected
    ]
    assert reasons(first) == ["currency_mismatch", "refund_exceeds_line"]
    assert world.order_lines.ledger() == ledger


async def test_a_line_changed_concurrently_is_read_again_and_redone() -> None:
    world = World()
    s = world.stream
    await world.handle(s.record(order_applied()))

    def someone_else_writes() -> None:
        # A payables run changes the stored line between our read and our write.
        for stored in world.order_lines.stored.values():
            stored.version += 1

    world.order_lines.before_update = someone_else_writes
    result = await world.handle(s.record(refund_issued("RF-1", 61728)))
    assert [amount for *_, amount in produced(result)] == [-9259, -1234]
    assert sum(x.amount_minor for x in next(iter(world.order_lines.stored.values())).lines) > 0


@settings(deadline=None)
@given(
    net=st.integers(0, 10**13),
    refund=st.integers(1, 10**13),
    currency=st.sampled_from(["EUR", "JPY", "KWD"]),
    order_id=st.text(min_size=1, max_size=12),
    millis=st.integers(0, 999),
)
def test_the_fast_ledger_encoder_is_byte_identical_to_the_contract_models(
    net: int, refund: int, currency: str, order_id: str, millis: int
) -> None:
    occurred = f"2027-01-05T10:00:00.{millis:03d}Z"
    line = applied(order(order_id=order_id, net=net, currency=currency, occurred_at=occurred))
    refund_into(
        line, builders.refund("RF-ü", min(refund, net) or 1, order_id=order_id, currency=currency)
    )
    for entry in line.lines:
        event_type = "commission.clawed_back" if entry.is_clawback else "commission.accrued"
        slow = ledger_event(entry, event_type, entry.occurred_at, COMMISSIONS_LEDGER)
        assert fast_entry_value(entry) == slow.value
        parse_event(COMMISSIONS_LEDGER, slow.value)
