"""The value types the notification rules work on: partners, entitlements, planned deliveries.

Plain frozen dataclasses, no I/O. The projections in the database and the
events on the wire are mapped to these at the edges.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shared.ids import derive_id

NotificationType = Literal[
    "welcome",
    "renewal_reminder",
    "renewal_opportunity",
    "security_advisory",
    "advisory_partner_digest",
    "product_notice",
    "notice_partner_digest",
    "commission_earned",
    "commission_reversed",
    "attribution_changed",
    "contact_confirmation",
    "deal_decided",
    "customer_sign_in",
    "tier_changed",
]
Channel = Literal["email", "webhook"]
Audience = Literal["customer", "partner"]
PartnerStatus = Literal["active", "suspended", "terminated"]
# CONTRACT 6.1: whom the vendor steers a renewing customer to.
RenewalMode = Literal["partner_first", "partner_only", "vendor_direct"]
DEFAULT_RENEWAL_MODE: Final[RenewalMode] = "partner_first"

NOTIFICATION_TYPES: Final[tuple[NotificationType, ...]] = (
    "welcome",
    "renewal_reminder",
    "renewal_opportunity",
    "security_advisory",
    "advisory_partner_digest",
    "product_notice",
    "notice_partner_digest",
    "commission_earned",
    "commission_reversed",
    "attribution_changed",
    "contact_confirmation",
    "deal_decided",
    "customer_sign_in",
    "tier_changed",
)
CUSTOMER_TYPES: Final[frozenset[NotificationType]] = frozenset(
    {
        "welcome",
        "renewal_reminder",
        "security_advisory",
        "product_notice",
        "contact_confirmation",
        "customer_sign_in",
    }
)
PARTNER_TYPES: Final[frozenset[NotificationType]] = frozenset(
    set(NOTIFICATION_TYPES) - CUSTOMER_TYPES
)
ADVISORY_TYPES: Final[frozenset[NotificationType]] = frozenset(
    {"security_advisory", "advisory_partner_digest"}
)
SECURITY_TYPES: Final[frozenset[NotificationType]] = ADVISORY_TYPES | {
    "contact_confirmation",
    "customer_sign_in",
}
"""Sent whatever a contact's e-mail preferences: advisories, the link that guards
a licence's contact against a change (CONTRACT 6.9), and the sign-in link a
customer asked for (transactional, CONTRACT 6.2)."""
NOTICE_TYPES: Final[frozenset[NotificationType]] = frozenset(
    {"product_notice", "notice_partner_digest"}
)
# Sent from an announcement the vendor published (advisory or product notice): the
# message needs its text, kept in the fan-out job under `announcement_key`.
ANNOUNCEMENT_TYPES: Final[frozenset[NotificationType]] = ADVISORY_TYPES | NOTICE_TYPES
NOTICE_KEY_PREFIX: Final[str] = "notice/"


def notice_key(notice_id: str) -> str:
    """Where a product notice's fan-out job is kept: apart from advisories' ids."""
    return f"{NOTICE_KEY_PREFIX}{notice_id}"


def announcement_key(facts: Mapping[str, Any]) -> str | None:
    """The fan-out job a planned delivery's text comes from, or None."""
    if facts.get("notice_id"):
        return notice_key(str(facts["notice_id"]))
    if facts.get("advisory_id"):
        return str(facts["advisory_id"])
    return None


def contact_id(email: str) -> str:
    """A stable, opaque id for an e-mail contact: keys unsubscribes and groups messages.

    Addresses compare case-insensitively here; the id is what travels in links and
    logs, never the address.
    """
    return derive_id("contact", email.strip().lower())


@dataclass(frozen=True, slots=True)
class Branding:
    """Whose brand a message carries. `partner_id` None means the vendor's own."""

    name: str
    color: str
    logo_url: str | None = None
    phone: str | None = None
    website: str | None = None
    partner_id: str | None = None

    @property
    def is_partner(self) -> bool:
        return self.partner_id is not None


@dataclass(frozen=True, slots=True)
class Vendor:
    """The vendor's own brand and addresses (from settings)."""

    name: str
    website: str
    logo_url: str
    color: str
    support_email: str
    renew_url: str
    phone: str | None = None
    contact_confirmation_url: str = "https://vendor.example/contact-confirmation"
    # The portal's customer sign-in page (CONTRACT 6.2); the token goes in the fragment.
    customer_sign_in_url: str = "http://127.0.0.1:8004/customer/sign-in"

    def branding(self) -> Branding:
        return Branding(
            name=self.name,
            color=self.color,
            logo_url=self.logo_url,
            phone=self.phone,
            website=self.website,
            partner_id=None,
        )


@dataclass(frozen=True, slots=True)
class PartnerTerms:
    """What a partner.* event said was in force from `effective_at` on (status and mode)."""

    effective_at: dt.datetime
    status: PartnerStatus
    renewal_mode: RenewalMode


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner as the registration service last described it.

    `terms` is the effective-dated history of its status and renewal mode, one entry
    per partner.* event, sorted by `effective_at`: the reminder pass asks it for the
    terms in force at its `as_of` (CONTRACT 6.1), not for the latest.
    """

    partner_id: str
    display_name: str
    legal_name: str
    status: PartnerStatus
    co_brand_customer_messages: bool
    contact_email: str
    seller_code: str | None = None
    logo_url: str | None = None
    color: str | None = None
    phone: str | None = None
    website: str | None = None
    renewal_mode: RenewalMode = DEFAULT_RENEWAL_MODE
    terms: tuple[PartnerTerms, ...] = ()

    @property
    def active(self) -> bool:
        return self.status == "active"

    def terms_at(self, at: dt.datetime) -> PartnerTerms:
        """The terms in force at `at`; before the first entry the first applies (as in
        registration); without any history, the partner as last described."""
        if not self.terms:
            return PartnerTerms(at, self.status, self.renewal_mode)
        index = bisect.bisect_right([t.effective_at for t in self.terms], at) - 1
        return self.terms[max(index, 0)]

    def identity_markers(self) -> tuple[str, ...]:
        """Everything that would name this partner in a message (CONTRACT 4).

        The isolation check matches these as whole tokens (`isolation.markers_of`).
        """
        markers = [
            self.partner_id,
            self.display_name,
            self.legal_name,
            self.seller_code,
            self.contact_email,
            self.phone,
            host_of(self.website),
        ]
        # Very short strings ("IT") would match ordinary words; ids and codes are long.
        return tuple(m for m in dict.fromkeys(markers) if m and len(m.strip()) >= 4)


def host_of(url: str | None) -> str | None:
    """The host of a partner's or the vendor's website, without `www.`."""
    if not url:
        return None
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return host.removeprefix("www.") or None


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    org_name: str
    contact_name: str
    email: str

    @property
    def contact_id(self) -> str:
        return contact_id(self.email)


@dataclass(frozen=True, slots=True)
class Entitlement:
    """An entitlement as it now stands, with its partner of record (or None)."""

    license_key: str
    product: str
    sku: str
    term_end: dt.date
    customer: Customer
    partner_of_record: str | None


@dataclass(frozen=True, slots=True)
class ListedEntitlement:
    """An entitlement as a message lists it, with the PoR it was listed under."""

    license_key: str
    product: str
    term_end: dt.date | None
    partner_of_record: str | None
    sku: str = ""
    org_name: str = ""

    @classmethod
    def of(cls, entitlement: Entitlement) -> ListedEntitlement:
        return cls(
            license_key=entitlement.license_key,
            product=entitlement.product,
            term_end=entitlement.term_end,
            partner_of_record=entitlement.partner_of_record,
            sku=entitlement.sku,
            org_name=entitlement.customer.org_name,
        )


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """One notification on one channel to one recipient, decided but not yet sent.

    `recipient` is the customer's e-mail address for customer messages and the
    partner's id for partner-facing ones (its address or webhook is looked up
    when sending). `partner_scope` is the partner of record whose entitlements
    the message lists (customer messages) or the partner it goes to.
    """

    notification_id: str
    type: NotificationType
    channel: Channel
    audience: Audience
    recipient: str
    partner_scope: str | None
    entitlements: tuple[ListedEntitlement, ...]
    occurred_at: dt.datetime
    facts: Mapping[str, Any] = field(default_factory=dict)
    related_partner_ids: tuple[str, ...] = ()
    contact_name: str = ""
    org_name: str = ""

    @property
    def license_keys(self) -> list[str]:
        return [e.license_key for e in self.entitlements]

    @property
    def contact_id(self) -> str | None:
        return contact_id(self.recipient) if self.audience == "customer" else None


def notification_id(
    notification_type: NotificationType, subject: str, recipient: str, channel: Channel
) -> str:
    """`uuid5(NS, "<type>/<subject>/<recipient>/<channel>")` (CONTRACT 1 and 4).

    Customer recipients enter by contact id, so the id does not embed an address.
    """
    return derive_id(notification_type, subject, recipient, channel)
