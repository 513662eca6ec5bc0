"""The notification rules of CONTRACT 4: who gets what, under whose brand, and when.

Pure functions from entitlements, partners and triggering facts to planned
deliveries. Every decision the contract's table makes lives here, so it is
tested without a broker, a database or a mail server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from typing import Any, Final

from services.notifications.domain.model import (
    SECURITY_TYPES,
    Branding,
    Channel,
    Entitlement,
    ListedEntitlement,
    NotificationType,
    Partner,
    PlannedDelivery,
    RenewalMode,
    Vendor,
    contact_id,
    notification_id,
)
from shared.events import (
    CommissionLine,
    CustomerSignInRequested,
    DealState,
    EntitlementContactConfirmationRequested,
    PartnerUpdated,
    format_timestamp,
)
from shared.ids import derive_id

REMINDER_OFFSETS: Final[tuple[int, ...]] = (90, 30, 7)
VENDOR_ONLY_TYPES: Final[frozenset[NotificationType]] = frozenset(
    {"security_advisory", "product_notice", "contact_confirmation", "customer_sign_in"}
)
OPPORTUNITY_OFFSET: Final[int] = 90
# CONTRACT 6.1: a `partner_only` partner hears a second time at -30.
SECOND_OPPORTUNITY_OFFSET: Final[int] = 30
# The customer reminder offsets of each renewal mode (CONTRACT 6.1); the partner's
# opportunities are at OPPORTUNITY_OFFSET always, and at SECOND_OPPORTUNITY_OFFSET
# for `partner_only` too.
CUSTOMER_REMINDER_OFFSETS: Final[Mapping[RenewalMode, frozenset[int]]] = {
    "vendor_direct": frozenset(REMINDER_OFFSETS),
    "partner_first": frozenset({30, 7}),
    "partner_only": frozenset(),
}
# A message lists at most this many licences; more are split into several messages
# (each its own subject, so each is still delivered once).
MAX_LISTED: Final[int] = 200

WELCOME_EVENTS: Final[frozenset[str]] = frozenset({"entitlement.registered"})
COMMISSION_TYPES: Final[Mapping[str, NotificationType]] = {
    "commission.accrued": "commission_earned",
    "commission.clawed_back": "commission_reversed",
}


# --- branding and audience ------------------------------------------------------


def customer_branding(
    notification_type: NotificationType, scope_partner: Partner | None, vendor: Vendor
) -> Branding:
    """Partner branding only for a co-branding, active partner of record; else the vendor's.

    Security advisories, product notices and contact confirmations are the vendor's
    alone and name no partner (CONTRACT 4, 6.6, 6.9).
    """
    if notification_type in VENDOR_ONLY_TYPES or scope_partner is None:
        return vendor.branding()
    if not (scope_partner.active and scope_partner.co_brand_customer_messages):
        return vendor.branding()
    return Branding(
        name=scope_partner.display_name,
        color=safe_color(scope_partner.color) or vendor.color,
        logo_url=safe_url(scope_partner.logo_url),
        phone=scope_partner.phone,
        website=safe_url(scope_partner.website),
        partner_id=scope_partner.partner_id,
    )


def honours_unsubscribe(notification_type: NotificationType) -> bool:
    """An unsubscribe stops every e-mail but security advisories (and their partner digests)
    and contact confirmations (CONTRACT 6.9).

    Product notices and their digests are not security matters: they honour it (6.6).
    """
    return notification_type not in SECURITY_TYPES


def carries_list_unsubscribe(notification_type: NotificationType) -> bool:
    return notification_type not in SECURITY_TYPES


def needs_active_partner(notification_type: NotificationType) -> bool:
    """Sales leads and customer security details go to active partners only.

    Commission and attribution notices concern the partner's own money and
    records, so they go whatever its status.
    """
    return notification_type in (
        "renewal_opportunity",
        "advisory_partner_digest",
        "notice_partner_digest",
    )


def partner_channels(has_webhook: bool) -> tuple[Channel, ...]:
    """Partner-facing messages go by e-mail, and by webhook once one is set (CONTRACT 4)."""
    return ("email", "webhook") if has_webhook else ("email",)


def welcome_applies(event_type: str) -> bool:
    """A registration (customer or partner, CONTRACT 2.1) welcomes; orders never do.

    `entitlement.registered` is emitted for both kinds of registration; an
    entitlement that an order created arrives as `entitlement.order_applied`,
    and attribution or term changes as `attribution_changed` / `updated`.
    """
    return event_type in WELCOME_EVENTS


def plan_contact_confirmation(
    request: EntitlementContactConfirmationRequested, occurred_at: dt.datetime
) -> PlannedDelivery:
    """The one-time link to the contact in place, vendor-branded, naming no partner.

    One delivery per request (the token is the subject), so a second request mails
    its own link. The token stays in `facts` only until the mail is rendered.
    """
    customer = request.customer
    recipient = customer.email
    return PlannedDelivery(
        notification_id=notification_id(
            "contact_confirmation",
            derive_id("contact-confirmation", request.confirmation_token),
            contact_id(recipient),
            "email",
        ),
        type="contact_confirmation",
        channel="email",
        audience="customer",
        recipient=recipient,
        partner_scope=None,
        entitlements=(
            ListedEntitlement(
                license_key=request.license_key,
                product=request.product,
                term_end=None,
                partner_of_record=None,
                org_name=customer.org_name,
            ),
        ),
        occurred_at=occurred_at,
        facts={
            "confirmation_token": request.confirmation_token,
            "requested_email": request.requested_email,
            "requested_contact_name": request.requested_contact_name or "",
            "expires_at": format_timestamp(request.expires_at),
        },
        contact_name=customer.contact_name,
        org_name=customer.org_name,
    )


def plan_customer_sign_in(
    request: CustomerSignInRequested, occurred_at: dt.datetime
) -> PlannedDelivery:
    """The one-time sign-in link a customer asked for (CONTRACT 6.2): vendor-branded,
    naming no partner and listing no licence, sent whatever the contact's preferences.

    One delivery per request (the token is the subject). The token is in `facts`
    for the renderer only; the id and the logs carry a hash of it.
    """
    recipient = request.email
    return PlannedDelivery(
        notification_id=notification_id(
            "customer_sign_in",
            derive_id("customer-sign-in", request.token),
            contact_id(recipient),
            "email",
        ),
        type="customer_sign_in",
        channel="email",
        audience="customer",
        recipient=recipient,
        partner_scope=None,
        entitlements=(),
        occurred_at=occurred_at,
        facts={
            "sign_in_token": request.token,
            "expires_at": format_timestamp(request.expires_at),
        },
    )


def renewal_mode_in_force(partner: Partner | None, at: dt.datetime) -> RenewalMode:
    """The mode a reminder follows (CONTRACT 6.1): its PoR's at `at` when the PoR is active
    then; `vendor_direct` without a PoR, or when it is not active, or not known here yet
    (no partner we know nothing of is named or relied on)."""
    if partner is None:
        return "vendor_direct"
    terms = partner.terms_at(at)
    return terms.renewal_mode if terms.status == "active" else "vendor_direct"


def reminds_customer(mode: RenewalMode, offset: int) -> bool:
    return offset in CUSTOMER_REMINDER_OFFSETS[mode]


def steers_to_partner(mode: RenewalMode) -> bool:
    """`partner_first` reminders name the PoR as the one to renew with (CONTRACT 6.1)."""
    return mode == "partner_first"


def opportunity_offsets(mode: RenewalMode) -> tuple[int, ...]:
    if mode == "partner_only":
        return (OPPORTUNITY_OFFSET, SECOND_OPPORTUNITY_OFFSET)
    return (OPPORTUNITY_OFFSET,)


def due_term_ends(as_of: dt.date) -> dict[int, dt.date]:
    """For a pass as of `as_of`, the term end each reminder offset is due for."""
    return {offset: as_of + dt.timedelta(days=offset) for offset in REMINDER_OFFSETS}


# --- planning ------------------------------------------------------------------------


def plan_welcome(entitlement: Entitlement, occurred_at: dt.datetime) -> PlannedDelivery:
    customer = entitlement.customer
    return PlannedDelivery(
        notification_id=notification_id(
            "welcome", entitlement.license_key, customer.contact_id, "email"
        ),
        type="welcome",
        channel="email",
        audience="customer",
        recipient=customer.email,
        partner_scope=entitlement.partner_of_record,
        entitlements=(ListedEntitlement.of(entitlement),),
        occurred_at=occurred_at,
        related_partner_ids=_partners_of([entitlement]),
        contact_name=customer.contact_name,
        org_name=customer.org_name,
    )


def plan_reminders(
    contact_entitlements: Sequence[Entitlement],
    offset: int,
    as_of: dt.date,
    occurred_at: dt.datetime,
    modes: Mapping[str, RenewalMode] | None = None,
) -> list[PlannedDelivery]:
    """One reminder per partner-of-record scope for one contact's due entitlements.

    A customer who bought from two resellers gets two reminders, each naming
    at most its own partner and listing only that partner's licences. `modes`
    is each PoR's renewal mode in force at `as_of` (`renewal_mode_in_force`); a
    scope without one (no PoR, or not given) follows `vendor_direct`. A
    `partner_first` reminder carries `steer_to_partner`: it names its scope's
    partner as the one to renew with.
    """
    if not contact_entitlements:
        return []
    related = _partners_of(contact_entitlements)
    first = contact_entitlements[0].customer
    plans: list[PlannedDelivery] = []
    for scope, group in _by_scope(contact_entitlements):
        mode: RenewalMode = (modes or {}).get(scope, "vendor_direct") if scope else "vendor_direct"
        if not reminds_customer(mode, offset):
            continue
        facts: dict[str, Any] = {
            "offset_days": offset,
            "as_of": as_of.isoformat(),
            "renewal_mode": mode,
            "steer_to_partner": steers_to_partner(mode),
        }
        for chunk in _chunks(group, MAX_LISTED):
            listed = tuple(ListedEntitlement.of(e) for e in chunk)
            term_end = chunk[0].term_end
            subject = f"{offset}d/{term_end.isoformat()}/{_keys(listed)}"
            plans.append(
                PlannedDelivery(
                    notification_id=notification_id(
                        "renewal_reminder", subject, first.contact_id, "email"
                    ),
                    type="renewal_reminder",
                    channel="email",
                    audience="customer",
                    recipient=first.email,
                    partner_scope=scope,
                    entitlements=listed,
                    occurred_at=occurred_at,
                    facts=facts,
                    related_partner_ids=related,
                    contact_name=first.contact_name,
                    org_name=first.org_name,
                )
            )
    return plans


def plan_renewal_opportunities(
    partner_id: str,
    entitlements: Sequence[Entitlement],
    as_of: dt.date,
    occurred_at: dt.datetime,
    channels: Iterable[Channel],
    *,
    offset: int = OPPORTUNITY_OFFSET,
    renewal_mode: RenewalMode = "vendor_direct",
) -> list[PlannedDelivery]:
    """The partner of record hears of its own licences 90 days before they end
    (and a `partner_only` partner again at 30, CONTRACT 6.1)."""
    own = [e for e in entitlements if e.partner_of_record == partner_id]
    plans: list[PlannedDelivery] = []
    for chunk in _chunks(own, MAX_LISTED):
        listed = tuple(ListedEntitlement.of(e) for e in chunk)
        subject = f"{offset}d/{chunk[0].term_end.isoformat()}/{_keys(listed)}"
        for channel in channels:
            plans.append(
                PlannedDelivery(
                    notification_id=notification_id(
                        "renewal_opportunity", subject, partner_id, channel
                    ),
                    type="renewal_opportunity",
                    channel=channel,
                    audience="partner",
                    recipient=partner_id,
                    partner_scope=partner_id,
                    entitlements=listed,
                    occurred_at=occurred_at,
                    facts={
                        "offset_days": offset,
                        "as_of": as_of.isoformat(),
                        "renewal_mode": renewal_mode,
                    },
                    related_partner_ids=(partner_id,),
                )
            )
    return plans


def _vendor_notice_to_contact(
    notification_type: NotificationType,
    id_fact: str,
    source_id: str,
    contact_entitlements: Sequence[Entitlement],
    occurred_at: dt.datetime,
) -> PlannedDelivery | None:
    """One vendor message to a contact, listing that contact's licences (at most MAX_LISTED)."""
    if not contact_entitlements:
        return None
    customer = contact_entitlements[0].customer
    listed = tuple(ListedEntitlement.of(e) for e in contact_entitlements[:MAX_LISTED])
    return PlannedDelivery(
        notification_id=notification_id(notification_type, source_id, customer.contact_id, "email"),
        type=notification_type,
        channel="email",
        audience="customer",
        recipient=customer.email,
        partner_scope=None,
        entitlements=listed,
        occurred_at=occurred_at,
        facts={id_fact: source_id, "affected_total": len(contact_entitlements)},
        related_partner_ids=_partners_of(contact_entitlements),
        contact_name=customer.contact_name,
        org_name=customer.org_name,
    )


def _partner_digest(
    notification_type: NotificationType,
    id_fact: str,
    source_id: str,
    partner_id: str,
    listed: Sequence[Entitlement],
    affected_total: int,
    occurred_at: dt.datetime,
    channels: Iterable[Channel],
) -> list[PlannedDelivery]:
    """One digest per channel to a partner of record, listing only its own licences."""
    own = tuple(ListedEntitlement.of(e) for e in listed if e.partner_of_record == partner_id)
    return [
        PlannedDelivery(
            notification_id=notification_id(notification_type, source_id, partner_id, channel),
            type=notification_type,
            channel=channel,
            audience="partner",
            recipient=partner_id,
            partner_scope=partner_id,
            entitlements=own,
            occurred_at=occurred_at,
            facts={id_fact: source_id, "affected_total": affected_total},
            related_partner_ids=(partner_id,),
        )
        for channel in channels
    ]


def plan_security_advisory(
    advisory_id: str, contact_entitlements: Sequence[Entitlement], occurred_at: dt.datetime
) -> PlannedDelivery | None:
    """One vendor advisory per contact, listing that contact's affected licences."""
    return _vendor_notice_to_contact(
        "security_advisory", "advisory_id", advisory_id, contact_entitlements, occurred_at
    )


def plan_advisory_digest(
    advisory_id: str,
    partner_id: str,
    listed: Sequence[Entitlement],
    affected_total: int,
    occurred_at: dt.datetime,
    channels: Iterable[Channel],
) -> list[PlannedDelivery]:
    """One digest per partner of record, listing only its own affected licences."""
    return _partner_digest(
        "advisory_partner_digest",
        "advisory_id",
        advisory_id,
        partner_id,
        listed,
        affected_total,
        occurred_at,
        channels,
    )


def plan_product_notice(
    notice_id: str, contact_entitlements: Sequence[Entitlement], occurred_at: dt.datetime
) -> PlannedDelivery | None:
    """One vendor product notice per contact, listing that contact's licences of the products.

    Like a security advisory it names no partner and mixes scopes freely (it is
    the vendor's, to the customer, about all of the customer's licences); unlike
    one it honours unsubscribes (CONTRACT 6.6).
    """
    return _vendor_notice_to_contact(
        "product_notice", "notice_id", notice_id, contact_entitlements, occurred_at
    )


def plan_notice_digest(
    notice_id: str,
    partner_id: str,
    listed: Sequence[Entitlement],
    affected_total: int,
    occurred_at: dt.datetime,
    channels: Iterable[Channel],
) -> list[PlannedDelivery]:
    """One digest per partner of record, listing only its own licences of the products."""
    return _partner_digest(
        "notice_partner_digest",
        "notice_id",
        notice_id,
        partner_id,
        listed,
        affected_total,
        occurred_at,
        channels,
    )


COMMISSION_FACTS: Final[tuple[str, ...]] = (
    "line_id",
    "role",
    "order_id",
    "line_ref",
    "refund_id",
    "kind",
    "tier",
    "base_amount_minor",
    "rate_bps",
    "amount_minor",
    "currency",
    "status",
    "payable_at",
)


def plan_commission(
    event_type: str,
    line: CommissionLine,
    occurred_at: dt.datetime,
    channels: Iterable[Channel],
) -> list[PlannedDelivery]:
    """The beneficiary hears of each ledger line it earns or loses.

    A distributor override concerns a licence whose partner of record is the
    distributor's reseller, not the distributor: its notice lists no licence,
    so no message to a partner lists an entitlement of another.
    """
    notification_type = COMMISSION_TYPES.get(event_type)
    if notification_type is None:
        return []
    partner_id = line.partner_id
    own_licence = line.role == "partner_of_record"
    listed: tuple[ListedEntitlement, ...] = ()
    if own_licence:
        listed = (
            ListedEntitlement(
                license_key=str(line.license_key),
                product="",
                term_end=None,
                partner_of_record=partner_id,
            ),
        )
    stored = line.model_dump(mode="json")  # the facts are kept as the event carried them
    facts = {k: stored.get(k) for k in COMMISSION_FACTS}
    facts["license_key"] = line.license_key if own_licence else None
    return [
        PlannedDelivery(
            notification_id=notification_id(notification_type, line.line_id, partner_id, channel),
            type=notification_type,
            channel=channel,
            audience="partner",
            recipient=partner_id,
            partner_scope=partner_id,
            entitlements=listed,
            occurred_at=occurred_at,
            facts=facts,
            related_partner_ids=(partner_id,),
        )
        for channel in channels
    ]


def tier_changed_applies(update: PartnerUpdated) -> bool:
    """A `partner.updated` from an earned-tier evaluation tells the partner (CONTRACT 6.4)."""
    return update.tier_reason == "evaluation"


def plan_tier_changed(
    update: PartnerUpdated, occurred_at: dt.datetime, channels: Iterable[Channel]
) -> list[PlannedDelivery]:
    """The partner hears its new tier and since when; one message per tier and instant.

    The subject is the change itself (partner, tier, effective_at), so a
    redelivered event plans nothing new and a later change is its own message.
    """
    partner_id = update.partner_id
    effective_at = format_timestamp(update.effective_at)
    subject = f"{partner_id}/{update.tier}/{effective_at}"
    return [
        PlannedDelivery(
            notification_id=notification_id("tier_changed", subject, partner_id, channel),
            type="tier_changed",
            channel=channel,
            audience="partner",
            recipient=partner_id,
            partner_scope=partner_id,
            entitlements=(),
            occurred_at=occurred_at,
            facts={"tier": update.tier, "effective_at": effective_at},
            related_partner_ids=(partner_id,),
        )
        for channel in channels
    ]


def plan_attribution_changed(
    entitlement: Entitlement,
    previous_partner_id: str | None,
    occurred_at: dt.datetime,
    channels_of: Mapping[str, Iterable[Channel]],
) -> list[PlannedDelivery]:
    """The old partner of record hears it lost the licence (not to whom); the new one, it won it.

    Each message lists the licence under its recipient's scope only.
    """
    new_partner_id = entitlement.partner_of_record
    changes: list[tuple[str, str]] = []
    if previous_partner_id is not None and previous_partner_id != new_partner_id:
        changes.append((previous_partner_id, "lost"))
    if new_partner_id is not None and previous_partner_id != new_partner_id:
        changes.append((new_partner_id, "gained"))
    subject = (
        f"{entitlement.license_key}/{previous_partner_id or '-'}/{new_partner_id or '-'}/"
        f"{occurred_at.isoformat()}"
    )
    plans: list[PlannedDelivery] = []
    for partner_id, change in changes:
        listed = ListedEntitlement(
            license_key=entitlement.license_key,
            product=entitlement.product,
            term_end=entitlement.term_end,
            # The recipient's own view: it is (gained) or was (lost) the PoR.
            partner_of_record=partner_id,
            sku=entitlement.sku,
            org_name=entitlement.customer.org_name if change == "gained" else "",
        )
        for channel in channels_of.get(partner_id, ("email",)):
            plans.append(
                PlannedDelivery(
                    notification_id=notification_id(
                        "attribution_changed", subject, partner_id, channel
                    ),
                    type="attribution_changed",
                    channel=channel,
                    audience="partner",
                    recipient=partner_id,
                    partner_scope=partner_id,
                    entitlements=(listed,),
                    occurred_at=occurred_at,
                    facts={"change": change},
                    related_partner_ids=tuple(
                        p for p in (previous_partner_id, new_partner_id) if p is not None
                    ),
                )
            )
    return plans


# --- helpers ---------------------------------------------------------------------------


def safe_color(value: str | None) -> str | None:
    """A colour goes into a style attribute: only `#rgb` / `#rrggbb` get through."""
    if not value or not value.startswith("#") or len(value) not in (4, 7):
        return None
    return value if all(c in "0123456789abcdefABCDEF" for c in value[1:]) else None


def safe_url(value: str | None) -> str | None:
    """Links and images in a message: https only, no spaces or quotes."""
    if not value or not value.startswith("https://"):
        return None
    if any(c in value for c in " \"'<>\\\n\r\t"):
        return None
    return value


def _partners_of(entitlements: Iterable[Entitlement]) -> tuple[str, ...]:
    return tuple(sorted({e.partner_of_record for e in entitlements if e.partner_of_record}))


def _scope_key(entitlement: Entitlement) -> str:
    return entitlement.partner_of_record or ""


def _by_scope(
    entitlements: Sequence[Entitlement],
) -> list[tuple[str | None, list[Entitlement]]]:
    ordered = sorted(entitlements, key=lambda e: (_scope_key(e), e.license_key))
    return [(key or None, list(group)) for key, group in groupby(ordered, key=_scope_key)]


def _chunks(items: Sequence[Entitlement], size: int) -> list[Sequence[Entitlement]]:
    ordered = sorted(items, key=lambda e: e.license_key)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _keys(listed: Sequence[ListedEntitlement]) -> str:
    return "+".join(e.license_key for e in listed)


DEAL_DECISIONS: Final[frozenset[str]] = frozenset({"deal.approved", "deal.rejected"})
"""The deal events that are an operator's (or the conflict rule's) decision (CONTRACT 6.3)."""

DEAL_FACTS: Final[tuple[str, ...]] = (
    "deal_id",
    "status",
    "reason",
    "product",
    "expected_close",
    "estimated_amount_minor",
    "currency",
    "approved_at",
    "protected_until",
)


def plan_deal_decided(
    deal: DealState, occurred_at: dt.datetime, channels: Iterable[Channel]
) -> list[PlannedDelivery]:
    """The partner hears every decision on its own deal (CONTRACT 6.3), by mail and webhook.

    The facts are the deal's own: its customer, product and status, and for a
    rejection the reason. A `deal_conflict` names nobody: the deal event carries
    no other partner, so neither can the message. Subject: `<deal_id>/<status>`
    (a deal is decided once).
    """
    partner_id = deal.partner_id
    stored = deal.model_dump(mode="json")  # the facts are kept as the event carried them
    facts: dict[str, Any] = {k: stored.get(k) for k in DEAL_FACTS}
    facts["customer_org_name"] = deal.customer.org_name
    subject = f"{deal.deal_id}/{deal.status}"
    return [
        PlannedDelivery(
            notification_id=notification_id("deal_decided", subject, partner_id, channel),
            type="deal_decided",
            channel=channel,
            audience="partner",
            recipient=partner_id,
            partner_scope=partner_id,
            entitlements=(),
            occurred_at=occurred_at,
            facts=facts,
            related_partner_ids=(partner_id,),
        )
        for channel in channels
    ]
