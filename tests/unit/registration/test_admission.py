"""The API's FIFO limit on units of work in flight, with a bounded wait (503)."""

from __future__ import annotations

import asyncio

import pytest

from services.registration.service_layer.admission import Admission
from services.registration.service_layer.errors import UseCaseError


async def test_places_are_granted_first_come_first_served() -> None:
    admission = Admission(2, max_wait_s=5)
    await admission.acquire()
    await admission.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await admission.acquire()
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(4)]
    await asyncio.sleep(0)
    assert order == []
    for _ in range(4):
        admission.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]


async def test_a_wait_beyond_the_bound_is_a_503_with_retry_after() -> None:
    admission = Admission(1, max_wait_s=0.05)
    await admission.acquire()
    with pytest.raises(UseCaseError) as error:
        await admission.acquire()
    assert (error.value.kind, error.value.code) == ("unavailable", "overloaded")
    assert error.value.retry_after_s is not None and error.value.retry_after_s >= 1
    # The one that gave up holds nothing: the next release goes to a new caller.
    admission.release()
    await asyncio.wait_for(admission.acquire(), 1)


async def test_a_cancelled_waiter_leaves_no_place_behind() -> None:
    admission = Admission(1, max_wait_s=5)
    await admission.acquire()
    waiting = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    admission.release()
    await asyncio.wait_for(admission.acquire(), 1)
