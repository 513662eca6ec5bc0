"""Pure rules for what the pages show: money, periods, renewals, totals, brand colours."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RENEWAL_HORIZON_DAYS = 90
COMMISSION_STATUSES = ("accrued", "payable", "paid")

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND",
         "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}  # fmt: skip
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DEFAULT_BRAND_COLOR = "#1F4E79"


def format_money(amount_minor: int, currency: str) -> str:
    """`123457, "EUR"` -> `EUR 1,234.57`; exact (integer arithmetic), sign in front."""
    exponent = _EXPONENTS.get(currency.upper(), 2)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    text = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    return f"{currency} {sign}{text}"


def is_month(text: str) -> bool:
    return bool(_MONTH.fullmatch(text))


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of `YYYY-MM`."""
    year, number = (int(part) for part in month.split("-"))
    first = dt.date(year, number, 1)
    following = dt.date(year + number // 12, number % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def recent_months(today: dt.date, count: int = 12) -> list[str]:
    months, year, number = [], today.year, today.month
    for _ in range(count):
        months.append(f"{year:04d}-{number:02d}")
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
    return months


def up_for_renewal(
    entitlements: Iterable[Mapping[str, Any]], today: dt.date, days: int = RENEWAL_HORIZON_DAYS
) -> list[Mapping[str, Any]]:
    """Entitlements whose term ends from today to `days` ahead, soonest first."""
    last = today + dt.timedelta(days=days)
    due = [e for e in entitlements if today <= dt.date.fromisoformat(e["term_end"]) <= last]
    return sorted(due, key=lambda e: (e["term_end"], e["license_key"]))


def days_until(term_end: str, today: dt.date) -> int:
    return (dt.date.fromisoformat(term_end) - today).days


def matches(entitlement: Mapping[str, Any], query: str) -> bool:
    """Search by licence key or customer (organisation, contact, customer id), any case."""
    needle = query.strip().casefold()
    if not needle:
        return True
    customer = entitlement.get("customer") or {}
    haystack = (
        entitlement.get("license_key", ""),
        customer.get("org_name", ""),
        customer.get("contact_name", ""),
        customer.get("customer_id", ""),
    )
    return any(needle in str(value).casefold() for value in haystack)


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    by_status: dict[str, int]
    net: int


def totals_by_currency(lines: Iterable[Mapping[str, Any]]) -> list[CurrencyTotals]:
    """Sum of `amount_minor` per currency (alphabetical) and status; clawbacks are negative."""
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        per_status = sums.setdefault(line["currency"], dict.fromkeys(COMMISSION_STATUSES, 0))
        per_status[line["status"]] = per_status.get(line["status"], 0) + int(line["amount_minor"])
    return [
        CurrencyTotals(currency, per_status, sum(per_status.values()))
        for currency, per_status in sorted(sums.items())
    ]


def brand_color(color: str | None) -> str:
    return color if color and _HEX_COLOR.fullmatch(color) else DEFAULT_BRAND_COLOR


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    digits = color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def text_on(background: str) -> str:
    """Black or white, whichever contrasts more with the partner's colour (WCAG)."""
    light = luminance(background)
    on_white = 1.05 / (light + 0.05)
    on_black = (light + 0.05) / 0.05
    return "#FFFFFF" if on_white >= on_black else "#000000"
