"""The notifications database: its collection names and document types, one list for
every store module (projections, deliveries, preferences, webhook settings, jobs)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
Db = AsyncDatabase[Doc]

PARTNERS = "partners"
ENTITLEMENTS = "entitlements"
DELIVERIES = "deliveries"
DELIVERY_OUTBOX = "delivery_outbox"
UNSUBSCRIBES = "unsubscribes"
WEBHOOKS = "webhooks"
ADVISORY_JOBS = "advisory_jobs"
REMINDER_RUNS = "reminder_runs"
