"""shared.calendar: calendar months, and the one attribution window both services judge with."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.commissions.domain.decisions import Policy, decide_commission
from services.registration.domain.attribution import (
    Claim,
    Outcome,
    PartnerOfRecord,
    decide_attribution,
)
from shared.calendar import (
    ATTRIBUTION_WINDOW_MONTHS,
    add_months,
    attribution_window_end,
    days_to_catch_up,
    in_attribution_window,
    shift_month,
)
from tests.unit.commissions.builders import RATES, order, partner

pytestmark = pytest.mark.unit

UTC = dt.UTC


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "months", "end"),
    [
        ("2024-01-31T10:00:00", 1, "2024-02-29T10:00:00"),  # leap-year month end
        ("2023-01-31T10:00:00", 1, "2023-02-28T10:00:00"),
        ("2023-03-31T23:59:59", 1, "2023-04-30T23:59:59"),
        ("2023-05-31T08:00:00", 1, "2023-06-30T08:00:00"),
        ("2023-12-15T00:00:00", 2, "2024-02-15T00:00:00"),
        ("2024-12-31T00:00:00", 2, "2025-02-28T00:00:00"),
        ("2023-01-15T00:00:00", 36, "2026-01-15T00:00:00"),
        ("2021-02-28T08:00:00", 36, "2024-02-28T08:00:00"),
        ("2020-02-29T12:00:00", 36, "2023-02-28T12:00:00"),
        ("2024-02-29T08:00:00", 36, "2027-02-28T08:00:00"),
        ("2096-02-29T08:00:00", 48, "2100-02-28T08:00:00"),  # 2100 is not a leap year
        ("2023-08-31T06:30:00", 36, "2026-08-31T06:30:00"),
        ("2023-05-31T06:30:00", 37, "2026-06-30T06:30:00"),
        # CONTRACT 6.9's last representable input: the window's end stays representable.
        ("2199-12-31T23:59:59.999000", 36, "2202-12-31T23:59:59.999000"),
        ("2000-01-01T00:00:00", 36, "2003-01-01T00:00:00"),
    ],
)
def test_the_window_end_keeps_the_time_and_clamps_the_day(
    since: str, months: int, end: str
) -> None:
    assert attribution_window_end(_at(since), months) == _at(end)
    assert add_months(_at(since), months) == _at(end)


def test_the_contracts_example_the_end_itself_is_outside() -> None:
    since = dt.datetime(2023, 1, 15, tzinfo=UTC)
    assert attribution_window_end(since) == dt.datetime(2026, 1, 15, tzinfo=UTC)  # 36 months
    assert not in_attribution_window(since, dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert in_attribution_window(since, dt.datetime(2026, 1, 14, 23, 59, 59, 999000, tzinfo=UTC))


def test_months_shift_both_ways_across_years() -> None:
    assert shift_month(2026, 1, -1) == (2025, 12)
    assert shift_month(2026, 12, 1) == (2027, 1)
    assert shift_month(2026, 3, -27) == (2023, 12)
    assert shift_month(2199, 12, 36) == (2202, 12)
    assert add_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2199, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    ),
    st.integers(min_value=-120, max_value=120),
)
def test_add_months_lands_in_the_right_month_at_the_same_time(
    start: dt.datetime, months: int
) -> None:
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.time() == start.time() and end.tzinfo is start.tzinfo
    assert end.day == start.day or (end.day < start.day and (end + dt.timedelta(days=1)).day == 1)


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2199, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    ),
    st.timedeltas(min_value=dt.timedelta(days=-3), max_value=dt.timedelta(days=3)),
)
def test_both_services_agree_on_the_window(since: dt.datetime, off_the_end: dt.timedelta) -> None:
    """Registration's partner-of-record rule and commissions' `attribution_expired` agree."""
    at = attribution_window_end(since) + off_the_end
    inside = at < attribution_window_end(since)
    # Registration: a weaker claim by another partner replaces only once the window is over.
    held = PartnerOfRecord("P-A", since, "partner_registration")
    claim = Claim("P-B", "checkout_seller_code", at, "order", "o")
    attribution = decide_attribution(
        held, current_active=True, claim=claim, window_months=ATTRIBUTION_WINDOW_MONTHS
    )
    assert (attribution.outcome is Outcome.REPLACE) is not inside
    # Commissions: the same partner of record earns only inside it.
    line = order(occurred_at=at.isoformat(), por=partner(since=since.isoformat()))
    commission = decide_commission(line, RATES, Policy())
    assert (commission.reason == "attribution_expired") is not inside


def test_a_daily_job_catches_up_the_days_it_missed_within_its_limit() -> None:
    day = dt.date(2024, 2, 27)
    assert days_to_catch_up(day, day, 3) == []
    assert days_to_catch_up(day, day - dt.timedelta(days=1), 3) == []
    assert days_to_catch_up(day, dt.date(2024, 2, 29), 3) == [
        dt.date(2024, 2, 28),
        dt.date(2024, 2, 29),
    ]
    assert days_to_catch_up(day, dt.date(2024, 3, 10), 3) == [
        dt.date(2024, 3, 8),
        dt.date(2024, 3, 9),
        dt.date(2024, 3, 10),
    ]
