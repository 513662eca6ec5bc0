"""Calendar-month arithmetic, and the attribution window both services judge with.

Registration decides whether a claim falls inside the partner of record's
window (CONTRACT 2.1); commissions decides whether an order line does (CONTRACT
3.1, `attribution_expired`). They must agree to the instant, so both ask
`in_attribution_window`: the window opened at `since` ends `months` calendar
months later, at the same time of day, the day clamped to the month's end
(2023-01-31T10:00Z + 1 month = 2023-02-28T10:00Z), and the end itself is
outside. Every date the suite accepts lies in 2000-01-01 … 2199-12-31 (CONTRACT
6.9), so a window's end is always representable.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Final, TypeVar

__all__ = [
    "ATTRIBUTION_WINDOW_MONTHS",
    "add_months",
    "attribution_window_end",
    "days_to_catch_up",
    "in_attribution_window",
    "shift_month",
]

ATTRIBUTION_WINDOW_MONTHS: Final = 36
"""The contract's ATTRIBUTION_WINDOW_MONTHS: both services' default."""

Day = TypeVar("Day", bound=dt.date)


def shift_month(year: int, month: int, months: int) -> tuple[int, int]:
    """(year, month) `months` calendar months later (earlier when negative)."""
    shifted_year, index = divmod(year * 12 + (month - 1) + months, 12)
    return shifted_year, index + 1


def add_months(at: Day, months: int) -> Day:
    """`at` plus `months` calendar months: same time of day, day clamped to the month's end.

    Works for dates and datetimes alike (a datetime keeps its time and zone).
    """
    year, month = shift_month(at.year, at.month, months)
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def attribution_window_end(
    since: dt.datetime, months: int = ATTRIBUTION_WINDOW_MONTHS
) -> dt.datetime:
    """The first instant outside the attribution window that opened at `since`."""
    return add_months(since, months)


def in_attribution_window(
    since: dt.datetime, at: dt.datetime, months: int = ATTRIBUTION_WINDOW_MONTHS
) -> bool:
    """True while `at` is before `since + months` calendar months (the end itself is outside)."""
    return at < attribution_window_end(since, months)


def days_to_catch_up(last: dt.date, latest: dt.date, at_most: int) -> list[dt.date]:
    """The days after `last` up to `latest`, oldest first, only the last `at_most` of them.

    What a daily job runs when it wakes: the days it missed, within its catch-up.
    """
    missed = (latest - last).days
    if missed <= 0:
        return []
    first = max(1, missed - at_most + 1)
    return [last + dt.timedelta(days=n) for n in range(first, missed + 1)]
