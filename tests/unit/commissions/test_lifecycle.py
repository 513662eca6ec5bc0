"""Payables, paid statements and the outbox relay on fakes."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from services.commissions.domain.periods import Month
from services.commissions.service_layer.lifecycle import LedgerLifecycle
from services.commissions.service_layer.ports import NullCounters
from services.commissions.service_layer.relay import relay_forever, relay_once
from shared.envelope import parse_event
from shared.topics import COMMISSIONS_LEDGER
from tests.unit.commissions.builders import at
from tests.unit.commissions.events import order_applied, refund_issued
from tests.unit.commissions.fakes import (
    FakeHorizon,
    FakeLease,
    FakeOutbox,
    FakePublisher,
    FakeRelayPublisher,
    FakeTransitions,
    FixedClock,
)
from tests.unit.commissions.test_ingest import World

NOW = at("2027-03-01T08:00:00Z")


class Ledger(World):
    def __init__(self) -> None:
        super().__init__()
        self.outbox = FakeOutbox()
        self.transitions = FakeTransitions(self.order_lines, self.outbox)
        self.horizon = FakeHorizon()
        self.lifecycle = LedgerLifecycle(
            order_lines=self.order_lines,
            transitions=self.transitions,
            horizon=self.horizon,
            clock=FixedClock(NOW),
            ledger_topic=COMMISSIONS_LEDGER,
        )

    def events(self) -> list[tuple[str, str, str, int]]:
        found = []
        for message in self.outbox.messages:
            envelope = parse_event(COMMISSIONS_LEDGER, message.value)
            data = envelope.data
            assert envelope.event_id == message.event_id
            found.append(
                (envelope.event_type, data.status, data.partner_id, data.amount_minor)  # type: ignore[attr-defined]
            )
        return found


async def test_payables_run_moves_lines_past_their_hold_once() -> None:
    ledger = Ledger()
    s = ledger.stream
    await ledger.handle(s.record(order_applied()))
    await ledger.handle(s.record(order_applied("WEB-2", occurred_at="2027-01-20T10:00:00Z")))
    changed = await ledger.lifecycle.run_payables(at("2027-02-04T23:59:59.999Z"))
    assert len(changed) == 2
    assert ledger.events() == [
        ("commission.payable", "payable", "P-GOLD", 18519),
        ("commission.payable", "payable", "P-DIST", 2469),
    ]
    assert await ledger.lifecycle.run_payables(at("2027-02-04T23:59:59.999Z")) == []
    assert len(ledger.outbox.messages) == 2
    payable = json.loads(ledger.outbox.messages[0].value)
    assert payable["occurred_at"] == "2027-02-04T10:00:00Z"
    assert payable["data"]["payable_at"] == "2027-02-04T10:00:00Z"


async def test_a_line_whose_accrual_is_not_yet_on_the_ledger_topic_waits() -> None:
    ledger = Ledger()
    order = ledger.stream.record(order_applied())
    await ledger.handle(order)
    stored = next(iter(ledger.order_lines.stored.values()))
    ledger.horizon.unpublished = {stored.lines[0].source}
    assert await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z")) == []
    ledger.horizon.unpublished = set()
    assert len(await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z"))) == 2


async def test_fully_clawed_back_in_the_hold_never_becomes_payable() -> None:
    ledger = Ledger()
    s = ledger.stream
    await ledger.handle(s.record(order_applied()))
    await ledger.handle(s.record(refund_issued("RF-1", 123457), occurred_at="2027-01-10T00:00:00Z"))
    assert await ledger.lifecycle.run_payables(at("2030-01-01T00:00:00Z")) == []
    assert ledger.outbox.messages == []


async def test_paid_marks_the_statements_payable_lines_and_clawbacks_carry() -> None:
    ledger = Ledger()
    s = ledger.stream
    await ledger.handle(s.record(order_applied()))
    await ledger.lifecycle.run_payables(at("2027-02-28T00:00:00Z"))
    paid = await ledger.lifecycle.mark_paid("P-GOLD", Month(2027, 1))
    assert [(x.partner_id, x.status, x.amount_minor) for x in paid.lines] == [
        ("P-GOLD", "paid", 18519)
    ]
    assert (await ledger.lifecycle.mark_paid("P-GOLD", Month(2027, 1))).lines == []
    await ledger.handle(s.record(refund_issued("RF-1", 61728), occurred_at="2027-03-02T00:00:00Z"))
    await ledger.lifecycle.run_payables(at("2027-03-31T00:00:00Z"))
    march = await ledger.lifecycle.mark_paid("P-GOLD", Month(2027, 3))
    assert [x.amount_minor for x in march.lines] == [-9259]
    assert [e[0] for e in ledger.events()] == [
        "commission.payable",
        "commission.payable",
        "commission.paid",
        "commission.payable",
        "commission.payable",
        "commission.paid",
    ]


async def test_a_transition_that_loses_a_race_is_read_again_and_committed_once() -> None:
    ledger = Ledger()
    await ledger.handle(ledger.stream.record(order_applied()))
    ledger.transitions.fail_next = 2
    assert len(await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z"))) == 2
    assert len(ledger.outbox.messages) == 2


async def test_the_relay_publishes_each_message_once_across_a_crash() -> None:
    ledger = Ledger()
    s = ledger.stream
    for number in range(3):
        await ledger.handle(s.record(order_applied(f"WEB-{number}")))
    await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z"))
    publisher = FakePublisher()
    publisher.crash_after_send = True
    with pytest.raises(ConnectionError):
        await relay_once(ledger.outbox, publisher, limit=4)
    assert publisher.topic == []
    assert await relay_once(ledger.outbox, publisher, limit=4) == 4
    assert await relay_once(ledger.outbox, publisher, limit=4) == 2
    assert await relay_once(ledger.outbox, publisher, limit=4) == 0
    assert [m.seq for m in publisher.topic] == [1, 2, 3, 4, 5, 6]
    assert ledger.outbox.published_up_to == 6


async def test_the_relay_never_skips_past_a_gap() -> None:
    outbox = FakeOutbox()
    ledger = Ledger()
    await ledger.handle(ledger.stream.record(order_applied()))
    await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z"))
    outbox.messages = [ledger.outbox.messages[1]]  # seq 2 without seq 1
    publisher = FakePublisher()
    assert await relay_once(outbox, publisher) == 0
    assert publisher.topic == []


async def test_the_relay_loop_publishes_restarts_after_a_failure_and_yields_to_the_lease() -> None:
    ledger = Ledger()
    for number in range(3):
        await ledger.handle(ledger.stream.record(order_applied(f"WEB-{number}")))
    await ledger.lifecycle.run_payables(at("2027-03-01T00:00:00Z"))
    kafka = FakePublisher()
    kafka.crash_after_send = True
    lease = FakeLease()
    built: list[tuple[str, int]] = []

    def factory(epoch: str, published_mark: int) -> FakeRelayPublisher:
        built.append((epoch, published_mark))
        return FakeRelayPublisher(kafka)

    relay = asyncio.create_task(
        relay_forever(
            outbox=ledger.outbox,
            lease=lease,
            publisher_factory=factory,
            interval_s=0.01,
            counters=NullCounters(),
        )
    )
    for _ in range(200):
        if len(kafka.topic) == 6:
            break
        await asyncio.sleep(0.01)
    relay.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay
    assert [m.seq for m in kafka.topic] == [1, 2, 3, 4, 5, 6]
    assert len(built) == 2  # rebuilt after the failed transaction
    assert built[0] == (ledger.outbox.epoch, 0)
    assert lease.holder is None  # released on the way out

    lease.holder = "someone-else"
    waiting = asyncio.create_task(
        relay_forever(
            outbox=ledger.outbox,
            lease=lease,
            publisher_factory=factory,
            interval_s=0.01,
            counters=NullCounters(),
        )
    )
    await asyncio.sleep(0.05)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert len(built) == 2
