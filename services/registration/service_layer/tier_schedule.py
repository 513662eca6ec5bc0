"""The daily tier evaluation (CONTRACT 6.4), run in the registration worker under a lease.

Like notifications' reminder pass: once a day after `run_hour_utc`, for the day
before the run (a finished day, so its orders are in), catching up missed days.
Only the holder of the lease evaluates, so two worker replicas never run a pass
side by side; the evaluation is idempotent per `as_of` anyway, so a takeover
mid-pass repeats nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Protocol

from chassis.leadership import Lease, run_as_leader
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.tiers import TierService
from services.registration.service_layer.unit_of_work import Clock
from shared.calendar import days_to_catch_up

log = logging.getLogger(__name__)

LEASE = "tier-evaluation"
LEASE_TTL = dt.timedelta(seconds=300)


class LastEvaluation(Protocol):
    async def last_evaluation(self) -> dt.date | None: ...


class DailyTierEvaluation:
    def __init__(
        self,
        tiers: TierService,
        state: LastEvaluation,
        clock: Clock,
        *,
        run_hour_utc: int,
        catch_up_days: int,
    ) -> None:
        self._tiers = tiers
        self._state = state
        self._clock = clock
        self._run_hour_utc = run_hour_utc
        self._catch_up_days = catch_up_days

    def days_due(self, now: dt.datetime, last: dt.date | None) -> list[dt.date]:
        """The as_of days to evaluate now: finished days since `last`, at most the catch-up."""
        now = now.astimezone(dt.UTC)
        latest = now.date() - dt.timedelta(days=1)
        if now.hour < self._run_hour_utc:
            latest -= dt.timedelta(days=1)
        if last is None:
            return [latest]
        return days_to_catch_up(last, latest, self._catch_up_days)

    async def step(self) -> int:
        """Evaluate the days due; the number evaluated."""
        done = 0
        for day in self.days_due(self._clock(), await self._state.last_evaluation()):
            try:
                result = await self._tiers.evaluate(day, apply=True)
            except UseCaseError as error:
                if error.code == "no_tier_rules":
                    return done  # no programme set up yet: nothing to evaluate
                raise
            done += 1
            log.info(
                "daily tier evaluation done",
                extra={
                    "as_of": day.isoformat(),
                    "promotions": result.promotions,
                    "demotions": result.demotions,
                },
            )
        return done


async def run_daily(
    schedule: DailyTierEvaluation,
    lease: Lease,
    *,
    stop: asyncio.Event,
    idle_seconds: float = 60.0,
) -> None:
    """Run `schedule.step` while holding the lease, every `idle_seconds`, until `stop`.

    The lease is renewed while a pass runs: a pass over many partners may outlast it.
    """

    async def step() -> bool:
        await schedule.step()
        return False  # done until the next day: idle

    await run_as_leader(
        lease,
        step,
        stop=stop,
        idle_seconds=idle_seconds,
        error_message="daily tier evaluation failed; next attempt in a minute",
    )
