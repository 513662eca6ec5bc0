"""Contract events as a worker receives them: envelopes parsed from bytes, wrapped in Inbound."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from chassis.records import Inbound
from shared import events
from shared.envelope import encode, new_envelope, parse_event
from shared.events import EventData
from shared.topics import CHECKOUT_REFUNDS, REGISTRATION_ENTITLEMENTS
from tests.unit.commissions.builders import at

CUSTOMER = events.Customer(
    customer_id="C-881",
    org_name="Müller Logistik GmbH",
    contact_name="Jana Müller",
    email="jana@mueller-logistik.example",
    country="DE",
)


def order_applied(
    order_id: str = "WEB-100017",
    line_id: str = "1",
    *,
    net: int = 123457,
    currency: str = "EUR",
    kind: str = "renewal",
    channel: str = "direct",
    occurred_at: str = "2027-01-05T10:00:00Z",
    partner_id: str | None = "P-GOLD",
    tier: str = "gold",
    status: str = "active",
    parent: str | None = "P-DIST",
    since: str = "2026-01-10T09:00:00Z",
    product: str = "secure-pro",
) -> events.EntitlementOrderApplied:
    partner = None
    if partner_id is not None:
        partner = events.PartnerAtOrder(
            partner_id=partner_id,
            tier=tier,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            customer_ids=["C-17"],
            since=at(since),
            source="customer_registration",
            parent=events.ParentPartner(partner_id=parent, status="active") if parent else None,
        )
    return events.EntitlementOrderApplied(
        license_key=f"LK-{order_id}-{line_id}",
        product=product,
        sku="SECURE-PRO-1Y",
        term_start=at("2027-01-10T00:00:00Z").date(),
        term_end=at("2028-01-09T00:00:00Z").date(),
        customer=CUSTOMER,
        partner_of_record=None
        if partner_id is None
        else events.PartnerOfRecord(
            partner_id=partner_id, since=at(since), source="customer_registration"
        ),
        order=events.AppliedOrder(
            order_id=order_id,
            line_id=line_id,
            kind=kind,  # type: ignore[arg-type]
            sales_channel=channel,  # type: ignore[arg-type]
            customer_id="C-881",
            net_amount_minor=net,
            currency=currency,
            occurred_at=at(occurred_at),
        ),
        partner=partner,
    )


def refund_issued(
    refund_id: str,
    amount: int,
    *,
    order_id: str = "WEB-100017",
    line_id: str = "1",
    currency: str = "EUR",
) -> events.RefundIssued:
    return events.RefundIssued(
        refund_id=refund_id,
        order_id=order_id,
        line_id=line_id,
        amount_minor=amount,
        currency=currency,
        reason="customer downsized",
    )


def registered() -> events.EntitlementRegistered:
    return events.EntitlementRegistered(
        license_key="LK-1",
        product="secure-pro",
        sku="SECURE-PRO-1Y",
        term_start=at("2027-01-10T00:00:00Z").date(),
        term_end=at("2028-01-09T00:00:00Z").date(),
        customer=CUSTOMER,
        partner_of_record=None,
    )


_TYPES = {
    events.EntitlementOrderApplied: ("entitlement.order_applied", REGISTRATION_ENTITLEMENTS),
    events.RefundIssued: ("refund.issued", CHECKOUT_REFUNDS),
    events.EntitlementRegistered: ("entitlement.registered", REGISTRATION_ENTITLEMENTS),
}


@dataclass
class Stream:
    """Offsets per topic as one partition gives them; records parsed as the chassis does."""

    offsets: dict[str, itertools.count[int]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def record(
        self,
        data: EventData,
        occurred_at: str = "2027-01-20T14:30:00Z",
        event_id: str | None = None,
    ) -> Inbound:
        event_type, topic = _TYPES[type(data)]
        envelope = new_envelope(
            event_type,
            data,
            occurred_at=at(occurred_at),
            producer="test",
            event_id=event_id or f"evt-{next(self.ids)}",
        )
        value = encode(envelope)
        offset = next(self.offsets.setdefault(topic, itertools.count()))
        key = getattr(data, "order_id", None) or getattr(data, "license_key", "")
        return Inbound(topic, 0, offset, key.encode(), value, (), parse_event(topic, value))

    def again(self, inbound: Inbound) -> Inbound:
        """The same event delivered once more, later in its topic (a duplicate, not a replay)."""
        offset = next(self.offsets.setdefault(inbound.topic, itertools.count()))
        return Inbound(
            inbound.topic, 0, offset, inbound.key, inbound.value, inbound.headers, inbound.envelope
        )
