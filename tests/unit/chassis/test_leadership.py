"""chassis.leadership.run_as_leader: one leader at a time, renewal, errors, release on stop."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from chassis.leadership import Step, run_as_leader

pytestmark = pytest.mark.unit


class Shared:
    holder: str | None = None


class FakeLease:
    """One holder at a time among the leases sharing `shared`, like chassis.lease."""

    name = "job"

    def __init__(self, shared: Shared, owner: str, ttl_s: float = 30.0) -> None:
        self.shared, self.owner, self.ttl = shared, owner, dt.timedelta(seconds=ttl_s)
        self.renewals = 0

    async def acquire(self) -> bool:
        if self.shared.holder in (None, self.owner):
            self.shared.holder = self.owner
            return True
        return False

    async def renew(self) -> bool:
        self.renewals += 1
        return self.shared.holder == self.owner

    async def release(self) -> None:
        if self.shared.holder == self.owner:
            self.shared.holder = None


async def test_one_replica_leads_and_releases_on_stop() -> None:
    shared, stop, steps = Shared(), asyncio.Event(), []

    def step_of(owner: str) -> Step:
        async def step() -> bool:
            steps.append(owner)
            return False

        return step

    replicas = [
        asyncio.create_task(
            run_as_leader(FakeLease(shared, o), step_of(o), stop=stop, idle_seconds=0.01)
        )
        for o in ("a", "b")
    ]
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*replicas)
    assert len(set(steps)) == 1 and len(steps) > 1
    assert shared.holder is None


async def test_a_long_step_renews_and_a_failing_step_is_reported() -> None:
    shared, stop, errors = Shared(), asyncio.Event(), []
    lease = FakeLease(shared, "a", ttl_s=0.03)
    calls = 0

    async def step() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.1)  # outlasts the ttl: renewed meanwhile
            return True
        stop.set()
        raise RuntimeError("boom")

    await run_as_leader(
        lease, step, stop=stop, idle_seconds=0.01, on_error=lambda: errors.append(1)
    )
    assert lease.renewals >= 2 and errors == [1] and shared.holder is None
