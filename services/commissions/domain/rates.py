"""Versioned, effective-dated rate tables (basis points per tier and line kind) and overrides.

Rate overrides (CONTRACT 6.5) are effective-dated entries scoped to a partner, a
product or both, optionally narrowed to one line kind. The most specific entry in
force at a line's `occurred_at` wins: partner and product, then partner, then
product, then the tier table. Within each of those levels an entry naming the
line's kind is more specific than one for every kind. Among entries of the same
specificity the latest `effective_from` not after `occurred_at` wins (the later
version on a tie), so a newer entry supersedes an older one from its start on.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, get_args

from shared.events import LineKind, PartnerTier, RateSource

TIERS: Final[tuple[PartnerTier, ...]] = get_args(PartnerTier)
KINDS: Final[tuple[LineKind, ...]] = get_args(LineKind)
MAX_BPS: Final = 10_000
EARLIEST: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""CONTRACT 6.9: every date of a request lies in 2000-01-01 ... 2199-12-31."""

DEFAULT_EFFECTIVE_FROM: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""Version 1 is in force for every order: nothing was sold before it."""


class RateTableError(ValueError):
    """A rate table that cannot be used: missing rates, out-of-range bps, no version in force."""

    def __init__(self, message: str, field: str = "rates") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class RateTable:
    """One version: the rate of each (tier, kind), and the distributor override."""

    version: int
    effective_from: dt.datetime
    rates: Mapping[PartnerTier, Mapping[LineKind, int]]
    distributor_override_bps: int

    def __post_init__(self) -> None:
        if self.version < 1:
            raise RateTableError("version must be >= 1", "version")
        if self.effective_from.tzinfo is None:
            raise RateTableError(
                "effective_from must be an instant (timezone-aware)", "effective_from"
            )
        for tier in TIERS:
            per_kind = self.rates.get(tier)
            if per_kind is None:
                raise RateTableError(f"rates for tier {tier} are missing", f"rates.{tier}")
            for kind in KINDS:
                _check_bps(per_kind.get(kind), f"rates.{tier}.{kind}")
        _check_bps(self.distributor_override_bps, "distributor_override_bps")
        frozen = {tier: MappingProxyType(dict(self.rates[tier])) for tier in TIERS}
        object.__setattr__(self, "rates", MappingProxyType(frozen))

    def rate_bps(self, tier: PartnerTier, kind: LineKind) -> int:
        return self.rates[tier][kind]


def _check_bps(value: object, field: str) -> None:
    # bool is an int; a JSON `true` must not pass for 1 bps.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RateTableError(f"{field} must be an integer number of basis points", field)
    if not 0 <= value <= MAX_BPS:
        raise RateTableError(f"{field} must be between 0 and {MAX_BPS} bps", field)


DEFAULT_RATE_TABLE: Final = RateTable(
    version=1,
    effective_from=DEFAULT_EFFECTIVE_FROM,
    rates={
        "platinum": {"new": 1500, "renewal": 2000, "upgrade": 1500},
        "gold": {"new": 1000, "renewal": 1500, "upgrade": 1000},
        "silver": {"new": 750, "renewal": 1000, "upgrade": 750},
        "bronze": {"new": 500, "renewal": 500, "upgrade": 500},
    },
    distributor_override_bps=200,
)


@dataclass(frozen=True, slots=True)
class RateOverride:
    """One override entry: a rate for a partner, a product or both, maybe one kind only."""

    version: int
    """The PUT that added it; entries are never edited."""
    position: int
    """Its place in that PUT's `entries`."""
    partner_id: str | None
    product: str | None
    kind: LineKind | None
    rate_bps: int
    effective_from: dt.datetime

    def __post_init__(self) -> None:
        if self.partner_id is None and self.product is None:
            # A rate for everyone is a tier-table change: that has its own versions.
            raise RateTableError("an override names a partner_id, a product or both", "partner_id")
        if self.partner_id == "" or self.product == "":
            raise RateTableError("partner_id and product must not be empty", "partner_id")
        _check_bps(self.rate_bps, "rate_bps")
        if self.effective_from.tzinfo is None:
            raise RateTableError(
                "effective_from must be an instant (timezone-aware)", "effective_from"
            )
        if not EARLIEST <= self.effective_from < LATEST:
            raise RateTableError(
                "effective_from must lie in 2000-01-01 ... 2199-12-31", "effective_from"
            )

    @property
    def specificity(self) -> int:
        """Higher wins: partner+product 6/7, partner 4/5, product 2/3; +1 with a kind."""
        level = 3 if self.partner_id and self.product else 2 if self.partner_id else 1
        return 2 * level + (1 if self.kind is not None else 0)

    def matches(self, partner_id: str, product: str | None, kind: LineKind) -> bool:
        return (
            (self.partner_id is None or self.partner_id == partner_id)
            and (self.product is None or self.product == product)
            and (self.kind is None or self.kind == kind)
        )


def _rank(entry: RateOverride) -> tuple[int, dt.datetime, int, int]:
    return (entry.specificity, entry.effective_from, entry.version, entry.position)


@dataclass(frozen=True, slots=True)
class Rate:
    """The rate of a partner-of-record line and where it came from."""

    bps: int
    source: RateSource
    table: RateTable
    override: RateOverride | None = None


class RateBook:
    """Every version of the tier table and every override; answers what was in force when."""

    def __init__(self, tables: Iterable[RateTable], overrides: Iterable[RateOverride] = ()) -> None:
        ordered = sorted(tables, key=lambda t: (t.effective_from, t.version))
        if not ordered:
            raise RateTableError("there is no rate table")
        self._tables = tuple(ordered)
        self._starts = [t.effective_from for t in ordered]
        self._overrides = tuple(sorted(overrides, key=lambda o: (o.version, o.position)))
        # By scope, so a line looks at its three scopes only, however many entries exist.
        self._by_scope: dict[tuple[str | None, str | None], list[RateOverride]] = {}
        for entry in self._overrides:
            self._by_scope.setdefault((entry.partner_id, entry.product), []).append(entry)

    @property
    def overrides(self) -> tuple[RateOverride, ...]:
        return self._overrides

    def override_in_force(
        self, partner_id: str, product: str | None, kind: LineKind, at: dt.datetime
    ) -> RateOverride | None:
        """The most specific override entry in force at `at`, or None: the tier table's turn."""
        if not self._by_scope:
            return None
        best: RateOverride | None = None
        for scope in ((partner_id, product), (partner_id, None), (None, product)):
            for entry in self._by_scope.get(scope, ()):
                if entry.effective_from > at or not entry.matches(partner_id, product, kind):
                    continue
                if best is None or _rank(entry) > _rank(best):
                    best = entry
        return best

    def rate(
        self,
        partner_id: str,
        product: str | None,
        tier: PartnerTier,
        kind: LineKind,
        at: dt.datetime,
    ) -> Rate:
        """The partner-of-record rate of a line: an override's, else the tier table's."""
        table = self.in_force(at)
        override = self.override_in_force(partner_id, product, kind, at)
        if override is None:
            return Rate(table.rate_bps(tier, kind), "tier_table", table)
        return Rate(override.rate_bps, "override", table, override)

    @property
    def tables(self) -> tuple[RateTable, ...]:
        return self._tables

    @property
    def latest(self) -> RateTable:
        return max(self._tables, key=lambda t: t.version)

    def in_force(self, at: dt.datetime) -> RateTable:
        """The version with the latest `effective_from` not after `at`."""
        index = bisect.bisect_right(self._starts, at) - 1
        if index < 0:
            raise RateTableError(f"no rate table is in force at {at.isoformat()}", "effective_from")
        return self._tables[index]

    def check_new(self, table: RateTable, now: dt.datetime) -> None:
        """A new version may only start in the future and after every existing one.

        An earlier start would re-rate orders already booked under the old version,
        so a replay of the same input would no longer give the same ledger.
        """
        if table.version != self.latest.version + 1:
            raise RateTableError(f"the next version is {self.latest.version + 1}", "version")
        if table.effective_from < now:
            raise RateTableError("effective_from must not be in the past", "effective_from")
        if table.effective_from <= self._starts[-1]:
            raise RateTableError(
                "effective_from must be after the latest version's effective_from",
                "effective_from",
            )
