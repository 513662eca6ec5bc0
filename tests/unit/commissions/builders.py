"""Test data for the commission rules: orders, partners and refunds in the contract's shapes."""

from __future__ import annotations

import datetime as dt
import itertools

from services.commissions.domain.decisions import (
    OrderApplied,
    ParentAtOrder,
    PartnerAtOrder,
    Policy,
)
from services.commissions.domain.order_line import (
    OrderLineCommission,
    OrderLineKey,
    RawRecord,
    RefundToApply,
    Source,
)
from services.commissions.domain.rates import DEFAULT_RATE_TABLE, RateBook
from shared.events import LineKind, PartnerStatus, PartnerTier, SalesChannel

POLICY = Policy()
RATES = RateBook([DEFAULT_RATE_TABLE])
_offsets = itertools.count()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def partner(
    partner_id: str = "P-GOLD",
    *,
    tier: PartnerTier = "gold",
    status: PartnerStatus = "active",
    since: str = "2026-01-10T09:00:00Z",
    customer_ids: tuple[str, ...] = ("C-17",),
    parent: str | None = "P-DIST",
    parent_status: PartnerStatus = "active",
) -> PartnerAtOrder:
    return PartnerAtOrder(
        partner_id=partner_id,
        tier=tier,
        status=status,
        customer_ids=customer_ids,
        since=at(since),
        parent=ParentAtOrder(parent, parent_status) if parent else None,
    )


_NO_PARTNER = PartnerAtOrder("-", "gold", "active", (), at("2000-01-01T00:00:00Z"), None)


def order(
    *,
    order_id: str = "WEB-100017",
    line_id: str = "1",
    kind: LineKind = "renewal",
    channel: SalesChannel = "direct",
    customer_id: str = "C-881",
    net: int = 123457,
    currency: str = "EUR",
    occurred_at: str = "2027-01-05T10:00:00Z",
    por: PartnerAtOrder | None = _NO_PARTNER,
) -> OrderApplied:
    return OrderApplied(
        order_id=order_id,
        line_id=line_id,
        license_key=f"LK-{order_id}-{line_id}",
        kind=kind,
        sales_channel=channel,
        customer_id=customer_id,
        net_amount_minor=net,
        currency=currency,
        occurred_at=at(occurred_at),
        partner=partner() if por is _NO_PARTNER else por,
    )


def refund(
    refund_id: str,
    amount: int,
    *,
    order_id: str = "WEB-100017",
    line_id: str = "1",
    currency: str = "EUR",
    occurred_at: str = "2027-01-20T14:30:00Z",
) -> RefundToApply:
    return RefundToApply(
        refund_id=refund_id,
        order_id=order_id,
        line_id=line_id,
        amount_minor=amount,
        currency=currency,
        reason="customer downsized",
        occurred_at=at(occurred_at),
    )


def source(topic: str = "registration.entitlements.v1", offset: int | None = None) -> Source:
    position = next(_offsets) if offset is None else offset
    return Source(f"evt-{topic}-{position}", topic, 0, position)


def raw(refund_issued: RefundToApply) -> RawRecord:
    return RawRecord(
        "checkout.refunds.v1", refund_issued.order_id.encode(), refund_issued.refund_id.encode()
    )


def aggregate_for(order_applied: OrderApplied) -> OrderLineCommission:
    return OrderLineCommission(OrderLineKey(order_applied.order_id, order_applied.line_id))


def applied(order_applied: OrderApplied) -> OrderLineCommission:
    line = aggregate_for(order_applied)
    line.apply_order(order_applied, source(), RATES, POLICY)
    return line


def refund_into(line: OrderLineCommission, refund_issued: RefundToApply) -> list[int]:
    effects = line.apply_refund(refund_issued, source("checkout.refunds.v1"), raw(refund_issued))
    return [emitted.amount_minor for emitted in effects.emitted]
