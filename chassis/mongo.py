"""MongoDB client construction (PyMongo async API) from settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from chassis.settings import ServiceSettings

Prepare = Callable[[AsyncDatabase[dict[str, Any]]], Awaitable[None]]
"""A process's one-off preparation of its database: indexes, collections, seed documents.

Idempotent and safe for racing processes; run before the process writes anything
(`chassis.worker.run_worker`, `chassis.http.create_app`).
"""


def connect(settings: ServiceSettings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        appname=f"channelkeep-{settings.service_name}",
    )


def database(
    client: AsyncMongoClient[dict[str, Any]], settings: ServiceSettings
) -> AsyncDatabase[dict[str, Any]]:
    return client[settings.mongo_db]


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> None:
    await client.admin.command("ping")
