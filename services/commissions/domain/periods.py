"""Calendar arithmetic the rules need: statement months, days (calendar months: shared.calendar)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Self

from shared.calendar import add_months

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def end_of_day(day: dt.date) -> dt.datetime:
    """`as_of=YYYY-MM-DD` means the end of that day, UTC: the last millisecond of it."""
    return dt.datetime.combine(day, dt.time(23, 59, 59, 999_000), tzinfo=dt.UTC)


def start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A statement month, `YYYY-MM`, UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Self:
        match = _MONTH.fullmatch(text)
        if match is None:
            raise ValueError("month must be YYYY-MM")
        year, month = int(match.group(1)), int(match.group(2))
        # The month's end (next month's start) must be representable too.
        if not 1 <= year <= 9998:
            raise ValueError("month must be between 0001-01 and 9998-12")
        return cls(year, month)

    @classmethod
    def of(cls, at: dt.datetime) -> Self:
        utc = at.astimezone(dt.UTC)
        return cls(utc.year, utc.month)

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The first instant of the next month (exclusive bound)."""
        return add_months(self.start, 1)

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
