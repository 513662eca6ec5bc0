"""What a process needs before it works, retried until ready (chassis.retry, chassis.http)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chassis import http, retry
from chassis.http import create_app
from chassis.retry import retry_until_ready
from services.registration.config import Settings


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_WAIT_S", 0.01)
    monkeypatch.setattr(retry, "MAX_WAIT_S", 0.02)


async def test_it_retries_until_the_attempt_succeeds() -> None:
    attempts: list[int] = []

    async def attempt() -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise ConnectionError("the database is still starting")

    assert await retry_until_ready("indexes", attempt) is True
    assert len(attempts) == 3


async def test_a_stop_ends_it_even_mid_attempt() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()  # a consumer-group join that never ends
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.create_task(retry_until_ready("joining", hangs, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(waiting, 1) is False
    assert cancelled.is_set()


async def test_a_stop_set_before_it_starts_tries_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    tried: list[bool] = []

    async def attempt() -> None:
        tried.append(True)

    assert await retry_until_ready("anything", attempt, stop=stop) is False
    assert tried == []


async def test_cancelling_it_cancels_the_attempt() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.create_task(retry_until_ready("joining", hangs))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled.is_set()


def test_an_api_serves_while_its_preparation_still_waits_for_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "PREPARE_WAIT_S", 0.1)
    settings = Settings(
        admin_token="test-admin-token-123",
        mongo_url="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
        kafka_bootstrap="127.0.0.1:9",
    )
    order: list[str] = []

    async def prepare(db: Any) -> None:
        order.append("prepare")
        raise ConnectionError("no database yet")

    async def startup(_: Any) -> None:
        order.append("startup")

    app = create_app(
        settings, title="t", description="d", topics=[], on_startup=startup, prepare=prepare
    )
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert order[0] == "prepare"  # tried before the service's own start-up
    assert "startup" in order
