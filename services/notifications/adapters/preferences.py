"""Unsubscribed contacts (MongoDB)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from services.notifications.adapters.collections import UNSUBSCRIBES, Db


class MongoPreferences:
    def __init__(self, db: Db) -> None:
        self.collection = db[UNSUBSCRIBES]

    async def unsubscribe(self, contact_id: str, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": contact_id}, {"$setOnInsert": {"at": now}}, upsert=True
        )

    async def unsubscribed(self, contact_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(contact_ids))
        if not wanted:
            return set()
        return {doc["_id"] async for doc in self.collection.find({"_id": {"$in": wanted}})}
