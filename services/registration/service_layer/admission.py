"""How many units of work of one API process use the database at once, first come first served.

The embedded database runs a thread per connection and serves them unfairly:
with 50 requests in flight its throughput drops below what it manages with 10,
and single statements wait seconds behind others (p99 in seconds, outliers
at the client's 30 s timeout). Capping the units of work in flight keeps the
database at the concurrency it serves best and turns its unfair scheduling
into a FIFO queue here, so a request waits roughly (queue ahead / throughput).
A request that cannot start within `max_wait_s` answers 503 with Retry-After
instead of hanging: nothing has been read or written for it yet.
"""

from __future__ import annotations

import asyncio
import collections
import math

from services.registration.service_layer.errors import UseCaseError


def overloaded(retry_after_s: float) -> UseCaseError:
    return UseCaseError(
        "unavailable",
        "overloaded",
        "the service is busy; try again",
        retry_after_s=retry_after_s,
    )


class Admission:
    """A FIFO limit on concurrent holders, with a bounded wait for a place."""

    def __init__(self, limit: int, *, max_wait_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._free = limit
        self._max_wait_s = max_wait_s
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        """Take a place, or raise `overloaded` after `max_wait_s` in the queue."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._max_wait_s):
                await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                # Granted just as the wait ended: pass the place on.
                self.release()
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            if isinstance(error, TimeoutError):
                raise overloaded(max(1.0, math.ceil(self._max_wait_s / 4))) from None
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
