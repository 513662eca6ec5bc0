"""The registration API and worker on the real embedded broker and database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from chassis.kafka import make_producer
from services.registration.adapters.mongo import MongoUnitOfWork, ensure_indexes
from services.registration.bootstrap import build_api, utc_now
from services.registration.config import Settings
from services.registration.service_layer.orders import IncomingOrder, OrderApplier

ADMIN_TOKEN = "integration-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_settings(kafka_bootstrap: str, mongo_url: str, db_name: str, **extra: Any) -> Settings:
    return Settings(
        admin_token=ADMIN_TOKEN,
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_url,
        topic_partitions=1,
        **{"REGISTRATION_MONGO_DB": db_name},
        **extra,
    )


@pytest.fixture
def settings(kafka_bootstrap: str, mongo_url: str, mongo_db: Any) -> Settings:
    return make_settings(kafka_bootstrap, mongo_url, mongo_db.name)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    api = build_api(settings, run_relay=False)
    async with api.router.lifespan_context(api):
        yield api


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://registration") as c:
        yield c


async def seed_orders(db: Any, *orders: IncomingOrder) -> None:
    """Apply orders straight through the use case, as the worker would."""
    await ensure_indexes(db)
    applier = OrderApplier(lambda: MongoUnitOfWork(db), utc_now, window_months=36)
    for incoming in orders:
        await applier.apply([incoming])


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    wait_s: float = 20.0,
    settle_s: float = 1.0,
    keep: Any = None,
) -> list[Any]:
    """Committed records of `topic` (optionally filtered), waiting for `expect` of them.

    Reads on for `settle_s` after that, so a duplicate would be seen too.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    got: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while len(got) < expect and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(r for r in records if keep is None or keep(r))
        settle = loop.time() + settle_s
        while loop.time() < settle:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(r for r in records if keep is None or keep(r))
    finally:
        await consumer.stop()
    return got


def decoded(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]
