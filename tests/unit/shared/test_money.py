"""round_half_even against the contract's worked examples, and the minor-unit table."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import MINOR_DIGITS, is_currency, round_half_even

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (123457 * 1500, 10000, 18519),  # 18518.55
        (123457 * 200, 10000, 2469),  # 2469.14
        (10050 * 500, 10000, 502),  # 502.5 -> even
        (10150 * 500, 10000, 508),  # 507.5 -> even
        (98765 * 1000, 10000, 9876),  # JPY 9876.5 -> even
        (18519 * 61728, 123457, 9259),  # first refund clawback
        (18519 * (61728 + 61729), 123457, 18519),  # cumulative: full refund
        (2469 * 61728, 123457, 1234),
        (2469 * 123457, 123457, 2469),
        (0, 7, 0),
        (5, 2, 2),
        (7, 2, 4),
    ],
)
def test_worked_examples(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_even(numerator, denominator) == expected
    assert round_half_even(-numerator, denominator) == -expected
    assert round_half_even(numerator, -denominator) == -expected


def test_contract_clawback_sequence() -> None:
    commission, net = 18519, 123457
    cumulative = [61728, 61728 + 61729]
    previous = 0
    clawbacks = []
    for refunded in cumulative:
        total = round_half_even(commission * refunded, net)
        clawbacks.append(-(total - previous))
        previous = total
    assert clawbacks == [-9259, -9260]


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**12))
def test_matches_fraction_rounding(numerator: int, denominator: int) -> None:
    # Python's round() on a Fraction is exact half-to-even.
    assert round_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@given(st.integers(-(10**18), 10**18), st.integers(1, 10**9))
def test_symmetric(numerator: int, denominator: int) -> None:
    assert round_half_even(-numerator, denominator) == -round_half_even(numerator, denominator)


@pytest.mark.parametrize("bad", [1.5, True, "3"])
def test_rejects_non_int(bad: object) -> None:
    with pytest.raises(TypeError):
        round_half_even(bad, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_half_even(3, bad)  # type: ignore[arg-type]


def test_zero_denominator() -> None:
    with pytest.raises(ZeroDivisionError):
        round_half_even(1, 0)


def test_minor_digits() -> None:
    assert MINOR_DIGITS["EUR"] == 2
    assert MINOR_DIGITS["USD"] == 2
    for code in ("JPY", "KRW"):
        assert MINOR_DIGITS[code] == 0
    for code in ("BHD", "KWD", "JOD", "OMR", "TND"):
        assert MINOR_DIGITS[code] == 3
    assert all(len(code) == 3 and code.isupper() for code in MINOR_DIGITS)
    assert is_currency("EUR")
    assert not is_currency("eur")
    assert not is_currency("XYZ")
