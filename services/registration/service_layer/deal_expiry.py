"""The deal-expiry scheduler (CONTRACT 6.3): the expiry pass, run as of now, periodically.

It runs in the API process (where registration's outbox relay runs; the worker
only consumes orders), on one replica at a time (a lease). The pass is
idempotent and expires a deal at the end of its protection whenever it runs,
so a missed run is caught up by the next one and two replicas running it at
once would change nothing twice. `POST /v1/admin/deals/expire?as_of=` runs the
same pass as of the end of a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from chassis.leadership import Lease
from services.registration.service_layer.deals import DealService
from services.registration.service_layer.unit_of_work import Clock

log = logging.getLogger(__name__)


def lease_ttl(interval_s: float) -> dt.timedelta:
    """The lease outlives one missed run, so a holder that runs on time keeps it."""
    return dt.timedelta(seconds=interval_s * 1.5)


async def expiry_step(deals: DealService, lease: Lease, clock: Clock) -> int:
    """One run: expire what is due as of now if this replica holds the lease."""
    if not await lease.acquire():
        return 0
    summary = await deals.expire(clock())
    return len(summary.expired)


async def run_deal_expiry(
    deals: DealService,
    lease: Lease,
    clock: Clock,
    *,
    interval_s: float,
    first_run_after_s: float = 30.0,
) -> None:
    """Until cancelled: wait, run a step, repeat every `interval_s`; errors are logged.

    The lease's ttl is `lease_ttl(interval_s)`.
    """
    try:
        await asyncio.sleep(min(first_run_after_s, interval_s))
        while True:
            try:
                await expiry_step(deals, lease, clock)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away: the next run catches up
                log.warning("deal expiry failed", extra={"error": type(error).__name__})
            await asyncio.sleep(interval_s)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lease.release(), 2)
