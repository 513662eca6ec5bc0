"""One decision per order line: the reason codes, the window, the override, the rate tables."""

from __future__ import annotations

import dataclasses

import pytest

from services.commissions.domain.decisions import DenialReason, OrderApplied, decide_commission
from services.commissions.domain.periods import Month, end_of_day
from services.commissions.domain.rates import (
    DEFAULT_RATE_TABLE,
    RateBook,
    RateTable,
    RateTableError,
)
from tests.unit.commissions.builders import POLICY, RATES, applied, at, order, partner


def reason(order_applied: OrderApplied) -> DenialReason | None:
    return decide_commission(order_applied, RATES, POLICY).reason


@pytest.mark.parametrize(
    ("order_applied", "expected"),
    [
        (order(channel="partner"), "partner_channel_sale"),
        (order(por=None), "no_partner_of_record"),
        (order(por=partner(status="suspended")), "partner_inactive"),
        (order(por=partner(status="terminated")), "partner_inactive"),
        (order(por=partner(since="2024-01-05T10:00:00Z")), "attribution_expired"),
        (order(net=0), "zero_amount"),
        (order(customer_id="C-17"), "self_purchase"),
        (order(), None),
    ],
    ids=lambda value: str(value) if value is None or isinstance(value, str) else "",
)
def test_reason_codes(order_applied: OrderApplied, expected: DenialReason | None) -> None:
    assert reason(order_applied) == expected


def test_a_partner_channel_sale_earns_nothing_even_with_an_active_partner_of_record() -> None:
    line = applied(order(channel="partner"))
    assert line.lines == []
    assert line.decision is not None and line.decision.reason == "partner_channel_sale"


def test_the_window_ends_at_the_same_time_of_day_36_months_later() -> None:
    since = "2024-01-05T10:00:00Z"
    assert reason(order(occurred_at="2027-01-05T09:59:59.999Z", por=partner(since=since))) is None
    expired = order(occurred_at="2027-01-05T10:00:00Z", por=partner(since=since))
    assert reason(expired) == "attribution_expired"


def test_the_window_clamps_the_day_to_the_end_of_the_month() -> None:
    # The window's arithmetic itself: tests/unit/shared/test_calendar.py.
    since = partner(since="2024-02-29T08:00:00Z")
    assert reason(order(occurred_at="2027-02-28T07:59:59Z", por=since)) is None
    assert reason(order(occurred_at="2027-02-28T08:00:00Z", por=since)) == "attribution_expired"


def test_the_checks_run_in_the_contracts_order() -> None:
    # Inactive and expired and zero: the first listed wins.
    everything_wrong = order(
        net=0, customer_id="C-17", por=partner(status="suspended", since="2020-01-01T00:00:00Z")
    )
    assert reason(everything_wrong) == "partner_inactive"


def test_an_inactive_distributor_gets_no_override_line() -> None:
    line = applied(order(por=partner(parent_status="suspended")))
    assert [entry.role for entry in line.lines] == ["partner_of_record"]


def test_no_parent_no_override_line() -> None:
    line = applied(order(por=partner(parent=None)))
    assert [entry.role for entry in line.lines] == ["partner_of_record"]


def test_lines_have_deterministic_ids_from_the_contract_formula() -> None:
    import uuid

    from shared.ids import NS

    line = applied(order())
    expected = str(uuid.uuid5(NS, "WEB-100017/1/P-GOLD/partner_of_record"))
    assert line.lines[0].line_id == expected


def test_the_version_in_force_at_occurred_at_applies() -> None:
    richer = dataclasses.replace(
        DEFAULT_RATE_TABLE,
        version=2,
        effective_from=at("2027-01-01T00:00:00Z"),
        rates={
            tier: {kind: bps + 100 for kind, bps in per_kind.items()}
            for tier, per_kind in DEFAULT_RATE_TABLE.rates.items()
        },
        distributor_override_bps=300,
    )
    book = RateBook([DEFAULT_RATE_TABLE, richer])
    before = decide_commission(order(occurred_at="2026-12-31T23:59:59.999Z"), book, POLICY)
    after = decide_commission(order(occurred_at="2027-01-01T00:00:00Z"), book, POLICY)
    assert before.rate_table_version == 1
    assert [b.rate_bps for b in before.beneficiaries] == [1500, 200]
    assert after.rate_table_version == 2
    assert [b.rate_bps for b in after.beneficiaries] == [1600, 300]


def test_a_new_version_must_start_in_the_future_after_the_latest() -> None:
    book = RateBook([DEFAULT_RATE_TABLE])
    now = at("2027-01-01T00:00:00Z")
    table = dataclasses.replace(
        DEFAULT_RATE_TABLE, version=2, effective_from=at("2027-02-01T00:00:00Z")
    )
    book.check_new(table, now)
    with pytest.raises(RateTableError) as past:
        book.check_new(dataclasses.replace(table, effective_from=at("2026-12-01T00:00:00Z")), now)
    assert past.value.field == "effective_from"
    with pytest.raises(RateTableError):
        book.check_new(dataclasses.replace(table, version=3), now)


@pytest.mark.parametrize(
    "rates",
    [
        {"gold": {"new": 1, "renewal": 1, "upgrade": 1}},
        {t: {"new": 1, "renewal": 1} for t in ("platinum", "gold", "silver", "bronze")},
        {
            t: {"new": 1, "renewal": 1, "upgrade": 10001}
            for t in ("platinum", "gold", "silver", "bronze")
        },
        {
            t: {"new": True, "renewal": 1, "upgrade": 1}
            for t in ("platinum", "gold", "silver", "bronze")
        },
    ],
)
def test_incomplete_or_out_of_range_tables_are_refused(rates: dict[str, dict[str, int]]) -> None:
    with pytest.raises(RateTableError):
        RateTable(2, at("2030-01-01T00:00:00Z"), rates, 200)  # type: ignore[arg-type]


def test_months_and_days() -> None:
    month = Month.parse("2027-01")
    assert str(month) == "2027-01"
    assert at("2027-01-31T23:59:59.999Z") in month
    assert at("2027-02-01T00:00:00Z") not in month
    assert Month.of(at("2027-12-31T23:00:00Z")).end == at("2028-01-01T00:00:00Z")
    assert end_of_day(at("2027-01-05T00:00:00Z").date()) == at("2027-01-05T23:59:59.999Z")
    for bad in ("2027-1", "2027-13", "27-01", "2027-01-01"):
        with pytest.raises(ValueError):
            Month.parse(bad)
