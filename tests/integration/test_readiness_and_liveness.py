"""Readiness that does not cascade and liveness that does not hang on MongoDB.

An API's `/readyz` asks only for its database; `/status` (and `/readyz?full=1`) is the
whole service: broker, workers holding partitions, their alarms. A worker's liveness
file is touched while its consume loops come round, whether MongoDB answers or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chassis import heartbeat
from chassis.consumer import TransactionalProcessor
from chassis.http import create_app
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound
from chassis.worker import run_worker
from services.registration.config import Settings
from tests.conftest import Names
from tests.integration.test_transactional_processor import ORDERS, order_records

TOKEN = "test-admin-token-123"
NOWHERE = "127.0.0.1:9"  # nothing listens on the discard port


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, title="t", description="d", topics=[])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def api_without_broker(mongo_url: str, mongo_db: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        admin_token=TOKEN,
        mongo_url=mongo_url,
        REGISTRATION_MONGO_DB=mongo_db.name,
        kafka_bootstrap=NOWHERE,
    )
    async for client in _client(settings):
        yield client


@pytest.fixture
async def api(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        admin_token=TOKEN,
        mongo_url=mongo_url,
        REGISTRATION_MONGO_DB=mongo_db.name,
        kafka_bootstrap=kafka_bootstrap,
    )
    async for client in _client(settings):
        yield client


async def _until(what: str, check: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_an_api_is_ready_with_its_database_alone(
    api_without_broker: httpx.AsyncClient,
) -> None:
    # No broker and no worker: the API still answers requests (registration's outbox
    # keeps what it publishes), so it stays in its Service.
    ready = await api_without_broker.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}
    # The whole service is not: that is for operators and `./dev up`.
    for path in ("/status", "/readyz?full=1"):
        full = await api_without_broker.get(path)
        assert full.status_code == 503, path
        checks = full.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["broker"] != "ok"
        assert checks["consumers"] == "no worker has partitions"


async def test_status_is_not_ready_while_a_worker_raises_a_stall_alarm(
    api: httpx.AsyncClient, mongo_db: Any
) -> None:
    async def beat(gauges: dict[str, float]) -> None:
        await heartbeat.beat(
            mongo_db, instance="worker-1", assigned=["t:0", "t:1"], counters=[], gauges=gauges
        )

    async def status_ready() -> bool:
        await beat({"assigned_partitions": 2, "partition_stalled:t:0": 0, "lso_stuck:t": 0})
        return (await api.get("/status")).status_code == 200

    await _until("the broker check of /status", status_ready)
    body = (await api.get("/status")).json()
    assert body["alarms"] == []
    assert body["workers"][0]["partitions"] == ["t:0", "t:1"]

    await beat({"assigned_partitions": 2, "partition_stalled:t:0": 1, "lso_stuck:t": 0})
    stalled = await api.get("/status")
    assert stalled.status_code == 503
    assert stalled.json()["alarms"] == ["worker-1 partition_stalled:t:0=1"]
    assert stalled.json()["checks"]["alarms"] == "1 raised"
    assert (await api.get("/readyz?full=1")).status_code == 503
    assert (await api.get("/readyz")).status_code == 200  # the API itself still serves

    await beat({"assigned_partitions": 2, "partition_stalled:t:0": 0, "lso_stuck:t": 12.0})
    stuck = await api.get("/status")
    assert stuck.status_code == 503
    assert stuck.json()["alarms"] == ["worker-1 lso_stuck:t=12"]

    await beat({"assigned_partitions": 2, "partition_stalled:t:0": 0, "lso_stuck:t": 0})
    assert (await api.get("/status")).status_code == 200


# --- liveness ------------------------------------------------------------------------


def _age(path: Path) -> float:
    return time.time() - path.stat().st_mtime


def _fresh(path: Path, max_age: float = 1.0) -> bool:
    return path.exists() and _age(path) < max_age


async def _run_worker(
    settings: Settings,
    *,
    names: Names,
    kafka_bootstrap: str,
    handler: Any,
    stop: asyncio.Event,
) -> asyncio.Task[None]:
    source = names.topic("source")

    def processors(db: Any, counters: WorkerCounters, me: str) -> list[TransactionalProcessor]:
        return [
            TransactionalProcessor(
                bootstrap=kafka_bootstrap,
                topics=[source],
                schema_of={source: ORDERS},
                group_id=names.group(),
                transactional_id=f"{names.group()}-{me}",
                handler=handler,
                counters=counters,
                poll_timeout_ms=100,
            )
        ]

    await ensure_topics(kafka_bootstrap, [source], partitions=1)
    return asyncio.create_task(
        run_worker(settings, topics=[source], processors=processors, stop=stop)
    )


def _worker_settings(
    tmp_path: Path, kafka_bootstrap: str, mongo_url: str, stall_s: float
) -> Settings:
    return Settings(
        admin_token=TOKEN,
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        worker_heartbeat_file=str(tmp_path / "worker.alive"),
        worker_heartbeat_seconds=0.2,
        worker_loop_stall_seconds=stall_s,
        topic_partitions=1,
    )


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 20)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def test_a_worker_stays_live_while_mongodb_is_down(
    tmp_path: Path, kafka_bootstrap: str, names: Names
) -> None:
    async def handler(batch: list[Inbound]) -> HandlerResult:
        return HandlerResult()

    # The database is not there at all, for far longer than the stall limit: every
    # heartbeat write fails, and the liveness file is still touched.
    settings = _worker_settings(tmp_path, kafka_bootstrap, f"mongodb://{NOWHERE}/", stall_s=2.0)
    beat_file = Path(settings.worker_heartbeat_file)
    stop = asyncio.Event()
    task = await _run_worker(
        settings, names=names, kafka_bootstrap=kafka_bootstrap, handler=handler, stop=stop
    )
    try:

        async def touched() -> bool:
            return _fresh(beat_file)

        await _until("the liveness file", touched, within=60)
        await asyncio.sleep(8.0)  # four stall limits, two failed heartbeat writes
        assert not task.done()
        assert _age(beat_file) < 2.0, f"liveness file {_age(beat_file):.1f}s old"
    finally:
        await _stop(task, stop)


async def test_a_hung_consume_loop_stops_the_liveness_file(
    tmp_path: Path, kafka_bootstrap: str, mongo_url: str, names: Names
) -> None:
    entered = asyncio.Event()

    async def hangs(batch: list[Inbound]) -> HandlerResult:
        entered.set()
        await asyncio.Event().wait()  # a handler awaiting something that never comes
        return HandlerResult()

    settings = _worker_settings(tmp_path, kafka_bootstrap, mongo_url, stall_s=2.0)
    beat_file = Path(settings.worker_heartbeat_file)
    stop = asyncio.Event()
    task = await _run_worker(
        settings, names=names, kafka_bootstrap=kafka_bootstrap, handler=hangs, stop=stop
    )
    try:

        async def touched() -> bool:
            return _fresh(beat_file)

        await _until("the liveness file", touched, within=60)
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(names.topic("source"), order_records()[0], key=b"k")
        finally:
            await producer.stop()
        await asyncio.wait_for(entered.wait(), 30)
        await asyncio.sleep(5.0)  # the stall limit (2 s) and then some
        assert _age(beat_file) > 2.0, "a hung loop kept the liveness file fresh"
    finally:
        await _stop(task, stop)
