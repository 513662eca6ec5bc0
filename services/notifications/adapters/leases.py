"""Named leases (MongoDB): one worker instance runs each background task at a time."""

from __future__ import annotations

import datetime as dt

from pymongo.errors import DuplicateKeyError

from services.notifications.adapters.collections import LEASES, Db


class MongoLeases:
    """A named lease one worker instance holds at a time (single sender per database)."""

    def __init__(self, db: Db) -> None:
        self.collection = db[LEASES]

    async def hold(self, name: str, owner: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
        try:
            await self.collection.update_one(
                {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": owner, "expires_at": now + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release(self, name: str, owner: str) -> None:
        await self.collection.delete_one({"_id": name, "owner": owner})
