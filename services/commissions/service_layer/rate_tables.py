"""Rate tables: list the versions, add one (never edit one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from services.commissions.domain.rates import RateBook, RateTable, RateTableError
from services.commissions.service_layer.ports import Clock, RateTableRepository
from shared.events import LineKind, PartnerTier


class RateTableConflictError(RuntimeError):
    """Another version was added at the same time; the caller may retry."""


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


__all__ = ["RateTableConflictError", "RateTableError", "RateTables"]
