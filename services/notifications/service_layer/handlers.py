"""The stream use case: keep the projections and plan the notifications events call for.

Runs inside the chassis' transactional consume loop. It only writes the
database (idempotently) and never sends: sending is the dispatcher's job, so a
slow mail server never holds up the stream, and a replayed batch plans the
same notification ids again, which the delivery store ignores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from chassis import tracing
from chassis.records import HandlerResult, Inbound
from services.notifications.domain.model import (
    Channel,
    Customer,
    Entitlement,
    PlannedDelivery,
    notice_key,
)
from services.notifications.domain.rules import (
    COMMISSION_TYPES,
    DEAL_DECISIONS,
    partner_channels,
    plan_attribution_changed,
    plan_commission,
    plan_contact_confirmation,
    plan_customer_sign_in,
    plan_deal_decided,
    plan_tier_changed,
    plan_welcome,
    tier_changed_applies,
    welcome_applies,
)
from services.notifications.service_layer.ports import Clock, Counters, Deliveries, Webhooks
from shared.events import (
    AdvisoryPublished,
    CommissionLine,
    CustomerSignInRequested,
    DealState,
    EntitlementAttributionChanged,
    EntitlementContactConfirmationRequested,
    EntitlementState,
    NoticePublished,
    PartnerState,
    PartnerUpdated,
)

log = logging.getLogger(__name__)

# Partners first, so a batch holding a partner and its first registration brands
# the welcome with it; the stream's own order is kept within each topic.
_ORDER = {
    "partner": 0,
    "entitlement": 1,
    "commission": 2,
    "deal": 2,
    "advisory": 3,
    "notice": 3,
}


class ProjectionWriter(Protocol):
    async def apply_partner(self, data: Mapping[str, Any], version: Any) -> bool: ...

    async def apply_entitlement(self, data: Mapping[str, Any], version: Any) -> bool: ...


class AdvisoryJobOpener(Protocol):
    async def open(
        self,
        advisory: Mapping[str, Any],
        occurred_at: Any,
        *,
        job_id: str | None = None,
        kind: str = "advisory",
    ) -> str: ...


def entitlement_of(state: EntitlementState) -> Entitlement:
    """An `entitlement.*` event's data as the domain's entitlement."""
    customer = state.customer
    por = state.partner_of_record
    return Entitlement(
        license_key=state.license_key,
        product=state.product,
        sku=state.sku,
        term_end=state.term_end,
        customer=Customer(
            customer_id=customer.customer_id,
            org_name=customer.org_name,
            contact_name=customer.contact_name,
            email=customer.email,
        ),
        partner_of_record=por.partner_id if por else None,
    )


class EventHandler:
    def __init__(
        self,
        *,
        projections: ProjectionWriter,
        deliveries: Deliveries,
        webhooks: Webhooks,
        advisory_jobs: AdvisoryJobOpener,
        clock: Clock,
        counters: Counters,
    ) -> None:
        self.projections = projections
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.advisory_jobs = advisory_jobs
        self.clock = clock
        self.counters = counters

    async def __call__(self, batch: list[Inbound]) -> HandlerResult:
        result = HandlerResult()
        ordered = sorted(batch, key=lambda i: _ORDER.get(i.envelope.event_type.split(".")[0], 9))
        channels = await self._channels(_partners_to_notify(ordered))
        planned: list[PlannedDelivery] = []
        # Each delivery keeps the trace context of the event that planned it: its
        # outcome record carries it (chassis.tracing).
        traces: dict[str, str] = {}
        for inbound in ordered:
            planned_here = await self._one(inbound, channels, result)
            planned.extend(planned_here)
            traceparent = tracing.traceparent_in(inbound.headers) if inbound.headers else None
            if traceparent is not None:
                for delivery in planned_here:
                    traces.setdefault(delivery.notification_id, traceparent.decode("ascii"))
        new = await self.deliveries.plan(planned, self.clock.now(), traces=traces)
        self.counters.inc("deliveries_planned_total", new)
        return result

    async def _one(
        self,
        inbound: Inbound,
        channels: Mapping[str, Sequence[Channel]],
        result: HandlerResult,
    ) -> list[PlannedDelivery]:
        # The envelope's data is the model of its event type (`shared.envelope` checks
        # that they fit): each branch narrows it, so the rules get typed events.
        envelope = inbound.envelope
        event_type = envelope.event_type
        data = envelope.data
        if isinstance(data, PartnerState):  # partner.created, partner.updated
            await self.projections.apply_partner(data.model_dump(mode="json"), data.effective_at)
            if isinstance(data, PartnerUpdated) and tier_changed_applies(data):
                return plan_tier_changed(
                    data, envelope.occurred_at, channels.get(data.partner_id, ("email",))
                )
            return []
        if isinstance(data, EntitlementContactConfirmationRequested):
            # Not a state of the entitlement: nothing to project, one mail to send.
            return [plan_contact_confirmation(data, envelope.occurred_at)]
        if isinstance(data, CustomerSignInRequested):
            # CONTRACT 6.2: one transactional mail; no projection, the token never logged.
            return [plan_customer_sign_in(data, envelope.occurred_at)]
        if isinstance(data, EntitlementState):
            return await self._entitlement(inbound, data, channels, result)
        if event_type in COMMISSION_TYPES and isinstance(data, CommissionLine):
            return plan_commission(
                event_type, data, envelope.occurred_at, channels.get(data.partner_id, ("email",))
            )
        if event_type in DEAL_DECISIONS and isinstance(data, DealState):
            return plan_deal_decided(
                data, envelope.occurred_at, channels.get(data.partner_id, ("email",))
            )
        if isinstance(data, AdvisoryPublished):
            opened = await self.advisory_jobs.open(
                data.model_dump(mode="json"), envelope.occurred_at
            )
            if opened == "conflict":
                result.reject(
                    inbound,
                    "advisory_conflict",
                    f"advisory {data.advisory_id} was published before with other content",
                )
            return []
        if isinstance(data, NoticePublished):
            # Fanned out like an advisory, by the same resumable job (CONTRACT 6.6).
            job_id = notice_key(data.notice_id)
            opened = await self.advisory_jobs.open(
                data.model_dump(mode="json"), envelope.occurred_at, job_id=job_id, kind="notice"
            )
            if opened == "conflict":
                result.reject(
                    inbound,
                    "notice_conflict",
                    f"notice {data.notice_id} was published before with other content",
                )
            return []
        # commission.payable / .paid, deal.submitted / .won / .expired: nothing to tell
        return []

    async def _entitlement(
        self,
        inbound: Inbound,
        data: EntitlementState,
        channels: Mapping[str, Sequence[Channel]],
        result: HandlerResult,
    ) -> list[PlannedDelivery]:
        envelope = inbound.envelope
        event_type = envelope.event_type
        entitlement = entitlement_of(data)
        if isinstance(data, EntitlementAttributionChanged):
            previous = data.previous_partner_id
            if previous == entitlement.partner_of_record:
                result.reject(
                    inbound,
                    "attribution_unchanged",
                    "previous_partner_id equals the partner of record: nothing changed",
                )
                return []
        await self.projections.apply_entitlement(data.model_dump(mode="json"), envelope.occurred_at)
        if welcome_applies(event_type):
            return [plan_welcome(entitlement, envelope.occurred_at)]
        if isinstance(data, EntitlementAttributionChanged):
            return plan_attribution_changed(
                entitlement, data.previous_partner_id, envelope.occurred_at, channels
            )
        return []

    async def _channels(self, partner_ids: Iterable[str]) -> dict[str, tuple[Channel, ...]]:
        wanted = set(partner_ids)
        configured = await self.webhooks.of(wanted) if wanted else {}
        return {p: partner_channels(p in configured) for p in wanted}


def _partners_to_notify(batch: Sequence[Inbound]) -> set[str]:
    partners: set[str] = set()
    for inbound in batch:
        data = inbound.envelope.data
        event_type = inbound.envelope.event_type
        # A commission line's beneficiary, a deal's partner, or a partner an evaluation
        # moved (tier_changed).
        if (
            (isinstance(data, CommissionLine) and event_type in COMMISSION_TYPES)
            or (isinstance(data, DealState) and event_type in DEAL_DECISIONS)
            or (isinstance(data, PartnerUpdated) and tier_changed_applies(data))
        ):
            partners.add(data.partner_id)
        elif isinstance(data, EntitlementAttributionChanged):
            previous = data.previous_partner_id
            current = data.partner_of_record
            partners.update(p for p in (previous, current.partner_id if current else None) if p)
    return partners
