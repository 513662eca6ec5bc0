"""Hypothesis properties of earned-tier money and thresholds (CONTRACT 1, 6.4)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registration.domain.tiers import (
    RANK,
    TIERS_ASCENDING,
    Threshold,
    TierRules,
    TierRulesError,
    convert,
    converted_exact,
    qualifying_tier,
)
from shared.money import round_half_even

CURRENCIES = ["EUR", "USD", "JPY", "BHD", "GBP"]
rates = st.decimals(
    min_value=Decimal("0.000001"), max_value=Decimal("10000"), places=6, allow_nan=False
)
amounts = st.integers(min_value=-(10**12), max_value=10**12)
lines = st.lists(st.tuples(st.sampled_from(CURRENCIES), amounts), max_size=40)


def rules_with(fx: dict[str, Decimal], tiers: dict[str, Threshold] | None = None) -> TierRules:
    return TierRules(
        version=1,
        effective_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        currency="EUR",
        fx=fx,
        tiers=tiers  # type: ignore[arg-type]
        or {
            "bronze": Threshold(0, 0),
            "silver": Threshold(10, 1),
            "gold": Threshold(100, 2),
            "platinum": Threshold(1000, 3),
        },
        demotion_grace_days=90,
    )


fxs = st.fixed_dictionaries({c: rates for c in CURRENCIES if c != "EUR"})


def per_currency(items: list[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for currency, amount in items:
        totals[currency] = totals.get(currency, 0) + amount
    return totals


@given(fx=fxs, items=lines)
def test_one_rounding_per_partner(fx: dict[str, Decimal], items: list[tuple[str, int]]) -> None:
    rules = rules_with(fx)
    exact, _ = converted_exact(per_currency(items), rules)
    result = convert(per_currency(items), rules).amount_minor
    assert result == round_half_even(exact.numerator, exact.denominator)
    assert abs(Fraction(result) - exact) <= Fraction(1, 2)


@given(fx=fxs, items=lines)
def test_sum_of_converted_lines_equals_conversion_of_the_sum(
    fx: dict[str, Decimal], items: list[tuple[str, int]]
) -> None:
    rules = rules_with(fx)
    # Exact per line, summed, is the exact conversion of the per-currency sums ...
    line_by_line = sum(
        (amount * (rules.rate(currency) or 0) for currency, amount in items), Fraction(0)
    )
    exact, _ = converted_exact(per_currency(items), rules)
    assert line_by_line == exact
    # ... so the partner's figure is within the one rounding of it, whatever the order
    # or grouping of its lines.
    converted = convert(per_currency(items), rules).amount_minor
    assert abs(Fraction(converted) - line_by_line) <= Fraction(1, 2)
    assert convert(per_currency(list(reversed(items))), rules).amount_minor == converted


@given(
    revenue=st.integers(min_value=0, max_value=10**6),
    certified=st.integers(min_value=0, max_value=10),
    more_revenue=st.integers(min_value=0, max_value=10**6),
    more_certified=st.integers(min_value=0, max_value=10),
)
def test_qualifying_is_monotonic(
    revenue: int, certified: int, more_revenue: int, more_certified: int
) -> None:
    rules = rules_with({})
    low = qualifying_tier(revenue, certified, rules)
    high = qualifying_tier(revenue + more_revenue, certified + more_certified, rules)
    assert RANK[high] >= RANK[low]


thresholds = st.tuples(
    st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=1000)
)


@given(st.lists(thresholds, min_size=4, max_size=4))
def test_rules_are_accepted_exactly_when_thresholds_are_monotonic(
    given_thresholds: list[tuple[int, int]],
) -> None:
    tiers = {t: Threshold(*v) for t, v in zip(TIERS_ASCENDING, given_thresholds, strict=True)}
    monotonic = all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(given_thresholds))
    if monotonic:
        rules = rules_with({}, tiers)
        # Whoever qualifies for a tier qualifies for every tier below it.
        for n, tier in enumerate(TIERS_ASCENDING):
            t = tiers[tier]
            assert RANK[qualifying_tier(t.min_revenue_minor, t.min_certified, rules)] >= n
    else:
        with pytest.raises(TierRulesError) as error:
            rules_with({}, tiers)
        assert error.value.field.startswith("tiers.")
