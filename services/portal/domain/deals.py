"""What the deals pages need besides the API (CONTRACT 6.3): amounts as people type them.

A partner types an estimated value in major units ("12,500.00"); the API takes
integer minor units of the currency. The conversion is exact (Decimal, never a
float) and refuses more decimals than the currency has, rather than rounding.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

from shared.money import MINOR_DIGITS

MAX_AMOUNT_MINOR: Final = 10**15

STATUS_LABELS: Final[dict[str, str]] = {
    "submitted": "Submitted, awaiting approval",
    "approved": "Approved, protected",
    "rejected": "Not approved",
    "won": "Won",
    "expired": "Expired",
}


def amount_minor(text: str, currency: str) -> int | None:
    """`"1,234.57"` in EUR -> 123457; None when it is not an amount in that currency."""
    digits = MINOR_DIGITS.get(currency)
    if digits is None:
        return None
    cleaned = text.replace(",", "").replace(" ", "").strip()
    if not cleaned or len(cleaned) > 30:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        return None
    result = int(minor)
    return result if result <= MAX_AMOUNT_MINOR else None
