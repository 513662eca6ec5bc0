"""Advisory and product-notice fan-out: a resumable job each, one page of contacts per step.

Step by step it plans one vendor advisory per contact with an unexpired
entitlement of an affected product (keyset pages in contact order, so memory
stays bounded by the page), then one digest per partner of record listing
only that partner's affected entitlements. The job's cursor is saved after
each page: a worker that dies mid fan-out resumes where it was, and the pages
it planned twice plan nothing new (deterministic notification ids).

A product notice (CONTRACT 6.6) runs the same job (`kind` "notice", id
`notice/<notice_id>`) and plans `product_notice` / `notice_partner_digest`
instead: same audience and same walk, only the message differs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any, Protocol

from services.notifications.domain.model import Entitlement, PlannedDelivery
from services.notifications.domain.rules import (
    MAX_LISTED,
    partner_channels,
    plan_advisory_digest,
    plan_notice_digest,
    plan_product_notice,
    plan_security_advisory,
)
from services.notifications.service_layer.ports import Clock, Counters, Deliveries, Webhooks

_UUID_SPACE = 1 << 128


def contact_window_end(after: str, total: int, page_size: int) -> str | None:
    """Where a page that starts after contact `after` should end: ~`page_size` of `total`.

    Contact ids are UUIDs, spread evenly over their range, so a slice of the
    range holds about its share of the entitlements; reading a slice rather
    than "everything after `after`" keeps each page's read bounded (see
    `affected_page`). None: read to the end (the last slice, or ids that are
    not UUIDs).
    """
    if after:
        try:
            start = uuid.UUID(after).int
        except ValueError:
            return None
    else:
        start = -1
    step = max(1, _UUID_SPACE * page_size * 4 // (5 * max(total, 1)))
    end = start + step
    if end >= _UUID_SPACE - 1:
        return None
    return str(uuid.UUID(int=end))


class AffectedEntitlements(Protocol):
    async def count_affected(self, products: Sequence[str], not_before: dt.date) -> int: ...

    async def affected_page(
        self,
        products: Sequence[str],
        not_before: dt.date,
        after_contact: str,
        limit: int,
        up_to: str | None = None,
    ) -> tuple[list[Entitlement], str | None, bool]:
        """Whole contacts in (`after_contact`, `up_to`]: the affected entitlements, the
        last contact read, and True when the range holds no more."""

    async def affected_partners(
        self, products: Sequence[str], not_before: dt.date
    ) -> list[str]: ...

    async def affected_of_partner(
        self, partner_id: str, products: Sequence[str], not_before: dt.date, limit: int
    ) -> tuple[list[Entitlement], int]: ...


class AdvisoryJobs(Protocol):
    async def next_open(self) -> dict[str, Any] | None: ...

    async def update(
        self, advisory_id: str, fields: dict[str, Any], increments: dict[str, Any] | None = None
    ) -> None: ...


class AdvisoryFanout:
    def __init__(
        self,
        *,
        jobs: AdvisoryJobs,
        entitlements: AffectedEntitlements,
        deliveries: Deliveries,
        webhooks: Webhooks,
        clock: Clock,
        counters: Counters,
        page_size: int = 500,
        partners_per_step: int = 20,
    ) -> None:
        self.jobs = jobs
        self.entitlements = entitlements
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.clock = clock
        self.counters = counters
        self.page_size = page_size
        self.partners_per_step = partners_per_step

    async def step(self) -> bool:
        """Advance the oldest open job by one page; False when there is nothing to do."""
        job = await self.jobs.next_open()
        if job is None:
            self.counters.set_gauge("advisory_fanout_open_jobs", 0)
            return False
        self.counters.set_gauge("advisory_fanout_open_jobs", 1)
        advisory: Mapping[str, Any] = job["advisory"]
        notice = job.get("kind") == "notice"
        advisory_id = str(job["_id"]) if notice else str(advisory["advisory_id"])
        products = list(advisory["products"])
        occurred_at: dt.datetime = job["occurred_at"]
        # Unexpired at the advisory's business time: a term ending that day still counts.
        not_before = occurred_at.astimezone(dt.UTC).date()
        if job.get("total") is None:
            total = await self.entitlements.count_affected(products, not_before)
            await self.jobs.update(advisory_id, {"total": total})
            job["total"] = total
        if job["phase"] == "customers":
            await self._customers(job, advisory_id, products, not_before, occurred_at)
        else:
            await self._partners(job, advisory_id, products, not_before, occurred_at)
        return True

    async def _customers(
        self,
        job: dict[str, Any],
        advisory_id: str,
        products: list[str],
        not_before: dt.date,
        occurred_at: dt.datetime,
    ) -> None:
        cursor = str(job["contact_cursor"])
        up_to = contact_window_end(cursor, int(job["total"] or 0), self.page_size)
        page, last_contact, exhausted = await self.entitlements.affected_page(
            products, not_before, cursor, self.page_size, up_to
        )
        planned: list[PlannedDelivery] = []
        contacts = 0

        def plan_contact(entitlements: list[Entitlement]) -> PlannedDelivery | None:
            if job.get("kind") == "notice":
                notice_id = str(job["advisory"]["notice_id"])
                return plan_product_notice(notice_id, entitlements, occurred_at)
            return plan_security_advisory(advisory_id, entitlements, occurred_at)

        for _, group in groupby(page, key=lambda e: e.customer.contact_id):
            plan = plan_contact(list(group))
            if plan is not None:
                planned.append(plan)
                contacts += 1
        new = await self.deliveries.plan(planned, self.clock.now())
        fields: dict[str, Any] = {}
        if not exhausted and last_contact is not None:
            fields["contact_cursor"] = last_contact
        elif up_to is not None:
            fields["contact_cursor"] = up_to
        else:
            fields["phase"] = "partners"
            if last_contact is not None:
                fields["contact_cursor"] = last_contact
        await self.jobs.update(
            advisory_id,
            fields,
            {"planned": new, "contacts": contacts, "entitlements": len(page)},
        )
        done = int(job.get("entitlements", 0)) + len(page)
        total = max(int(job["total"] or 0), 1)
        self.counters.inc("advisory_contacts_planned_total", contacts)
        self.counters.set_gauge("advisory_fanout_progress_ratio", min(done / total, 1.0))

    async def _partners(
        self,
        job: dict[str, Any],
        advisory_id: str,
        products: list[str],
        not_before: dt.date,
        occurred_at: dt.datetime,
    ) -> None:
        remaining = [
            p
            for p in await self.entitlements.affected_partners(products, not_before)
            if p > job["partner_cursor"]
        ][: self.partners_per_step]
        if not remaining:
            await self.jobs.update(advisory_id, {"phase": "done", "finished_at": self.clock.now()})
            self.counters.inc("advisory_fanouts_completed_total")
            self.counters.set_gauge("advisory_fanout_progress_ratio", 1.0)
            return
        configured = await self.webhooks.of(remaining)
        planned: list[PlannedDelivery] = []
        notice = job.get("kind") == "notice"
        plan_digest = plan_notice_digest if notice else plan_advisory_digest
        subject = str(job["advisory"]["notice_id"]) if notice else advisory_id
        for partner_id in remaining:
            listed, total = await self.entitlements.affected_of_partner(
                partner_id, products, not_before, MAX_LISTED
            )
            planned.extend(
                plan_digest(
                    subject,
                    partner_id,
                    listed,
                    total,
                    occurred_at,
                    partner_channels(partner_id in configured),
                )
            )
        new = await self.deliveries.plan(planned, self.clock.now())
        await self.jobs.update(advisory_id, {"partner_cursor": remaining[-1]}, {"planned": new})
        self.counters.inc("advisory_digests_planned_total", len(remaining))
