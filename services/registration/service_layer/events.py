"""Domain objects to contract events (CONTRACT 1.3): `partner.*` and `entitlement.*`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.registration.domain.attribution import PartnerOfRecord as DomainPoR
from services.registration.domain.entitlements import Entitlement
from services.registration.domain.partners import Partner
from services.registration.service_layer.unit_of_work import OutboundEvent
from shared.envelope import new_envelope
from shared.events import (
    AppliedOrder,
    Branding,
    Customer,
    EntitlementAttributionChanged,
    EntitlementContactConfirmationRequested,
    EntitlementOrderApplied,
    EntitlementRegistered,
    EntitlementUpdated,
    OrderLine,
    OrderPlaced,
    ParentPartner,
    PartnerAccess,
    PartnerAtOrder,
    PartnerCreated,
    PartnerOfRecord,
    PartnerUpdated,
    TierReason,
)
from shared.topics import REGISTRATION_ENTITLEMENTS, REGISTRATION_PARTNERS

PRODUCER = "registration"


def partner_event(
    partner: Partner,
    *,
    created: bool,
    effective_at: dt.datetime,
    now: dt.datetime,
    tier_reason: TierReason | None = None,
) -> OutboundEvent:
    """`partner.created` / `partner.updated`: the partner as of `effective_at`, no secrets."""
    fields: dict[str, Any] = {
        "partner_id": partner.partner_id,
        "display_name": partner.display_name,
        "legal_name": partner.legal_name,
        "type": partner.type,
        "tier": partner.tier_at(effective_at),
        "status": partner.status_at(effective_at),
        "parent_partner_id": partner.parent_partner_id,
        "contact_email": partner.contact_email,
        "branding": Branding(
            logo_url=partner.branding.logo_url,
            color=partner.branding.color,
            phone=partner.branding.phone,
            website=partner.branding.website,
        ),
        "co_brand_customer_messages": partner.co_brand_customer_messages,
        "customer_ids": list(partner.customer_ids),
        "seller_code": partner.seller_code,
        "renewal_mode": partner.renewal_mode_at(effective_at),
        "effective_at": effective_at,
    }
    if tier_reason is not None:
        fields["tier_reason"] = tier_reason
    event_type = "partner.created" if created else "partner.updated"
    data = PartnerCreated(**fields) if created else PartnerUpdated(**fields)
    envelope = new_envelope(
        event_type, data, occurred_at=now, producer=PRODUCER, event_id=str(uuid.uuid4())
    )
    return OutboundEvent(REGISTRATION_PARTNERS, partner.partner_id, envelope, partner.version + 1)


def _por(por: DomainPoR | None) -> PartnerOfRecord | None:
    if por is None:
        return None
    return PartnerOfRecord(partner_id=por.partner_id, since=por.since, source=por.source)


def entitlement_fields(entitlement: Entitlement) -> dict[str, Any]:
    c = entitlement.customer
    return {
        "license_key": entitlement.license_key,
        "product": entitlement.product,
        "sku": entitlement.sku,
        "term_start": entitlement.term_start,
        "term_end": entitlement.term_end,
        "customer": Customer(
            customer_id=c.customer_id,
            org_name=c.org_name,
            contact_name=c.contact_name,
            email=c.email,
            country=c.country,
        ),
        "partner_of_record": _por(entitlement.partner_of_record),
    }


def entitlement_event(
    event_type: str,
    entitlement: Entitlement,
    *,
    occurred_at: dt.datetime,
    event_id: str | None = None,
    previous_partner_id: str | None = None,
) -> OutboundEvent:
    """`entitlement.registered` / `.updated` / `.attribution_changed`, as it now stands."""
    fields = entitlement_fields(entitlement)
    data: EntitlementRegistered | EntitlementUpdated | EntitlementAttributionChanged
    if event_type == "entitlement.registered":
        data = EntitlementRegistered(**fields)
    elif event_type == "entitlement.updated":
        # CONTRACT 6.2: every update states the partners with access, in full.
        access = [
            PartnerAccess(partner_id=a.partner_id, permission=a.permission)
            for a in entitlement.access
        ]
        data = EntitlementUpdated(**fields, access=access)
    elif event_type == "entitlement.attribution_changed":
        data = EntitlementAttributionChanged(**fields, previous_partner_id=previous_partner_id)
    else:
        raise ValueError(f"not an entitlement state event: {event_type}")
    envelope = new_envelope(
        event_type,
        data,
        occurred_at=occurred_at,
        producer=PRODUCER,
        event_id=event_id or str(uuid.uuid4()),
    )
    return OutboundEvent(
        REGISTRATION_ENTITLEMENTS, entitlement.license_key, envelope, entitlement.version + 1
    )


def contact_confirmation_event(
    entitlement: Entitlement, *, token: str, occurred_at: dt.datetime
) -> OutboundEvent:
    """`entitlement.contact_confirmation_requested`: mail `token` to the contact in place."""
    pending = entitlement.pending_contact
    if pending is None:
        raise ValueError("no contact change is pending")
    fields = entitlement_fields(entitlement)
    data = EntitlementContactConfirmationRequested(
        license_key=entitlement.license_key,
        product=entitlement.product,
        customer=fields["customer"],
        requested_contact_name=pending.customer.contact_name,
        requested_email=pending.customer.email,
        confirmation_token=token,
        expires_at=pending.expires_at,
    )
    envelope = new_envelope(
        "entitlement.contact_confirmation_requested",
        data,
        occurred_at=occurred_at,
        producer=PRODUCER,
        event_id=str(uuid.uuid4()),
    )
    return OutboundEvent(
        REGISTRATION_ENTITLEMENTS, entitlement.license_key, envelope, entitlement.version + 1
    )


def partner_at_order(
    por: DomainPoR | None, partners: dict[str, Partner], at: dt.datetime
) -> PartnerAtOrder | None:
    """The partner of record with the tier and status in force at `at` (and its parent's)."""
    if por is None:
        return None
    partner = partners.get(por.partner_id)
    if partner is None:
        # A partner of record always exists in the directory; a missing one means
        # data was removed by hand, and no partner is safer than a made-up one.
        return None
    parent = partners.get(partner.parent_partner_id) if partner.parent_partner_id else None
    return PartnerAtOrder(
        partner_id=partner.partner_id,
        tier=partner.tier_at(at),
        status=partner.status_at(at),
        customer_ids=list(partner.customer_ids),
        since=por.since,
        source=por.source,
        parent=(
            ParentPartner(partner_id=parent.partner_id, status=parent.status_at(at))
            if parent is not None
            else None
        ),
    )


def order_applied_event(
    entitlement: Entitlement,
    *,
    order: OrderPlaced,
    line: OrderLine,
    occurred_at: dt.datetime,
    partner: PartnerAtOrder | None,
    event_id: str,
) -> OutboundEvent:
    data = EntitlementOrderApplied(
        **entitlement_fields(entitlement),
        order=AppliedOrder(
            order_id=order.order_id,
            line_id=line.line_id,
            kind=line.kind,
            sales_channel=order.sales_channel,
            customer_id=order.customer.customer_id,
            net_amount_minor=line.net_amount_minor,
            currency=order.currency,
            occurred_at=occurred_at,
        ),
        partner=partner,
    )
    envelope = new_envelope(
        "entitlement.order_applied",
        data,
        occurred_at=occurred_at,
        producer=PRODUCER,
        event_id=event_id,
    )
    return OutboundEvent(
        REGISTRATION_ENTITLEMENTS, entitlement.license_key, envelope, entitlement.version + 1
    )
