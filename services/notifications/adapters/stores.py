"""The notifications service's MongoDB adapters over one database, and the reminder pass
built on them: what the worker's jobs and the API's routes share (one place, so that
neither the routes nor the bootstrap defines it for the other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.notifications.adapters.mongo import (
    MongoAdvisoryJobs,
    MongoDeliveries,
    MongoPreferences,
    MongoProjections,
    MongoReminderRuns,
    MongoWebhooks,
)
from services.notifications.service_layer.ports import Clock
from services.notifications.service_layer.reminders import ReminderPass


@dataclass
class Stores:
    """The service's MongoDB adapters over one database."""

    projections: MongoProjections
    deliveries: MongoDeliveries
    preferences: MongoPreferences
    webhooks: MongoWebhooks
    advisory_jobs: MongoAdvisoryJobs
    reminder_runs: MongoReminderRuns

    @classmethod
    def over(cls, db: AsyncDatabase[dict[str, Any]]) -> Stores:
        return cls(
            projections=MongoProjections(db),
            deliveries=MongoDeliveries(db),
            preferences=MongoPreferences(db),
            webhooks=MongoWebhooks(db),
            advisory_jobs=MongoAdvisoryJobs(db),
            reminder_runs=MongoReminderRuns(db),
        )


def reminder_pass(stores: Stores, clock: Clock, counters: Any) -> ReminderPass:
    return ReminderPass(
        source=stores.projections,
        partners=stores.projections,
        deliveries=stores.deliveries,
        webhooks=stores.webhooks,
        runs=stores.reminder_runs,
        clock=clock,
        counters=counters,
    )
