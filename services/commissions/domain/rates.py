"""Versioned, effective-dated rate tables (basis points per tier and line kind)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, get_args

from shared.events import LineKind, PartnerTier

TIERS: Final[tuple[PartnerTier, ...]] = get_args(PartnerTier)
KINDS: Final[tuple[LineKind, ...]] = get_args(LineKind)
MAX_BPS: Final = 10_000

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


class RateBook:
    """Every version; answers which one was in force at an instant."""

    def __init__(self, tables: Iterable[RateTable]) -> None:
        ordered = sorted(tables, key=lambda t: (t.effective_from, t.version))
        if not ordered:
            raise RateTableError("there is no rate table")
        self._tables = tuple(ordered)
        self._starts = [t.effective_from for t in ordered]

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
