"""When to try a failed delivery again: exponential backoff with jitter, then give up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(self, attempts: int, jitter: float) -> dt.timedelta:
        """Delay before attempt `attempts + 1`; `jitter` in [0, 1) picks within the upper half.

        Attempt 1 failed: about base; 2: 2x base; ... capped. "Equal jitter" keeps
        retries of many deliveries that failed together from arriving together.
        """
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        exponent = max(attempts - 1, 0)
        full = min(self.cap_seconds, self.base_seconds * (2.0**exponent))
        return dt.timedelta(seconds=full / 2 + (full / 2) * jitter)
