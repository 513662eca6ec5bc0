"""Resumable jobs (MongoDB): the advisory and notice fan-outs, the reminder runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.notifications.adapters.collections import ADVISORY_JOBS, REMINDER_RUNS, Db, Doc


class MongoAdvisoryJobs:
    """One job per advisory or product notice: where its fan-out stands, so a restart resumes it."""

    def __init__(self, db: Db) -> None:
        self.collection = db[ADVISORY_JOBS]

    async def open(
        self,
        advisory: Mapping[str, Any],
        occurred_at: dt.datetime,
        *,
        job_id: str | None = None,
        kind: str = "advisory",
    ) -> str:
        """'opened', 'duplicate' (same advisory again) or 'conflict' (same id, other content).

        A product notice's job has `kind` "notice" and the id `notice/<notice_id>`
        (`model.notice_key`); its `advisory` field holds the notice.
        """
        advisory_id = job_id or advisory["advisory_id"]
        try:
            await self.collection.insert_one(
                {
                    "_id": advisory_id,
                    "kind": kind,
                    "advisory": dict(advisory),
                    "occurred_at": occurred_at,
                    "phase": "customers",
                    "contact_cursor": "",
                    "partner_cursor": "",
                    "planned": 0,
                    "contacts": 0,
                    "entitlements": 0,
                    "total": None,
                    "created_at": occurred_at,
                    "finished_at": None,
                }
            )
        except DuplicateKeyError:
            stored = await self.collection.find_one({"_id": advisory_id})
            same = stored is not None and stored.get("advisory") == dict(advisory)
            return "duplicate" if same else "conflict"
        return "opened"

    async def next_open(self) -> Doc | None:
        return await self.collection.find_one(
            {"phase": {"$ne": "done"}}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
        )

    async def update(self, advisory_id: str, fields: Doc, increments: Doc | None = None) -> None:
        change: Doc = {"$set": fields}
        if increments:
            change["$inc"] = increments
        await self.collection.update_one({"_id": advisory_id}, change)

    async def advisories(self, advisory_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        wanted = sorted(set(advisory_ids))
        if not wanted:
            return {}
        return {
            doc["_id"]: doc["advisory"]
            async for doc in self.collection.find({"_id": {"$in": wanted}}, {"advisory": 1})
        }

    async def get(self, advisory_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": advisory_id})


class MongoReminderRuns:
    def __init__(self, db: Db) -> None:
        self.collection = db[REMINDER_RUNS]

    async def record(self, as_of: dt.date, planned: int, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": as_of.isoformat()},
            {"$set": {"last_run_at": now}, "$inc": {"runs": 1, "planned": planned}},
            upsert=True,
        )

    async def last_scheduled(self) -> dt.date | None:
        doc = await self.collection.find_one({"_id": "scheduler"})
        return dt.date.fromisoformat(doc["last_as_of"]) if doc else None

    async def mark_scheduled(self, as_of: dt.date, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": "scheduler"},
            {"$set": {"last_as_of": as_of.isoformat(), "at": now}},
            upsert=True,
        )
