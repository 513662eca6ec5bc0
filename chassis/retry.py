"""Retries of the broker's and the database's failures: a growing wait, and a count."""

from __future__ import annotations

import logging

from chassis.batch import failure_name, is_infrastructure
from chassis.metrics import WorkerCounters

log = logging.getLogger(__name__)

MAX_RETRY_BACKOFF_S = 30.0
"""Retries back off exponentially from the base wait up to this."""


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
