"""Retries of the broker's and the database's failures: a growing wait, and a count."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chassis.batch import failure_name, is_infrastructure
from chassis.metrics import WorkerCounters

log = logging.getLogger(__name__)

MAX_RETRY_BACKOFF_S = 30.0
"""Retries back off exponentially from the base wait up to this."""

FIRST_WAIT_S = 0.5
MAX_WAIT_S = 10.0
"""`retry_until_ready` waits from the first to the second, doubling after each failure."""


async def retry_until_ready(
    what: str,
    attempt: Callable[[], Awaitable[object]],
    *,
    stop: asyncio.Event | None = None,
) -> bool:
    """Runs `attempt` until it returns, waiting longer after each failure (0.5 s to 10 s).

    For what a process needs before it can work: topics, indexes, a producer's first
    connection, while the broker or the database may still be starting. True once it
    succeeded; False as soon as `stop` is set, even mid-attempt (a consumer's start may
    wait a long time for a group join, and a SIGTERM must not wait for it). Without
    `stop` it only ends by success or by cancellation.
    """
    stop = stop or asyncio.Event()
    delay = FIRST_WAIT_S
    while not stop.is_set():
        attempt_task = asyncio.ensure_future(attempt())
        stop_task = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {attempt_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop_task.cancel()
            if not attempt_task.done():
                attempt_task.cancel()
                with contextlib.suppress(BaseException):
                    await attempt_task
        if attempt_task not in done:
            return False
        error = attempt_task.exception()
        if error is None:
            return True
        log.warning(f"{what} failed; retrying", extra={"error": type(error).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, MAX_WAIT_S)
    return False


class Backoff:
    """The wait before the next retry: doubles with each failure in a row, up to a bound."""

    def __init__(self, counters: WorkerCounters, base_s: float, group: str) -> None:
        self._counters = counters
        self._base_s = base_s
        self._group = group
        self._in_a_row = 0

    def failed(self, error: BaseException) -> float:
        """Counts and logs a failed batch; the seconds to wait before its retry.

        Only the broker's and the database's errors get here from a handler (the input's
        are isolated and dead-lettered), and a commit's (`infra_retries_total`).
        """
        infrastructure = is_infrastructure(error)
        log.warning(
            "batch failed; rewinding to retry",
            extra={
                "group": self._group,
                "error": failure_name(error),
                "infrastructure": infrastructure,
            },
            exc_info=not infrastructure,
        )
        self._counters.inc("batch_retries_total")
        if infrastructure:
            self._counters.inc("infra_retries_total", error=type(error).__name__)
        self._in_a_row += 1
        exponent = min(self._in_a_row - 1, 16)
        return float(min(self._base_s * 2**exponent, MAX_RETRY_BACKOFF_S))

    def succeeded(self) -> None:
        self._in_a_row = 0
