"""Work that runs on one replica at a time: the lease port, and the loop that leads under it.

`chassis.lease.MongoLease` is the implementation. This module imports no driver,
so the service layers that run such loops (notifications' dispatcher, fan-out and
reminder scheduler, registration's tier evaluation and deal expiry, commissions'
relay) depend on the port only, and their tests pass a fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[bool]]
"""One unit of work; True when it did something (the loop goes on at once)."""


class Lease(Protocol):
    """A named lease this process holds at most; see chassis.lease for its semantics."""

    @property
    def name(self) -> str: ...

    @property
    def ttl(self) -> dt.timedelta: ...

    async def acquire(self) -> bool:
        """Take or renew it for its ttl; False while another holder's has not lapsed."""
        ...

    async def renew(self) -> bool:
        """Extend it while still ours; False once another holder took it."""
        ...

    async def release(self) -> None: ...


async def run_as_leader(
    lease: Lease,
    step: Step,
    *,
    stop: asyncio.Event,
    idle_seconds: float,
    on_error: Callable[[], None] = lambda: None,
    error_message: str = "background step failed",
) -> None:
    """Run `step` while holding `lease`, until `stop`; idle when a step did nothing.

    The lease is renewed every third of its ttl while a step runs, so a long step
    keeps it. A step is never interrupted by `stop`: it finishes (so what it did
    gets its mark) and the loop returns after it. A step that raises is logged,
    `on_error` is called, and the loop idles before the next attempt. The lease
    is released on the way out, so another replica takes over at once.
    """

    async def keep_alive() -> None:
        while True:
            await asyncio.sleep(lease.ttl.total_seconds() / 3)
            with contextlib.suppress(Exception):
                await lease.renew()

    try:
        while not stop.is_set():
            busy = False
            try:
                if await lease.acquire():
                    renewer = asyncio.create_task(keep_alive())
                    try:
                        busy = await step()
                    finally:
                        renewer.cancel()
            except Exception:
                log.exception(error_message, extra={"task": lease.name})
                on_error()
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(lease.release(), 2)
