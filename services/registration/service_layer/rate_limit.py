"""A per-client token bucket for the public seller-code lookup.

In-process: each API replica limits on its own, so N replicas allow up to N
times the rate (documented in the README); enough to make guessing codes slow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
        period_s: float = 60.0,
    ) -> None:
        # `per_minute` tokens per `period_s` (a minute unless a limit is per hour).
        self._capacity = float(per_minute)
        self._rate = per_minute / period_s  # tokens per second
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, client: str) -> float | None:
        """Take a token: None when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._remember(client, (tokens - 1.0, now))
            return None
        self._remember(client, (tokens, now))
        return (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

    def _remember(self, client: str, state: tuple[float, float]) -> None:
        if client not in self._buckets and len(self._buckets) >= self._max_clients:
            # Forget the clients whose buckets have refilled: they lose nothing.
            now = self._clock()
            self._buckets = {
                c: (t, last)
                for c, (t, last) in self._buckets.items()
                if t + (now - last) * self._rate < self._capacity
            }
        self._buckets[client] = state
