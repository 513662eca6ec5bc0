"""The deals form's amounts: major units typed, exact minor units sent (CONTRACT 1, 6.9)."""

from __future__ import annotations

import pytest

from services.portal.domain.deals import amount_minor

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("1,234.57", "EUR", 123457),
        ("12500", "EUR", 1250000),
        ("0", "EUR", 0),
        ("98765", "JPY", 98765),
        ("1.234", "BHD", 1234),
        ("10000000000000.00", "EUR", 10**15),
        ("10000000000000.01", "EUR", None),
        ("1.5", "JPY", None),
        ("12.345", "EUR", None),
        ("-1", "EUR", None),
        ("abc", "EUR", None),
        ("NaN", "EUR", None),
        ("Infinity", "EUR", None),
        ("1e3", "EUR", 100000),
        ("", "EUR", None),
        ("1", "XYZ", None),
    ],
)
def test_amounts(text: str, currency: str, expected: int | None) -> None:
    assert amount_minor(text, currency) == expected
