"""Worker heartbeats in the service's database: how an API reports its workers (`/status`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


# Gauges a worker raises when a reader would stall: a partition it holds makes no
# progress, or a last stable offset stays behind its high watermark (a transaction
# left open). Keys are `name:topic` or `name:topic:partition`; any value > 0 is raised.
ALARM_GAUGES = frozenset({"partition_stalled", "lso_stuck"})


def alarms(beats: Iterable[Mapping[str, Any]]) -> list[str]:
    """`instance gauge=value` for every alarm gauge above 0 in the given heartbeats."""
    raised = []
    for beat_doc in beats:
        for key, value in (beat_doc.get("gauges") or {}).items():
            if key.partition(":")[0] in ALARM_GAUGES and _positive(value):
                raised.append(f"{beat_doc.get('_id')} {key}={value:g}")
    return sorted(raised)


def summary(beat_doc: Mapping[str, Any]) -> dict[str, Any]:
    """What `/status` shows of one worker: its partitions and gauges (lag among them)."""
    at = beat_doc.get("at")
    return {
        "instance": beat_doc.get("_id"),
        "at": at.isoformat() if isinstance(at, datetime) else None,
        "partitions": list(beat_doc.get("assigned") or []),
        "gauges": dict(beat_doc.get("gauges") or {}),
    }


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
