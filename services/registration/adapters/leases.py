"""A named lease in MongoDB that one API replica holds at a time (the deal-expiry scheduler).

The same document shape and collection as the outbox relay's lease, under
another id: held by `owner` until `expires_at`, taken over once it lapses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.registration.adapters.outbox import LEASES


class MongoLease:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], name: str, *, owner: str) -> None:
        self._collection = db[LEASES]
        self._name = name
        self._owner = owner

    async def hold(self, now: dt.datetime, ttl: dt.timedelta) -> bool:
        try:
            await self._collection.update_one(
                {"_id": self._name, "$or": [{"owner": self._owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self._owner, "expires_at": now + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # another replica holds an unexpired lease
        return True

    async def release(self) -> None:
        await self._collection.delete_one({"_id": self._name, "owner": self._owner})
