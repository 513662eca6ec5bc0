"""Apply `order.placed` events to entitlements and their partner of record, a batch at a time.

For every order line: create or change the entitlement, apply the order's
`partner_code` (a partner-channel sale) or direct-checkout `seller_code` by the
strength rules, and produce `entitlement.order_applied` with the partner of
record as it stood at `occurred_at` (plus `entitlement.updated` /
`attribution_changed` when those changed).

Idempotency: an order is recorded by `order_id` with its `event_id`, a hash of
its data, where it was read (topic:partition:offset) and the records it
produced, in the same database transaction as the entitlement changes. A
record seen again at the same position is a replay of a batch whose Kafka
transaction did not commit: its stored records are produced again (same
event ids). Seen at another position it is a duplicate: nothing is produced,
unless its data differ, which is a `conflicting_duplicate_order` (or, for a reused
`event_id`, a `conflicting_duplicate_event`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.registration.domain.attribution import AttributionSource, Claim
from services.registration.domain.entitlements import CustomerInfo, Entitlement, LineFacts
from services.registration.domain.partners import Partner
from services.registration.service_layer.attribution import (
    ClaimResult,
    claim_partner_of_record,
    state_events,
)
from services.registration.service_layer.deal_orders import DealMatcher, won_event
from services.registration.service_layer.events import order_applied_event, partner_at_order
from services.registration.service_layer.unit_of_work import (
    Clock,
    OutboundEvent,
    ProcessedOrder,
    StoredRecord,
    UnitOfWork,
    UnitOfWorkFactory,
)
from shared import seller_code
from shared.events import OrderLine, OrderPlaced
from shared.ids import derive_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingOrder:
    """One `order.placed` as read: its envelope's id and time, its data, where it was read."""

    event_id: str
    occurred_at: dt.datetime
    order: OrderPlaced
    position: str
    index: int = 0


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    detail: str


@dataclass
class BatchResult:
    records: list[StoredRecord] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    """The `event_id` of the order each record (same index) came from: its trace context."""
    rejections: list[Rejection] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    replayed: int = 0
    seller_codes_ignored: dict[str, int] = field(default_factory=dict)

    def add(self, records: Sequence[StoredRecord], cause: str) -> None:
        self.records.extend(records)
        self.causes.extend(cause for _ in records)


def data_hash(order: OrderPlaced) -> str:
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def output_event_id(source_event_id: str, line_id: str, event_type: str) -> str:
    """Deterministic ids: a replayed batch produces byte-identical events."""
    return derive_id("registration", source_event_id, line_id, event_type)


def _canonical(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return seller_code.validate(code)
    except seller_code.InvalidSellerCode:
        return None


def _stored(event: OutboundEvent) -> StoredRecord:
    return StoredRecord(event.topic, event.key.encode("utf-8"), event.value())


@dataclass
class _Attribution:
    partner: Partner | None
    source: AttributionSource | None
    ignored: str | None = None


class OrderApplier:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, window_months: int) -> None:
        self._uow = uow
        self._clock = clock
        self._window_months = window_months

    async def apply(self, orders: Sequence[IncomingOrder]) -> BatchResult:
        """Apply a poll's orders in order; commit the database once; return what to produce."""
        result = BatchResult()
        if not orders:
            return result
        async with self._uow() as uow:
            prior = await uow.processed_orders.find(
                [o.order.order_id for o in orders], [o.event_id for o in orders]
            )
            by_order = {p.order_id: p for p in prior}
            by_event = {p.event_id: p for p in prior}
            await self._preload(uow, orders)
            deals = await DealMatcher.load(uow, (o.order for o in orders))
            for incoming in orders:
                await self._apply_one(uow, incoming, by_order, by_event, result, deals)
            await uow.commit()
        return result

    async def _preload(self, uow: UnitOfWork, orders: Sequence[IncomingOrder]) -> None:
        """Read what the batch touches in a few bulk queries instead of one per line."""
        entitlements = await uow.entitlements.get_many(
            line.license_key for o in orders for line in o.order.lines
        )
        codes = {
            code
            for o in orders
            for code in (_canonical(o.order.partner_code), _canonical(o.order.seller_code))
            if code is not None
        }
        by_code = await uow.partners.get_many_by_seller_code(codes)
        ids = {e.partner_of_record.partner_id for e in entitlements.values() if e.partner_of_record}
        ids |= {p.partner_id for p in by_code.values()}
        partners = await uow.partners.get_many(ids)
        parents = {p.parent_partner_id for p in partners.values() if p.parent_partner_id}
        await uow.partners.get_many(parents)

    async def _apply_one(
        self,
        uow: UnitOfWork,
        incoming: IncomingOrder,
        by_order: dict[str, ProcessedOrder],
        by_event: dict[str, ProcessedOrder],
        result: BatchResult,
        deals: DealMatcher | None = None,
    ) -> None:
        order = incoming.order
        digest = data_hash(order)
        seen = by_event.get(incoming.event_id) or by_order.get(order.order_id)
        if seen is not None:
            if seen.data_hash == digest:
                if seen.position == incoming.position:
                    result.add(seen.outputs, incoming.event_id)
                    result.replayed += 1
                else:
                    result.duplicates += 1
                return
            if seen.event_id == incoming.event_id:
                # A reused event_id: processed once (CONTRACT 1.1), but not dropped
                # silently either (1.4): the producer has a bug to hear about.
                reason, detail = (
                    "conflicting_duplicate_event",
                    f"event_id {incoming.event_id} was applied before with different data"
                    f" (order_id {seen.order_id})",
                )
            else:
                reason, detail = (
                    "conflicting_duplicate_order",
                    f"order_id {order.order_id} was applied before with different data"
                    f" (event_id {seen.event_id})",
                )
            result.rejections.append(Rejection(incoming.index, reason, detail))
            return

        attribution = await self._attribution(uow, incoming)
        if isinstance(attribution, Rejection):
            result.rejections.append(attribution)
            return
        if attribution.ignored is not None:
            result.seller_codes_ignored[attribution.ignored] = (
                result.seller_codes_ignored.get(attribution.ignored, 0) + 1
            )
            log.info(
                "seller code ignored",
                extra={"order_id": order.order_id, "reason": attribution.ignored},
            )
        now = self._clock()
        outputs: list[OutboundEvent] = []
        lines: list[dict[str, str]] = []
        c = order.customer
        customer = CustomerInfo(c.customer_id, c.org_name, c.contact_name, c.email, c.country)
        for line in order.lines:
            entitlement, changed = await self._entitlement(uow, line, customer, incoming)
            claimed: ClaimResult | None = None
            claimant, source = attribution.partner, attribution.source
            # CONTRACT 6.3: a protected (customer, product) makes a direct `new` line
            # the deal partner's, and its own channel sale wins the deal too.
            deal = (
                await deals.claim_for(uow, order, line, incoming.occurred_at, attribution.partner)
                if deals is not None
                else None
            )
            if deal is not None and deal.partner is not None:
                claimant, source = deal.partner, deal.source
            if claimant is not None and source is not None:
                claim = Claim(
                    partner_id=claimant.partner_id,
                    source=source,
                    at=incoming.occurred_at,
                    via="order",
                    ref=f"{order.order_id}/{line.line_id}",
                )
                # The processed-order record, committed with this, makes the
                # line's claim (and its conflict id) happen once.
                claimed = await claim_partner_of_record(
                    uow,
                    entitlement,
                    claim,
                    window_months=self._window_months,
                    now=now,
                    conflict_is_new=True,
                )
            lines.append(
                {
                    "line_id": line.line_id,
                    "license_key": line.license_key,
                    "attribution": claimed.decision.outcome.value if claimed else "none",
                    "reason": claimed.decision.reason if claimed else (attribution.ignored or ""),
                }
            )

            def event_id(event_type: str, line_id: str = line.line_id) -> str:
                return output_event_id(incoming.event_id, line_id, event_type)

            outputs.extend(
                state_events(
                    entitlement,
                    occurred_at=incoming.occurred_at,
                    registered=False,
                    updated=changed,
                    claim=claimed,
                    event_id=event_id,
                )
            )
            por = entitlement.partner_of_record_at(incoming.occurred_at)
            if deal is not None and por is not None and por.partner_id == deal.deal.partner_id:
                outputs.append(won_event(deal.deal, order.order_id, incoming.occurred_at))
            partners = await self._partners_for(uow, por.partner_id if por else None)
            outputs.append(
                order_applied_event(
                    entitlement,
                    order=order,
                    line=line,
                    occurred_at=incoming.occurred_at,
                    partner=partner_at_order(por, partners, incoming.occurred_at),
                    event_id=event_id("entitlement.order_applied"),
                )
            )
        stored = [_stored(event) for event in outputs]
        record = ProcessedOrder(
            order_id=order.order_id,
            event_id=incoming.event_id,
            data_hash=digest,
            position=incoming.position,
            occurred_at=incoming.occurred_at,
            processed_at=now,
            license_keys=list(dict.fromkeys(line.license_key for line in order.lines)),
            outputs=stored,
            seller_code_outcome=attribution.ignored,
            lines=lines,
        )
        uow.processed_orders.add(record)
        by_order[order.order_id] = record
        by_event[incoming.event_id] = record
        result.add(stored, incoming.event_id)
        result.applied += 1

    async def _attribution(
        self, uow: UnitOfWork, incoming: IncomingOrder
    ) -> _Attribution | Rejection:
        """The order's claim; a Rejection when the order must go to the dead-letter topic."""
        order = incoming.order
        if order.sales_channel == "partner":
            code = _canonical(order.partner_code)
            if code is None:
                return Rejection(
                    incoming.index,
                    "invalid_partner_code",
                    f"partner_code of order {order.order_id} is not a valid seller code",
                )
            seller = await uow.partners.get_by_seller_code(code)
            if seller is None:
                return Rejection(
                    incoming.index,
                    "unknown_partner_code",
                    f"no partner has the partner_code of order {order.order_id}",
                )
            # The sale happened whatever the reseller's status: checkout is the
            # system of record, and a partner-channel sale earns no commission.
            return _Attribution(seller, "partner_sale")
        if not order.seller_code:
            return _Attribution(None, None)
        # A typo or an unknown code never blocks a direct order: the order is
        # applied, the code ignored, and why is kept with the processed order.
        code = _canonical(order.seller_code)
        if code is None:
            return _Attribution(None, None, "invalid_seller_code")
        partner = await uow.partners.get_by_seller_code(code)
        if partner is None:
            return _Attribution(None, None, "unknown_seller_code")
        if not partner.is_active_at(incoming.occurred_at):
            return _Attribution(None, None, "partner_inactive")
        return _Attribution(partner, "checkout_seller_code")

    async def _entitlement(
        self,
        uow: UnitOfWork,
        line: OrderLine,
        customer: CustomerInfo,
        incoming: IncomingOrder,
    ) -> tuple[Entitlement, bool]:
        """The line's entitlement after applying it, and whether its state changed."""
        facts = LineFacts(
            kind=line.kind,
            license_key=line.license_key,
            sku=line.sku,
            product=line.product,
            term_start=line.term_start,
            term_end=line.term_end,
        )
        entitlement = await uow.entitlements.get(line.license_key)
        if entitlement is None:
            # `new` creates it; a renewal or upgrade of an unknown key does too, as
            # checkout is the system of record for what was sold.
            entitlement = Entitlement.from_line(facts, customer, incoming.occurred_at)
            uow.entitlements.add(entitlement)
            return entitlement, True
        return entitlement, entitlement.apply_line(facts, customer)

    async def _partners_for(self, uow: UnitOfWork, partner_id: str | None) -> dict[str, Partner]:
        if partner_id is None:
            return {}
        partner = await uow.partners.get(partner_id)
        if partner is None:
            return {}
        found = {partner.partner_id: partner}
        if partner.parent_partner_id:
            parent = await uow.partners.get(partner.parent_partner_id)
            if parent is not None:
                found[parent.partner_id] = parent
        return found
