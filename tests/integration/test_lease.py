"""chassis.lease on the embedded database: the unit scenarios, and two replicas racing."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from chassis.lease import MongoLease
from tests.unit.chassis.test_lease import SCENARIOS, TTL, FakeClock


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_lease_on_the_embedded_database(scenario: Any, mongo_db: Any) -> None:
    await scenario(mongo_db)


async def test_replicas_racing_for_a_free_lease_get_one_holder(mongo_db: Any) -> None:
    clock = FakeClock()
    replicas = [MongoLease(mongo_db, "race", owner=f"r{n}", ttl=TTL, clock=clock) for n in range(6)]
    won = await asyncio.gather(*(lease.acquire() for lease in replicas))
    assert sum(won) == 1
    clock.now += TTL + dt.timedelta(seconds=1)
    won = await asyncio.gather(*(lease.acquire() for lease in replicas))
    assert sum(won) == 1
    # The lapsed holder renewing (epoch 1) or another taking over (epoch 2): one of them.
    assert len([lease for lease in replicas if lease.epoch is not None]) == 1
