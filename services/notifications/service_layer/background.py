"""The worker's background loops: dispatcher, advisory fan-out, daily reminder scheduler.

Each loop runs on one worker instance at a time (a lease in the database, kept
alive while a step runs), so scaling the worker out never sends a message twice
in parallel; another instance takes over when the holder stops renewing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Protocol

from chassis import leadership
from chassis.leadership import Lease, Step
from services.notifications.service_layer.ports import Clock, Counters
from services.notifications.service_layer.reminders import ReminderPass
from shared.calendar import days_to_catch_up

log = logging.getLogger(__name__)


class SchedulerState(Protocol):
    async def last_scheduled(self) -> dt.date | None: ...

    async def mark_scheduled(self, as_of: dt.date, now: dt.datetime) -> None: ...


async def run_as_leader(
    lease: Lease,
    step: Step,
    *,
    counters: Counters,
    stop: asyncio.Event,
    idle_seconds: float,
) -> None:
    """`chassis.leadership.run_as_leader`, counting failed steps per loop."""
    await leadership.run_as_leader(
        lease,
        step,
        stop=stop,
        idle_seconds=idle_seconds,
        on_error=lambda: counters.inc("background_errors_total", task=lease.name),
    )


class DailyReminders:
    """Runs the reminder pass once per day after `run_hour` UTC, catching up missed days."""

    def __init__(
        self,
        *,
        reminder_pass: ReminderPass,
        state: SchedulerState,
        clock: Clock,
        run_hour_utc: int,
        catch_up_days: int,
    ) -> None:
        self.reminder_pass = reminder_pass
        self.state = state
        self.clock = clock
        self.run_hour_utc = run_hour_utc
        self.catch_up_days = catch_up_days

    def days_due(self, now: dt.datetime, last: dt.date | None) -> list[dt.date]:
        today = now.astimezone(dt.UTC).date()
        latest = today if now.astimezone(dt.UTC).hour >= self.run_hour_utc else None
        if latest is None:
            latest = today - dt.timedelta(days=1)
            if last is None:
                return []  # first start ever, before today's hour: wait for it
        if last is None:
            return [latest]
        return days_to_catch_up(last, latest, self.catch_up_days)

    async def step(self) -> bool:
        days = self.days_due(self.clock.now(), await self.state.last_scheduled())
        for day in days:
            summary = await self.reminder_pass.run(day)
            await self.state.mark_scheduled(day, self.clock.now())
            log.info(
                "reminder pass done",
                extra={"as_of": day.isoformat(), "planned": summary.planned, "new": summary.new},
            )
        # Nothing more to do until tomorrow: report idle so the loop sleeps.
        return False
