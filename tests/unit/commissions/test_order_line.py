"""The order-line aggregate: refunds in and out of order, duplicates, replays, lifecycle."""

from __future__ import annotations

import datetime as dt

from services.commissions.domain.periods import Month
from services.commissions.domain.statements import totals
from tests.unit.commissions.builders import (
    POLICY,
    RATES,
    aggregate_for,
    applied,
    at,
    order,
    raw,
    refund,
    refund_into,
    source,
)

NOW = at("2027-06-01T00:00:00Z")


def amounts(line_ids_and_amounts: list[tuple[str, int]]) -> list[int]:
    return [amount for _, amount in line_ids_and_amounts]


def test_a_refund_before_its_order_is_held_and_applied_with_the_same_result() -> None:
    in_order = applied(order())
    refund_into(in_order, refund("RF-1", 61728))
    refund_into(in_order, refund("RF-2", 61729))

    early = aggregate_for(order())
    first = early.apply_refund(refund("RF-1", 61728), source("r"), raw(refund("RF-1", 61728)))
    assert first.outcome == "held" and first.emitted == []
    early.apply_refund(refund("RF-2", 61729), source("r"), raw(refund("RF-2", 61729)))
    assert len(early.held_refunds) == 2
    effects = early.apply_order(order(), source(), RATES, POLICY)
    assert effects.outcome == "applied"
    assert [line.amount_minor for line in effects.emitted] == [
        18519,
        2469,
        -9259,
        -1234,
        -9260,
        -1235,
    ]

    def comparable(line: object) -> tuple[object, ...]:
        return tuple(getattr(line, f) for f in ("line_id", "amount_minor", "occurred_at", "status"))

    assert [comparable(x) for x in early.lines] == [comparable(x) for x in in_order.lines]
    assert early.held_refunds == []


def test_a_refund_exceeding_the_line_is_rejected_and_changes_nothing() -> None:
    line = applied(order(net=1000))
    refund_into(line, refund("RF-1", 600))
    effects = line.apply_refund(refund("RF-2", 401), source("r"), raw(refund("RF-2", 401)))
    assert effects.outcome == "rejected"
    assert [r.reason for r in effects.rejections] == ["refund_exceeds_line"]
    assert line.refunded_minor == 600
    assert refund_into(line, refund("RF-3", 400)) != []
    assert line.refunded_minor == 1000


def test_a_refund_in_another_currency_is_rejected() -> None:
    line = applied(order())
    effects = line.apply_refund(
        refund("RF-1", 10, currency="USD"), source("r"), raw(refund("RF-1", 10))
    )
    assert [r.reason for r in effects.rejections] == ["currency_mismatch"]


def test_a_held_refund_that_breaks_a_rule_is_rejected_when_its_order_arrives() -> None:
    line = aggregate_for(order(net=1000))
    bad = refund("RF-1", 2000)
    line.apply_refund(bad, source("r"), raw(bad))
    effects = line.apply_order(order(net=1000), source(), RATES, POLICY)
    assert [r.reason for r in effects.rejections] == ["refund_exceeds_line"]
    assert effects.rejections[0].held == raw(bad)
    assert line.refunded_minor == 0


def test_a_refund_of_a_denied_line_is_recorded_without_clawbacks() -> None:
    line = applied(order(por=None))
    assert refund_into(line, refund("RF-1", 100)) == []
    assert line.refunded_minor == 100


def test_the_same_refund_again_is_a_no_op_and_a_changed_one_a_conflict() -> None:
    line = applied(order())
    refund_into(line, refund("RF-1", 100))
    again = refund("RF-1", 100, occurred_at="2027-02-01T00:00:00Z")
    assert line.apply_refund(again, source("r"), raw(again)).outcome == "duplicate"
    changed = refund("RF-1", 101)
    effects = line.apply_refund(changed, source("r"), raw(changed))
    assert [r.reason for r in effects.rejections] == ["conflicting_refund"]
    assert line.refunded_minor == 100


def test_the_same_order_line_again_is_a_no_op_and_a_changed_one_a_conflict() -> None:
    line = applied(order())
    assert line.apply_order(order(), source(), RATES, POLICY).outcome == "duplicate"
    effects = line.apply_order(order(net=5), source(), RATES, POLICY)
    assert [r.reason for r in effects.rejections] == ["conflicting_order_line"]
    assert len(line.lines) == 2


def test_replaying_the_same_record_reproduces_its_effects_without_applying_twice() -> None:
    line = aggregate_for(order())
    held = refund("RF-1", 61728)
    line.apply_refund(held, source("r"), raw(held))
    order_source = source()
    first = line.apply_order(order(), order_source, RATES, POLICY)
    replay = line.apply_order(order(), order_source, RATES, POLICY)
    assert replay.outcome == "replayed"
    assert replay.emitted == first.emitted
    refund_source = source("r")
    second = refund("RF-2", 61729)
    first_refund = line.apply_refund(second, refund_source, raw(second))
    assert line.apply_refund(second, refund_source, raw(second)).emitted == first_refund.emitted
    assert sum(entry.amount_minor for entry in line.lines) == 0


def test_lines_become_payable_after_the_hold_and_paid_with_their_statement() -> None:
    line = applied(order())
    assert line.due_at == at("2027-02-04T10:00:00Z")
    assert line.release_payables(at("2027-02-04T09:59:59Z"), NOW) == []
    payable = line.release_payables(at("2027-02-04T10:00:00Z"), NOW)
    assert [p.status for p in payable] == ["payable", "payable"]
    assert line.due_at is None
    assert line.release_payables(at("2027-03-01T00:00:00Z"), NOW) == []
    paid = line.mark_paid("P-GOLD", Month(2027, 1), NOW)
    assert [(p.partner_id, p.status) for p in paid] == [("P-GOLD", "paid")]
    assert line.mark_paid("P-GOLD", Month(2027, 1), NOW) == []
    # An earlier month's statement does not hold a later line...
    assert line.mark_paid("P-DIST", Month(2026, 12), NOW) == []
    # ...but January's line still payable is carried into February's (CONTRACT 6.5).
    carried = line.mark_paid("P-DIST", Month(2027, 2), NOW)
    assert [(p.partner_id, p.status) for p in carried] == [("P-DIST", "paid")]


def test_a_line_fully_clawed_back_before_its_hold_ends_never_becomes_payable() -> None:
    line = applied(order())
    refund_into(line, refund("RF-1", 123457, occurred_at="2027-01-20T00:00:00Z"))
    assert line.release_payables(at("2030-01-01T00:00:00Z"), NOW) == []
    assert {entry.status for entry in line.lines} == {"accrued"}
    assert line.due_at is None
    assert all(t.net_minor == 0 for t in totals(line.lines))


def test_a_partial_clawback_in_the_hold_becomes_payable_with_its_line() -> None:
    line = applied(order())
    refund_into(line, refund("RF-1", 61728, occurred_at="2027-01-20T00:00:00Z"))
    changed = line.release_payables(at("2027-02-05T00:00:00Z"), NOW)
    assert sorted(c.amount_minor for c in changed) == [-9259, -1234, 2469, 18519]


def test_a_clawback_after_payment_is_recorded_and_carries_to_the_next_statement() -> None:
    line = applied(order())
    line.release_payables(at("2027-02-05T00:00:00Z"), NOW)
    line.mark_paid("P-GOLD", Month(2027, 1), NOW)
    refund_into(line, refund("RF-1", 123457, occurred_at="2027-03-10T00:00:00Z"))
    clawback = next(c for c in line.lines if c.is_clawback and c.partner_id == "P-GOLD")
    assert clawback.amount_minor == -18519 and clawback.status == "accrued"
    assert line.due_at == at("2027-03-10T00:00:00Z")
    assert line.release_payables(at("2027-03-09T00:00:00Z"), NOW) == []
    changed = line.release_payables(at("2027-03-10T00:00:00Z"), NOW)
    assert sorted(c.amount_minor for c in changed) == [-18519, -2469]
    march = [c for c in line.lines_of("P-GOLD") if c.occurred_at in Month(2027, 3)]
    assert [t.payable_minor for t in totals(march)] == [-18519]


def test_payable_at_is_hold_days_after_occurred_at() -> None:
    line = applied(order(occurred_at="2027-12-31T23:30:00.250Z"))
    assert line.lines[0].payable_at == at("2027-12-31T23:30:00.250Z") + dt.timedelta(days=30)
