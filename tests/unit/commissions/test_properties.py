"""Hypothesis properties of the money: exact clawbacks, integer lines, any currency."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.commissions.domain.order_line import LedgerLine
from services.commissions.domain.statements import totals
from shared.money import MINOR_DIGITS
from tests.unit.commissions.builders import applied, order, partner, refund, refund_into

TIERS = st.sampled_from(["platinum", "gold", "silver", "bronze"])
KINDS = st.sampled_from(["new", "renewal", "upgrade"])
CURRENCIES = st.sampled_from(["JPY", "KRW", "EUR", "USD", "KWD", "BHD"])


@st.composite
def splits(draw: st.DrawFn, total: int) -> list[int]:
    """Any split of `total` into positive parts."""
    if total == 1:
        return [1]
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=min(12, total - 1), unique=True))
    points = [0, *sorted(cuts), total]
    return [b - a for a, b in itertools.pairwise(points)]


@st.composite
def full_refund_case(draw: st.DrawFn) -> tuple[int, str, str, str, list[int]]:
    net = draw(st.integers(1, 10**12))
    return net, draw(TIERS), draw(KINDS), draw(CURRENCIES), draw(splits(net))


@settings(max_examples=300, deadline=None)
@given(full_refund_case())
def test_clawbacks_of_any_split_of_a_full_refund_sum_to_exactly_the_commission(
    case: tuple[int, str, str, str, list[int]],
) -> None:
    net, tier, kind, currency, parts = case
    line = applied(order(net=net, kind=kind, currency=currency, por=partner(tier=tier)))  # type: ignore[arg-type]
    commissions = {(x.partner_id, x.role): x.amount_minor for x in line.lines}
    for number, part in enumerate(parts):
        refund_into(line, refund(f"RF-{number}", part, currency=currency))
    for (partner_id, role), commission in commissions.items():
        clawed = sum(
            x.amount_minor
            for x in line.lines
            if x.is_clawback and x.partner_id == partner_id and x.role == role
        )
        assert clawed == -commission
    assert all(t.net_minor == 0 for t in totals(line.lines))


@settings(deadline=None)
@given(net=st.integers(1, 10**9), first=st.integers(1, 10**9), currency=CURRENCIES)
def test_a_partial_refund_claws_back_between_zero_and_each_lines_commission(
    net: int, first: int, currency: str
) -> None:
    line = applied(order(net=net, currency=currency))
    commissions = [x.amount_minor for x in line.lines]
    clawed = refund_into(line, refund("RF-1", min(first, net), currency=currency))
    for commission, amount in zip(commissions, clawed, strict=False):
        assert -commission <= amount < 0


def _assert_no_float(line: LedgerLine) -> None:
    for field in dataclasses.fields(line):
        value = getattr(line, field.name)
        assert not isinstance(value, float), field.name
        if field.name.endswith("_minor") or field.name in ("rate_bps", "rate_table_version"):
            assert type(value) is int, field.name


@settings(deadline=None)
@given(
    net=st.integers(0, 10**15),
    tier=TIERS,
    kind=KINDS,
    currency=st.sampled_from(sorted(MINOR_DIGITS)),
    refunds=st.lists(st.integers(1, 10**15), max_size=4),
)
def test_no_line_ever_has_a_float_in_it(
    net: int, tier: str, kind: str, currency: str, refunds: list[int]
) -> None:
    line = applied(order(net=net, kind=kind, currency=currency, por=partner(tier=tier)))  # type: ignore[arg-type]
    for number, amount in enumerate(refunds):
        refund_into(line, refund(f"RF-{number}", amount, currency=currency))
    for entry in line.lines:
        _assert_no_float(entry)
        assert entry.currency == currency
    for total in totals(line.lines):
        assert type(total.net_minor) is int


@settings(deadline=None)
@given(
    net=st.integers(1, 10**12),
    currency=st.sampled_from(["JPY", "EUR", "KWD"]),
    tier=TIERS,
    kind=KINDS,
)
def test_zero_two_and_three_digit_currencies_agree_with_an_exact_fraction_oracle(
    net: int, currency: str, tier: str, kind: str
) -> None:
    # The rule works on minor units, so 98765 JPY, 987.65 EUR and 98.765 KWD earn the same
    # count of minor units; round() of a Fraction is half-to-even, an independent oracle.
    line = applied(order(net=net, currency=currency, kind=kind, por=partner(tier=tier)))  # type: ignore[arg-type]
    for entry in line.lines:
        assert entry.amount_minor == round(Fraction(net * entry.rate_bps, 10000))
        assert entry.currency == currency


@pytest.mark.parametrize("currency", ["JPY", "EUR", "KWD"])
def test_98765_minor_units_at_1000_bps_is_9876_in_any_currency(currency: str) -> None:
    line = applied(order(net=98765, currency=currency, kind="new", por=partner(parent=None)))
    assert [x.amount_minor for x in line.lines] == [9876]


def test_statements_total_per_currency_never_mixing_them() -> None:
    lines = [
        *applied(order(order_id="A", net=98765, currency="JPY")).lines,
        *applied(order(order_id="B", net=123457, currency="EUR")).lines,
        *applied(order(order_id="C", net=123457, currency="KWD")).lines,
    ]
    result = {t.currency: t.accrued_minor for t in totals(lines)}
    assert result == {"EUR": 18519 + 2469, "JPY": 14815 + 1975, "KWD": 18519 + 2469}
