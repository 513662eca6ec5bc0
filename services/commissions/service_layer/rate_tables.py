"""Rate tables and rate overrides: list the versions, add one (never edit one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.commissions.domain.rates import RateBook, RateOverride, RateTable, RateTableError
from services.commissions.service_layer.ports import Clock, RateTableRepository
from shared.events import LineKind, PartnerTier


class RateTableConflictError(RuntimeError):
    """Another version was added at the same time; the caller may retry."""


@dataclass(frozen=True, slots=True)
class OverrideEntry:
    """One entry of a PUT /v1/admin/rate-overrides, before it gets its version."""

    partner_id: str | None
    product: str | None
    kind: LineKind | None
    rate_bps: int
    effective_from: dt.datetime


class RateTables:
    def __init__(self, repository: RateTableRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def book(self) -> RateBook:
        return await self._repository.book()

    async def add(
        self,
        *,
        effective_from: dt.datetime,
        rates: Mapping[PartnerTier, Mapping[LineKind, int]],
        distributor_override_bps: int,
    ) -> RateTable:
        book = await self._repository.book()
        table = RateTable(
            version=book.latest.version + 1,
            effective_from=effective_from,
            rates=rates,
            distributor_override_bps=distributor_override_bps,
        )
        book.check_new(table, self._clock())
        if not await self._repository.add(table):
            raise RateTableConflictError(f"version {table.version} was added concurrently")
        return table

    async def add_overrides(self, entries: Sequence[OverrideEntry]) -> list[RateOverride]:
        """Add one version of override entries (CONTRACT 6.5); never edits an earlier one.

        Like a rate table, an entry may only start now or later: an earlier start
        would re-rate orders already booked, so a replay would no longer give the
        same ledger.
        """
        if not entries:
            raise RateTableError("entries must not be empty", "entries")
        book = await self._repository.book()
        version = max((o.version for o in book.overrides), default=0) + 1
        now = self._clock()
        added: list[RateOverride] = []
        for position, entry in enumerate(entries):
            try:
                override = RateOverride(
                    version=version,
                    position=position,
                    partner_id=entry.partner_id,
                    product=entry.product,
                    kind=entry.kind,
                    rate_bps=entry.rate_bps,
                    effective_from=entry.effective_from,
                )
                if override.effective_from < now:
                    raise RateTableError("effective_from must not be in the past", "effective_from")
            except RateTableError as error:
                raise RateTableError(str(error), f"entries.{position}.{error.field}") from None
            added.append(override)
        if not await self._repository.add_overrides(added):
            raise RateTableConflictError(f"override version {version} was added concurrently")
        return added


__all__ = ["OverrideEntry", "RateTableConflictError", "RateTableError", "RateTables"]
