"""What one dispatch wave's settle costs on the database, today's way and the proposed one.

Today (services/notifications/adapters/deliveries.py, `MongoDeliveries.settle`) a wave of
sent messages is marked with one `update_many` by id on the delivery records: each
record is large (facts, entitlements) and indexed by status and next attempt, and the
embedded database rewrites each one. The proposal (docs/RELIABILITY.md, scaling) keeps
the due queue apart from the records: a small queue entry per pending message, deleted
when the message is settled, and the outcome appended as its own small record.

    .venv/bin/python bench/_outcome_writes.py [--records 10000] [--wave 64] [--waves 5]

Not run by `./dev bench`: a measurement for the proposal, not a stage figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, UpdateMany

from devkit.embedded import EmbeddedSuite
from devkit.processes import free_port
from services.notifications.adapters.collections import DELIVERIES
from services.notifications.adapters.indexes import ensure_indexes


async def measure(url: str, records: int, wave: int, waves: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    db = client["outcome_writes"]
    await ensure_indexes(db)
    deliveries, queue, outcomes = db[DELIVERIES], db["probe_due"], db["probe_outcomes"]
    await queue.create_index([("next_attempt_at", 1)])
    now = dt.datetime.now(dt.UTC)
    for first in range(0, records, 1000):
        numbers = range(first, min(records, first + 1000))
        await deliveries.insert_many(
            [
                {
                    "_id": f"d{i}",
                    "status": "pending",
                    "next_attempt_at": now,
                    "type": "security_advisory",
                    "license_keys": [f"LK-{i}"],
                    "facts": {"summary": "An attacker on the network can run code. " * 10},
                    "attempts": 0,
                }
                for i in numbers
            ],
            ordered=False,
        )
        await queue.insert_many([{"_id": f"d{i}", "next_attempt_at": now} for i in numbers])

    async def mark(ids: list[str]) -> None:
        fields = {"status": "sent", "attempts": 1, "finished_at": now}
        update = UpdateMany({"_id": {"$in": ids}, "status": "pending"}, {"$set": fields})
        await deliveries.bulk_write([update], ordered=False)

    async def append(ids: list[str]) -> None:
        await outcomes.insert_many(
            [{"_id": i, "status": "sent", "attempts": 1, "at": now} for i in ids], ordered=False
        )
        await queue.delete_many({"_id": {"$in": ids}})

    async def append_only(ids: list[str]) -> None:
        await outcomes.insert_many(
            [{"_id": f"o{i}", "status": "sent", "attempts": 1, "at": now} for i in ids],
            ordered=False,
        )

    ways: list[tuple[str, Callable[[list[str]], Awaitable[None]]]] = [
        ("update_many on the records (today)", mark),
        ("append outcomes + delete queue entries", append),
        ("append outcomes only (a lease epoch, no queue)", append_only),
    ]
    for offset, (label, settle) in enumerate(ways):
        started = time.perf_counter()
        for w in range(waves):
            base = (offset * waves + w) * wave
            await settle([f"d{base + k}" for k in range(wave)])
        ms = 1000 * (time.perf_counter() - started) / waves
        print(
            f"{records:,} records, waves of {wave}: {label}: {ms:.1f} ms a wave,"
            f" {ms / wave:.2f} ms a message"
        )
    await client.drop_database(db.name)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=64)
    parser.add_argument("--waves", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMBEDDED_KAFKA_PORT": str(free_port()), "EMBEDDED_MONGO_PORT": str(free_port())}
        with EmbeddedSuite(data_dir=Path(tmp), env=env, with_smtp=False) as suite:
            asyncio.run(measure(suite.mongo_url, args.records, args.wave, args.waves))


if __name__ == "__main__":
    main()
