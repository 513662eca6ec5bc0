"""Ports of the registration service layer that no single use case owns."""

from __future__ import annotations

from typing import Protocol


class Counters(Protocol):
    """The worker's metrics (`chassis.metrics.WorkerCounters` in production)."""

    def inc(self, name: str, value: int = 1, **labels: str) -> None: ...
