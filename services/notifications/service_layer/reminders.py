"""The renewal-reminder pass as of one day: the daily scheduler and the admin API both run it.

Walks the entitlements due for each offset with an indexed query, one contact
(and one partner) at a time, and plans one reminder per (contact, partner-of-
record scope, offset) and one opportunity per partner. Each scope follows its
PoR's renewal mode in force at `as_of` (CONTRACT 6.1), read once per partner
per pass. Planning is idempotent (deterministic notification ids), so running
a day twice plans nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from services.notifications.domain.model import Entitlement, PlannedDelivery, RenewalMode
from services.notifications.domain.rules import (
    MAX_LISTED,
    OPPORTUNITY_OFFSET,
    SECOND_OPPORTUNITY_OFFSET,
    due_term_ends,
    opportunity_offsets,
    partner_channels,
    plan_reminders,
    plan_renewal_opportunities,
    renewal_mode_in_force,
)
from services.notifications.service_layer.ports import (
    Clock,
    Counters,
    Deliveries,
    EntitlementSource,
    Projections,
    Webhooks,
)


class ReminderRuns(Protocol):
    async def record(self, as_of: dt.date, planned: int, now: dt.datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class PassSummary:
    as_of: dt.date
    considered: int
    planned: int
    new: int


def end_of_day(day: dt.date) -> dt.datetime:
    """`as_of=YYYY-MM-DD` is the end of that day, UTC (CONTRACT 1)."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


class ReminderPass:
    def __init__(
        self,
        *,
        source: EntitlementSource,
        partners: Projections,
        deliveries: Deliveries,
        webhooks: Webhooks,
        runs: ReminderRuns,
        clock: Clock,
        counters: Counters,
        flush_every: int = 500,
    ) -> None:
        self.source = source
        self.partners = partners
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.runs = runs
        self.clock = clock
        self.counters = counters
        self.flush_every = flush_every

    async def run(self, as_of: dt.date) -> PassSummary:
        occurred_at = end_of_day(as_of)
        buffer: list[PlannedDelivery] = []
        totals = {"considered": 0, "planned": 0, "new": 0}
        # Each partner's mode at `as_of`, read once per pass: memory and reads grow with
        # the partners due, not with the entitlements.
        modes: dict[str, RenewalMode] = {}

        async def modes_of(group: list[Entitlement]) -> dict[str, RenewalMode]:
            wanted = {e.partner_of_record for e in group if e.partner_of_record} - modes.keys()
            if wanted:
                found = await self.partners.partners(wanted)
                for partner_id in wanted:
                    modes[partner_id] = renewal_mode_in_force(found.get(partner_id), occurred_at)
            return modes

        async def flush(force: bool = False) -> None:
            if buffer and (force or len(buffer) >= self.flush_every):
                totals["planned"] += len(buffer)
                totals["new"] += await self.deliveries.plan(buffer, self.clock.now())
                buffer.clear()

        for offset, term_end in due_term_ends(as_of).items():
            # Partners whose customers this offset reminds nobody but who hear themselves.
            second_opportunity: set[str] = set()
            async for group in _runs(self.source.due_on(term_end), _contact, None):
                totals["considered"] += len(group)
                in_force = await modes_of(group)
                buffer.extend(plan_reminders(group, offset, as_of, occurred_at, in_force))
                if offset == SECOND_OPPORTUNITY_OFFSET:
                    second_opportunity.update(
                        p
                        for p in {e.partner_of_record for e in group if e.partner_of_record}
                        if offset in opportunity_offsets(in_force[p])
                    )
                await flush()
            if offset == OPPORTUNITY_OFFSET:
                stream = self.source.opportunities_on(term_end)
            elif second_opportunity:
                stream = self.source.opportunities_on(term_end, sorted(second_opportunity))
            else:
                continue
            async for group in _runs(stream, _partner_of_record, MAX_LISTED):
                partner_id = group[0].partner_of_record
                if partner_id is None:
                    continue
                mode = (await modes_of(group))[partner_id]
                if offset not in opportunity_offsets(mode):
                    continue
                configured = await self.webhooks.of([partner_id])
                buffer.extend(
                    plan_renewal_opportunities(
                        partner_id,
                        group,
                        as_of,
                        occurred_at,
                        partner_channels(partner_id in configured),
                        offset=offset,
                        renewal_mode=mode,
                    )
                )
                await flush()
        await flush(force=True)
        await self.runs.record(as_of, totals["new"], self.clock.now())
        self.counters.inc("reminder_passes_total")
        self.counters.inc("reminders_planned_total", totals["new"])
        return PassSummary(as_of=as_of, **totals)


def _contact(entitlement: Entitlement) -> str:
    return entitlement.customer.contact_id


def _partner_of_record(entitlement: Entitlement) -> str:
    return entitlement.partner_of_record or ""


async def _runs(
    stream: AsyncIterator[Entitlement],
    key: Callable[[Entitlement], str],
    max_size: int | None,
) -> AsyncIterator[list[Entitlement]]:
    """Consecutive entitlements with the same key (at most `max_size` per run): bounded memory."""
    group: list[Entitlement] = []
    current: str | None = None
    async for entitlement in stream:
        k = key(entitlement)
        if group and (k != current or (max_size is not None and len(group) >= max_size)):
            yield group
            group = []
        current = k
        group.append(entitlement)
    if group:
        yield group
