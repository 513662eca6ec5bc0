"""Worker heartbeats in the service's database: how the API knows its consumers are assigned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "worker_heartbeats"


async def beat(
    db: AsyncDatabase[dict[str, Any]],
    *,
    instance: str,
    assigned: list[str],
    counters: list[dict[str, Any]],
    gauges: dict[str, float],
    histograms: dict[str, dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> None:
    await db[COLLECTION].update_one(
        {"_id": instance},
        {
            "$set": {
                "at": now or datetime.now(UTC),
                "assigned": assigned,
                "counters": counters,
                "gauges": gauges,
                "histograms": histograms or {},
            }
        },
        upsert=True,
    )


async def recent(
    db: AsyncDatabase[dict[str, Any]], max_age: timedelta, now: datetime | None = None
) -> list[dict[str, Any]]:
    since = (now or datetime.now(UTC)) - max_age
    return [doc async for doc in db[COLLECTION].find({"at": {"$gte": since}})]


async def forget(db: AsyncDatabase[dict[str, Any]], instance: str) -> None:
    """A worker that stops cleanly says so, so readiness does not wait for it to age out."""
    await db[COLLECTION].delete_one({"_id": instance})
