"""Request and response bodies of the registration API (CONTRACT 2.1), and their mapping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from chassis.bounds import BoundedInstant
from services.registration.domain.attribution import PartnerOfRecord
from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Change, Partner
from services.registration.entrypoints.validation import (
    Color,
    Country,
    Email,
    Identifier,
    Name,
    Phone,
    Reason,
    SellerCodeText,
    Url,
)
from services.registration.service_layer.unit_of_work import ProcessedOrder
from shared.events import (
    AttributionSource,
    PartnerStatus,
    PartnerTier,
    PartnerType,
    RenewalMode,
    format_timestamp,
)


class Strict(BaseModel):
    """Unknown fields are a caller's mistake here, answered with a 422 naming them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _ts(value: dt.datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


# --- partners ---------------------------------------------------------------------


class BrandingIn(Strict):
    logo_url: Url | None = None
    color: Color | None = None
    phone: Phone | None = None
    website: Url | None = None


class PartnerCreate(Strict):
    display_name: Name
    legal_name: Name
    type: PartnerType
    tier: PartnerTier
    parent_partner_id: Identifier | None = None
    contact_email: Email
    branding: BrandingIn = Field(default_factory=BrandingIn)
    co_brand_customer_messages: StrictBool = False
    customer_ids: list[Identifier] = Field(default_factory=list, max_length=1000)
    renewal_mode: RenewalMode = Field(
        "partner_first", description="whom customer renewal reminders steer to (CONTRACT 6.1)"
    )
    effective_at: BoundedInstant | None = Field(
        None, description="when the partner's terms start; default now"
    )


class PartnerPatch(Strict):
    tier: PartnerTier | None = None
    status: PartnerStatus | None = None
    display_name: Name | None = None
    legal_name: Name | None = None
    contact_email: Email | None = None
    branding: BrandingIn | None = None
    co_brand_customer_messages: StrictBool | None = None
    customer_ids: list[Identifier] | None = Field(None, max_length=1000)
    renewal_mode: RenewalMode | None = None
    effective_at: BoundedInstant | None = Field(
        None, description="when a tier, status or renewal-mode change takes effect; default now"
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> PartnerPatch:
        if not (self.model_fields_set - {"effective_at"}):
            raise ValueError("nothing to change: give at least one field")
        return self


class HistoryEntry(BaseModel):
    value: str
    effective_at: str
    recorded_at: str


def _history_out(history: Sequence[Change[Any]]) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            value=c.value,
            effective_at=format_timestamp(c.effective_at),
            recorded_at=format_timestamp(c.recorded_at),
        )
        for c in history
    ]


class RenewalModeIn(Strict):
    renewal_mode: RenewalMode


class RenewalModeOut(BaseModel):
    partner_id: str
    renewal_mode: RenewalMode
    effective_at: str = Field(description="when the mode in force now took effect")


class CheckoutPartner(BaseModel):
    """What a checkout may show of a partner of record: its public face, nothing else."""

    display_name: str
    seller_code: str
    website: str | None
    phone: str | None
    renewal_mode: RenewalMode


class CheckoutPartnerOfRecord(BaseModel):
    license_key: str
    partner: CheckoutPartner | None = Field(
        description="the active partner of record to steer the customer to; null: renews direct"
    )


class BrandingOut(BaseModel):
    logo_url: str | None
    color: str | None
    phone: str | None
    website: str | None


class PartnerOut(BaseModel):
    partner_id: str
    display_name: str
    legal_name: str
    type: PartnerType
    tier: PartnerTier
    status: PartnerStatus
    parent_partner_id: str | None
    contact_email: str
    branding: BrandingOut
    co_brand_customer_messages: bool
    customer_ids: list[str]
    seller_code: str
    renewal_mode: RenewalMode
    effective_at: str
    created_at: str
    tier_history: list[HistoryEntry]
    status_history: list[HistoryEntry]
    renewal_mode_history: list[HistoryEntry]

    @classmethod
    def of(cls, p: Partner, now: dt.datetime) -> PartnerOut:
        return cls(
            partner_id=p.partner_id,
            display_name=p.display_name,
            legal_name=p.legal_name,
            type=p.type,
            tier=p.tier_at(now),
            status=p.status_at(now),
            parent_partner_id=p.parent_partner_id,
            contact_email=p.contact_email,
            branding=BrandingOut(
                logo_url=p.branding.logo_url,
                color=p.branding.color,
                phone=p.branding.phone,
                website=p.branding.website,
            ),
            co_brand_customer_messages=p.co_brand_customer_messages,
            customer_ids=list(p.customer_ids),
            seller_code=p.seller_code,
            renewal_mode=p.renewal_mode_at(now),
            effective_at=format_timestamp(p.effective_at),
            created_at=format_timestamp(p.created_at),
            tier_history=_history_out(p.tier_history),
            status_history=_history_out(p.status_history),
            renewal_mode_history=_history_out(p.renewal_mode_history),
        )


class PartnerList(BaseModel):
    partners: list[PartnerOut]
    next_after: str | None = Field(description="pass as `after` for the next page; null at the end")


class PartnerCreated(PartnerOut):
    api_key: str = Field(description="shown once; only its hash is kept")


class SellerCodeOut(BaseModel):
    valid: Literal[True] = True
    seller_code: str
    display_name: str


# --- registrations ---------------------------------------------------------------


class CustomerIn(Strict):
    customer_id: Identifier | None = Field(
        None, description="the checkout's customer id; default: the one on the entitlement"
    )
    org_name: Name
    contact_name: Name
    email: Email
    country: Country


class RegistrationIn(Strict):
    license_key: Identifier
    customer: CustomerIn
    seller_code: SellerCodeText | None = None


class LateSellerCodeIn(Strict):
    seller_code: SellerCodeText
    registration_token: str | None = Field(
        None,
        max_length=200,
        description="the token from the registration (or send it as a Bearer token)",
    )


class ContactConfirmationIn(Strict):
    token: str = Field(
        min_length=1, max_length=200, description="the one-time token from the mailed link"
    )


class ContactConfirmationOut(BaseModel):
    license_key: str
    confirmed: bool = True


class PartnerRegistrationIn(Strict):
    license_key: Identifier
    customer: CustomerIn | None = None


class PartnerName(BaseModel):
    display_name: str


class RegistrationOut(BaseModel):
    license_key: str
    registration_token: str | None = Field(None, description="secret; shown once")
    display_name: str | None = Field(description="the partner of record's display name, if any")
    partner_of_record: PartnerName | None
    attribution: str | None = Field(
        None, description="what the seller code did: set, replace, refresh, conflict, noop"
    )
    contact_pending: bool = Field(
        False,
        description="the e-mail differs from the licence's contact: that contact was sent a"
        " link to confirm the change, and stays the contact until then (CONTRACT 6.9)",
    )


def registration_out(
    license_key: str,
    partner: Partner | None,
    *,
    token: str | None = None,
    outcome: str | None = None,
    contact_pending: bool = False,
) -> RegistrationOut:
    return RegistrationOut(
        contact_pending=contact_pending,
        license_key=license_key,
        registration_token=token,
        display_name=partner.display_name if partner else None,
        partner_of_record=PartnerName(display_name=partner.display_name) if partner else None,
        attribution=outcome,
    )


# --- entitlements ------------------------------------------------------------------


class CustomerOut(BaseModel):
    customer_id: str
    org_name: str
    contact_name: str
    email: str
    country: str


class PartnerOfRecordOut(BaseModel):
    partner_id: str
    since: str
    source: AttributionSource

    @classmethod
    def of(cls, por: PartnerOfRecord | None) -> PartnerOfRecordOut | None:
        if por is None:
            return None
        return cls(partner_id=por.partner_id, since=format_timestamp(por.since), source=por.source)


class EntitlementOut(BaseModel):
    license_key: str
    product: str
    sku: str
    term_start: dt.date
    term_end: dt.date
    customer: CustomerOut
    partner_of_record: PartnerOfRecordOut | None
    # CONTRACT 6.2: how the calling partner relates to the licence; a partner with
    # access sees no partner of record (it is another partner's business).
    relationship: Literal["partner_of_record", "access"] = "partner_of_record"
    permission: Literal["view", "manage"] | None = None

    @classmethod
    def of(cls, e: Entitlement) -> EntitlementOut:
        c = e.customer
        return cls(
            license_key=e.license_key,
            product=e.product,
            sku=e.sku,
            term_start=e.term_start,
            term_end=e.term_end,
            customer=CustomerOut(
                customer_id=c.customer_id,
                org_name=c.org_name,
                contact_name=c.contact_name,
                email=c.email,
                country=c.country,
            ),
            partner_of_record=PartnerOfRecordOut.of(e.partner_of_record),
        )


class EntitlementPage(BaseModel):
    entitlements: list[EntitlementOut]
    next_after: str | None = Field(description="pass as `after` for the next page")


class AttributionChangeOut(BaseModel):
    at: str
    recorded_at: str
    kind: str
    partner_of_record: PartnerOfRecordOut | None
    previous_partner_id: str | None
    via: str
    ref: str
    reason: str


class RegistrationInfo(BaseModel):
    registered_at: str
    seller_code: str | None
    seller_code_at: str | None


class OrderSummary(BaseModel):
    order_id: str
    event_id: str
    occurred_at: str
    processed_at: str
    seller_code_ignored: str | None
    lines: list[dict[str, str]]

    @classmethod
    def of(cls, p: ProcessedOrder) -> OrderSummary:
        return cls(
            order_id=p.order_id,
            event_id=p.event_id,
            occurred_at=format_timestamp(p.occurred_at),
            processed_at=format_timestamp(p.processed_at),
            seller_code_ignored=p.seller_code_outcome,
            lines=p.lines,
        )


class ConflictOut(BaseModel):
    conflict_id: str
    license_key: str
    claimant_partner_id: str
    claim_source: AttributionSource
    claimed_at: str
    via: str
    ref: str
    partner_of_record: PartnerOfRecordOut
    reason: str
    recorded_at: str

    @classmethod
    def of(cls, c: AttributionConflict) -> ConflictOut:
        por = PartnerOfRecordOut.of(c.partner_of_record)
        assert por is not None
        return cls(
            conflict_id=c.conflict_id,
            license_key=c.license_key,
            claimant_partner_id=c.claimant_partner_id,
            claim_source=c.claim_source,
            claimed_at=format_timestamp(c.claimed_at),
            via=c.via,
            ref=c.ref,
            partner_of_record=por,
            reason=c.reason,
            recorded_at=format_timestamp(c.recorded_at),
        )


class AccessGrantOut(BaseModel):
    partner_id: str
    permission: Literal["view", "manage"]
    granted_at: str


class AdminEntitlementOut(EntitlementOut):
    registration: RegistrationInfo | None
    registered_by_partners: list[str]
    # CONTRACT 6.2: partners the customer let see or manage the licence.
    access: list[AccessGrantOut] = Field(default_factory=list)
    attribution_history: list[AttributionChangeOut]
    attribution_conflicts: list[ConflictOut]
    orders: list[OrderSummary]

    @classmethod
    def build(
        cls,
        e: Entitlement,
        conflicts: list[AttributionConflict],
        orders: list[ProcessedOrder],
    ) -> AdminEntitlementOut:
        r = e.registration
        return cls(
            **EntitlementOut.of(e).model_dump(),
            registration=RegistrationInfo(
                registered_at=format_timestamp(r.registered_at),
                seller_code=r.seller_code,
                seller_code_at=_ts(r.seller_code_at),
            )
            if r is not None
            else None,
            registered_by_partners=list(e.registered_by_partners),
            access=[
                AccessGrantOut(
                    partner_id=a.partner_id,
                    permission=a.permission,
                    granted_at=format_timestamp(a.granted_at),
                )
                for a in e.access
            ],
            attribution_history=[
                AttributionChangeOut(
                    at=format_timestamp(c.at),
                    recorded_at=format_timestamp(c.recorded_at),
                    kind=c.kind,
                    partner_of_record=PartnerOfRecordOut.of(c.partner_of_record),
                    previous_partner_id=c.previous_partner_id,
                    via=c.via,
                    ref=c.ref,
                    reason=c.reason,
                )
                for c in e.attribution_history
            ],
            attribution_conflicts=[ConflictOut.of(c) for c in conflicts],
            orders=[OrderSummary.of(o) for o in orders],
        )


class ConflictList(BaseModel):
    conflicts: list[ConflictOut]


class ReassignIn(Strict):
    partner_id: Identifier | None = Field(description="the new partner of record, or null")
    reason: Reason


class IntrospectIn(Strict):
    api_key: str = Field(max_length=500)


class IntrospectOut(BaseModel):
    active: bool
    partner_id: str | None = None
    key_id: str | None = None
    role: Literal["admin", "sales", "finance"] | None = Field(
        None, description="the key's role (CONTRACT 6.7): every service enforces it"
    )
