"""Bounds on what an API request may carry (CONTRACT 6.9), as annotated types.

Every date and timestamp lies in 2000-01-01 .. 2199-12-31, every amount in
0 .. 10^15 minor units, and a name carries no control, bidirectional or
zero-width character. Outside them a request gets `422` naming the field or
parameter (chassis/errors.py), never a 500 from date arithmetic further in
(`9999-12-31` plus a day overflows) and never a record that blocks every later
one (a rate table dated 9999). The routers of every service take these types,
so a bound lives here once.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, Field, StrictInt
from pydantic_core import PydanticCustomError

MIN_DATE: Final = dt.date(2000, 1, 1)
MAX_DATE: Final = dt.date(2199, 12, 31)
MIN_INSTANT: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END_INSTANT: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""The first instant after the bounds (2199-12-31T23:59:59.999Z is the last inside)."""
MAX_AMOUNT_MINOR: Final = 10**15

_RANGE = f"{MIN_DATE.isoformat()} .. {MAX_DATE.isoformat()}"


def check_date(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise PydanticCustomError("out_of_bounds", "must lie in {range}", {"range": _RANGE})
    return value


def check_instant(value: dt.datetime) -> dt.datetime:
    # Compared in UTC: 2199-12-31T23:00-05:00 is already 2200 and outside.
    if value.tzinfo is None or not MIN_INSTANT <= value < END_INSTANT:
        raise PydanticCustomError("out_of_bounds", "must lie in {range} (UTC)", {"range": _RANGE})
    return value


def in_bounds(value: dt.datetime) -> bool:
    """For callers that parse by hand and answer with their own error."""
    return value.tzinfo is not None and MIN_INSTANT <= value < END_INSTANT


BoundedDate = Annotated[
    dt.date,
    AfterValidator(check_date),
    Field(description=f"YYYY-MM-DD, {_RANGE}"),
]
BoundedInstant = Annotated[
    AwareDatetime,
    AfterValidator(check_instant),
    Field(description=f"RFC 3339 with an offset, {_RANGE} (UTC)"),
]
AmountMinor = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_AMOUNT_MINOR, description="integer minor units, 0 .. 10^15"),
]

DATE_OR_INSTANT_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ]
}
"""OpenAPI schema of a query parameter that takes `YYYY-MM-DD` or an instant."""


# Control characters (Cc), format characters (Cf: the bidirectional embeddings,
# overrides, isolates and marks, zero-width space/joiners, word joiner, BOM, soft
# hyphen), and line/paragraph separators: none belongs in a name a person reads,
# and each can make one name pass for another in a mail, a list or a log line.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_ZERO_WIDTH: Final = re.compile("[\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def forbidden_character(text: str) -> str | None:
    """The first character a name must not carry, as `U+XXXX`, or None."""
    for char in text:
        if _ZERO_WIDTH.match(char) or unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def check_name(text: str) -> str:
    found = forbidden_character(text)
    if found is not None:
        raise PydanticCustomError(
            "forbidden_character",
            "must not contain control, bidirectional or zero-width characters (found {char})",
            {"char": found},
        )
    return text


CleanText = AfterValidator(check_name)
"""Add to a `str` annotation: no control, bidirectional or zero-width characters."""
