"""Earned tiers (CONTRACT 6.4): tier rules, exact revenue conversion, who qualifies, when to move.

Pure rules, no I/O. Revenue is summed per currency in integer minor units and
converted to the programme currency with exact fractions; it is rounded
half-even once per partner (CONTRACT 1), never per line or per currency.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from shared.events import PartnerTier
from shared.money import MINOR_DIGITS, is_currency, round_half_even

TIERS_ASCENDING: Final[tuple[PartnerTier, ...]] = ("bronze", "silver", "gold", "platinum")
"""The lowest tier first; a partner that meets no threshold still stands at bronze."""
RANK: Final[Mapping[PartnerTier, int]] = MappingProxyType(
    {tier: n for n, tier in enumerate(TIERS_ASCENDING)}
)
MAX_AMOUNT_MINOR: Final = 10**15
MAX_CERTIFIED: Final = 100_000
MAX_GRACE_DAYS: Final = 3650
MAX_FX_CURRENCIES: Final = 200
REVENUE_WINDOW_MONTHS: Final = 12
# A rate is a plain decimal string: digits, at most one point, no sign, no exponent
# ("1e3" and "NaN" are Decimals too, and neither is what a treasurer writes).
_FX_PATTERN: Final = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$")


class TierRulesError(ValueError):
    """Rules that cannot be used; `field` names the input (a 422 names it)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Threshold:
    min_revenue_minor: int
    min_certified: int


def parse_fx(text: object, field: str) -> Decimal:
    """One unit of a currency in the programme currency: a positive decimal string."""
    if not isinstance(text, str) or not _FX_PATTERN.match(text):
        raise TierRulesError(
            f'{field} must be a decimal string such as "0.92" (no sign or exponent)', field
        )
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise TierRulesError(f"{field} is not a decimal", field) from None
    if value <= 0:
        raise TierRulesError(f"{field} must be above 0", field)
    return value


@dataclass(frozen=True, slots=True)
class TierRules:
    """One version of the tier rules, in force from `effective_from`."""

    version: int
    effective_from: dt.datetime
    currency: str
    fx: Mapping[str, Decimal]
    tiers: Mapping[PartnerTier, Threshold]
    demotion_grace_days: int
    recorded_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.version < 1:
            raise TierRulesError("version must be >= 1", "version")
        if self.effective_from.tzinfo is None:
            raise TierRulesError("effective_from must carry an offset", "effective_from")
        if not is_currency(self.currency):
            raise TierRulesError("currency must be an ISO 4217 code", "currency")
        if len(self.fx) > MAX_FX_CURRENCIES:
            raise TierRulesError(f"fx lists at most {MAX_FX_CURRENCIES} currencies", "fx")
        for code, rate in self.fx.items():
            if not is_currency(code):
                raise TierRulesError(f"fx.{code} is not an ISO 4217 code", f"fx.{code}")
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise TierRulesError(f"fx.{code} must be a positive decimal", f"fx.{code}")
            if code == self.currency and rate != 1:
                raise TierRulesError(
                    f"fx.{code} is the programme currency: its rate is 1", f"fx.{code}"
                )
        if isinstance(self.demotion_grace_days, bool) or not (
            0 <= self.demotion_grace_days <= MAX_GRACE_DAYS
        ):
            raise TierRulesError(
                f"demotion_grace_days must lie in 0 .. {MAX_GRACE_DAYS}", "demotion_grace_days"
            )
        previous: tuple[PartnerTier, Threshold] | None = None
        for tier in TIERS_ASCENDING:
            threshold = self.tiers.get(tier)
            if threshold is None:
                raise TierRulesError(f"tiers.{tier} is missing", f"tiers.{tier}")
            for name, value, bound in (
                ("min_revenue_minor", threshold.min_revenue_minor, MAX_AMOUNT_MINOR),
                ("min_certified", threshold.min_certified, MAX_CERTIFIED),
            ):
                where = f"tiers.{tier}.{name}"
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TierRulesError(f"{where} must be an integer", where)
                if not 0 <= value <= bound:
                    raise TierRulesError(f"{where} must lie in 0 .. {bound}", where)
            if previous is not None:
                # A higher tier never asks for less than the one below it, on either
                # measure: otherwise "the highest tier it qualifies for" could skip one.
                lower, below = previous
                for name in ("min_revenue_minor", "min_certified"):
                    if getattr(threshold, name) < getattr(below, name):
                        raise TierRulesError(
                            f"tiers.{tier}.{name} is below tiers.{lower}.{name}:"
                            " thresholds must not fall as tiers rise",
                            f"tiers.{tier}.{name}",
                        )
            previous = (tier, threshold)
        object.__setattr__(self, "fx", MappingProxyType(dict(self.fx)))
        object.__setattr__(self, "tiers", MappingProxyType(dict(self.tiers)))

    def rate(self, currency: str) -> Fraction | None:
        """Programme minor units per minor unit of `currency`, exactly; None if unknown."""
        if currency == self.currency:
            return Fraction(1)
        rate = self.fx.get(currency)
        if rate is None:
            return None
        shift = MINOR_DIGITS.get(self.currency, 2) - MINOR_DIGITS.get(currency, 2)
        return Fraction(rate) * Fraction(10) ** shift


@dataclass(frozen=True, slots=True)
class Revenue:
    """A partner's revenue over a window, converted and rounded once."""

    amount_minor: int
    currency: str
    by_currency: Mapping[str, int]
    unconverted: tuple[str, ...] = ()


def converted_exact(amounts: Mapping[str, int], rules: TierRules) -> tuple[Fraction, list[str]]:
    """The exact sum in programme minor units, and the currencies with no rate (left out)."""
    total = Fraction(0)
    missing: list[str] = []
    for currency in sorted(amounts):
        rate = rules.rate(currency)
        if rate is None:
            if amounts[currency]:
                missing.append(currency)
            continue
        total += amounts[currency] * rate
    return total, missing


def convert(amounts: Mapping[str, int], rules: TierRules) -> Revenue:
    """Sum per-currency minor units into the programme currency: one half-even rounding."""
    exact, missing = converted_exact(amounts, rules)
    return Revenue(
        amount_minor=round_half_even(exact.numerator, exact.denominator),
        currency=rules.currency,
        by_currency=MappingProxyType({c: v for c, v in sorted(amounts.items()) if v}),
        unconverted=tuple(missing),
    )


def qualifying_tier(revenue_minor: int, certified: int, rules: TierRules) -> PartnerTier:
    """The highest tier whose two thresholds are both met; bronze is the floor."""
    for tier in reversed(TIERS_ASCENDING):
        threshold = rules.tiers[tier]
        if revenue_minor >= threshold.min_revenue_minor and certified >= threshold.min_certified:
            return tier
    return "bronze"


@dataclass(frozen=True, slots=True)
class Gap:
    """What the tier above `qualifies_for` still needs (never negative)."""

    tier: PartnerTier
    min_revenue_minor: int
    min_certified: int
    revenue_minor: int
    certified: int


def next_tier_gap(
    qualifies_for: PartnerTier, revenue_minor: int, certified: int, rules: TierRules
) -> Gap | None:
    rank = RANK[qualifies_for]
    if rank + 1 >= len(TIERS_ASCENDING):
        return None
    tier = TIERS_ASCENDING[rank + 1]
    threshold = rules.tiers[tier]
    return Gap(
        tier=tier,
        min_revenue_minor=threshold.min_revenue_minor,
        min_certified=threshold.min_certified,
        revenue_minor=max(0, threshold.min_revenue_minor - revenue_minor),
        certified=max(0, threshold.min_certified - certified),
    )


class TierRuleBook:
    """Every version; answers which one is in force at an instant."""

    def __init__(self, versions: Iterable[TierRules]) -> None:
        self.versions = tuple(sorted(versions, key=lambda r: (r.effective_from, r.version)))
        self._starts = [r.effective_from for r in self.versions]

    @property
    def latest(self) -> TierRules | None:
        return max(self.versions, key=lambda r: r.version) if self.versions else None

    def in_force(self, at: dt.datetime) -> TierRules | None:
        index = bisect.bisect_right(self._starts, at) - 1
        return self.versions[index] if index >= 0 else None

    def check_new(self, rules: TierRules, last_evaluated: dt.datetime | None) -> None:
        """A version starts after every existing one and after the last evaluation.

        An earlier start would change what an evaluation already run decided, so
        running it again for the same `as_of` would no longer change nothing.
        """
        latest = self.latest
        expected = latest.version + 1 if latest else 1
        if rules.version != expected:
            raise TierRulesError(f"the next version is {expected}", "version")
        if self._starts and rules.effective_from <= self._starts[-1]:
            raise TierRulesError(
                "effective_from must be after the latest version's effective_from",
                "effective_from",
            )
        if last_evaluated is not None and rules.effective_from <= last_evaluated:
            raise TierRulesError(
                "effective_from must be after the latest tier evaluation"
                f" ({last_evaluated.isoformat()})",
                "effective_from",
            )


@dataclass(frozen=True, slots=True)
class Standing:
    """What earlier evaluations found: since when the partner has been below its tier."""

    partner_id: str
    below_since: dt.date | None = None
    last_as_of: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """An evaluation's verdict on one partner."""

    partner_id: str
    current: PartnerTier
    qualifies_for: PartnerTier
    new_tier: PartnerTier | None
    standing: Standing
    below_since: dt.date | None = None

    @property
    def kind(self) -> str:
        if self.new_tier is None:
            return "pending_demotion" if self.below_since is not None else "none"
        return "promotion" if RANK[self.new_tier] > RANK[self.current] else "demotion"


def decide_tier(
    partner_id: str,
    current: PartnerTier,
    qualifies_for: PartnerTier,
    standing: Standing | None,
    as_of: dt.date,
    grace_days: int,
) -> Move:
    """Promote at once; demote once found below at evaluations `grace_days` apart.

    `below_since` is the first evaluation that found the partner below its tier
    with none since finding it qualified; an evaluation that finds it qualified
    clears it. Running the same `as_of` again decides the same and moves nothing
    more (the tier already stands where the first run put it).
    """
    before = standing or Standing(partner_id)
    if RANK[qualifies_for] >= RANK[current]:
        new = qualifies_for if qualifies_for != current else None
        return Move(partner_id, current, qualifies_for, new, Standing(partner_id, None, as_of))
    below_since = before.below_since
    if below_since is None or below_since > as_of:
        below_since = as_of
    if (as_of - below_since).days >= grace_days:
        return Move(
            partner_id, current, qualifies_for, qualifies_for, Standing(partner_id, None, as_of)
        )
    return Move(
        partner_id,
        current,
        qualifies_for,
        None,
        Standing(partner_id, below_since, as_of),
        below_since=below_since,
    )


def window_start(as_of_end: dt.datetime, months: int = REVENUE_WINDOW_MONTHS) -> dt.datetime:
    """The start (exclusive) of the `months` calendar months ending at `as_of_end`."""
    month = as_of_end.month - months
    year = as_of_end.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(as_of_end.day, _days_in(year, month))
    return as_of_end.replace(year=year, month=month, day=day)


def _days_in(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


@dataclass
class RevenueTally:
    """Per-currency minor units of one partner: integers only, so the sum is exact."""

    amounts: dict[str, int] = field(default_factory=dict)

    def add(self, currency: str, amount_minor: int) -> None:
        self.amounts[currency] = self.amounts.get(currency, 0) + amount_minor


def end_of_day(day: dt.date) -> dt.datetime:
    """`as_of=YYYY-MM-DD` is the end of that day, UTC (CONTRACT 1): its last millisecond."""
    return dt.datetime.combine(day, dt.time(23, 59, 59, 999000), tzinfo=dt.UTC)
