"""Partners' webhook URLs and sealed signing secrets (MongoDB)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable

from services.notifications.adapters.collections import WEBHOOKS, Db
from services.notifications.service_layer.ports import WebhookConfig


class MongoWebhooks:
    def __init__(self, db: Db) -> None:
        self.collection = db[WEBHOOKS]

    async def set(self, config: WebhookConfig, now: dt.datetime) -> None:
        await self.collection.update_one(
            {"_id": config.partner_id},
            {"$set": {"url": config.url, "secret": config.secret_ciphertext, "updated_at": now}},
            upsert=True,
        )

    async def of(self, partner_ids: Iterable[str]) -> dict[str, WebhookConfig]:
        wanted = sorted(set(partner_ids))
        if not wanted:
            return {}
        return {
            doc["_id"]: WebhookConfig(doc["_id"], doc["url"], doc["secret"])
            async for doc in self.collection.find({"_id": {"$in": wanted}})
        }

    async def all(self) -> AsyncIterator[WebhookConfig]:
        async for doc in self.collection.find({}).sort("_id", 1):
            yield WebhookConfig(doc["_id"], doc["url"], doc["secret"])

    async def replace_secret(self, partner_id: str, old: str, new: str) -> bool:
        # Only over the ciphertext read: a partner who set a new secret meanwhile keeps it.
        result = await self.collection.update_one(
            {"_id": partner_id, "secret": old}, {"$set": {"secret": new}}
        )
        return result.modified_count == 1
