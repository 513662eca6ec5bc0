"""Entitlements: what an order line does to one, registrations, and attribution history.

An entitlement is one licence (`license_key`) with its term, its customer and
its partner of record. Every change of the partner of record is appended to
`attribution_history` (who, when, by which claim, through which order or
request), which is what an operator sees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from services.registration.domain.attribution import (
    AttributionDecision,
    AttributionSource,
    Claim,
    Outcome,
    PartnerOfRecord,
    ViaKind,
)
from services.registration.domain.customers import PartnerAccess, Permission
from shared.events import LineKind

__all__ = [
    "AttributionChange",
    "AttributionConflict",
    "CustomerInfo",
    "CustomerRegistration",
    "Entitlement",
    "LineFacts",
    "PendingContact",
    "same_contact",
]

ChangeKind = Literal["set", "replace", "refresh", "reassign", "clear"]


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    customer_id: str
    org_name: str
    contact_name: str
    email: str
    country: str


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What an order line says about its entitlement."""

    kind: LineKind
    license_key: str
    sku: str
    product: str
    term_start: dt.date
    term_end: dt.date


@dataclass(frozen=True, slots=True)
class AttributionChange:
    """One change of the partner of record, as the admin history shows it."""

    at: dt.datetime
    recorded_at: dt.datetime
    kind: ChangeKind
    partner_of_record: PartnerOfRecord | None
    previous_partner_id: str | None
    via: ViaKind
    ref: str
    reason: str


@dataclass(frozen=True, slots=True)
class AttributionConflict:
    """A claim that was not applied because a stronger or equal one holds."""

    conflict_id: str
    license_key: str
    claimant_partner_id: str
    claim_source: AttributionSource
    claimed_at: dt.datetime
    via: ViaKind
    ref: str
    partner_of_record: PartnerOfRecord
    reason: str
    recorded_at: dt.datetime


def same_contact(a: str, b: str) -> bool:
    """Two e-mail addresses name the same contact (case and surrounding space aside)."""
    return a.strip().casefold() == b.strip().casefold()


@dataclass
class PendingContact:
    """A contact a public registration asked for, until the contact in place confirms it.

    CONTRACT 6.9: a registration never replaces the contact checkout supplied;
    only the one-time link mailed to that contact does. Only the token's hash is kept.
    """

    customer: CustomerInfo
    token_hash: str
    requested_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class CustomerRegistration:
    registered_at: dt.datetime
    token_hash: str
    seller_code: str | None = None
    seller_code_at: dt.datetime | None = None


@dataclass
class Entitlement:
    license_key: str
    product: str
    sku: str
    term_start: dt.date
    term_end: dt.date
    customer: CustomerInfo
    created_at: dt.datetime
    partner_of_record: PartnerOfRecord | None = None
    registration: CustomerRegistration | None = None
    registered_by_partners: list[str] = field(default_factory=list)
    attribution_history: list[AttributionChange] = field(default_factory=list)
    pending_contact: PendingContact | None = None
    # Partners the customer let see or manage the licence (CONTRACT 6.2), never its PoR.
    access: list[PartnerAccess] = field(default_factory=list)
    version: int = 0

    @classmethod
    def from_line(cls, line: LineFacts, customer: CustomerInfo, now: dt.datetime) -> Entitlement:
        return cls(
            license_key=line.license_key,
            product=line.product,
            sku=line.sku,
            term_start=line.term_start,
            term_end=line.term_end,
            customer=customer,
            created_at=now,
        )

    # --- order lines -----------------------------------------------------------

    def apply_line(self, line: LineFacts, customer: CustomerInfo) -> bool:
        """Apply a line of an order to an existing entitlement; True if it changed.

        A renewal (or a repeated `new`) that ends later takes over the term and
        the product; one that ends earlier (a late, older order) never shortens
        it. An upgrade changes the product and may extend the end.
        """
        before = self._terms()
        if line.kind == "upgrade":
            self.product, self.sku = line.product, line.sku
            self.term_end = max(self.term_end, line.term_end)
        elif line.term_end > self.term_end:
            self.term_start, self.term_end = line.term_start, line.term_end
            self.product, self.sku = line.product, line.sku
        self.customer = customer
        return self._terms() != before

    def _terms(self) -> tuple[object, ...]:
        return (self.product, self.sku, self.term_start, self.term_end, self.customer)

    # --- attribution -----------------------------------------------------------

    def apply_claim(
        self, claim: Claim, decision: AttributionDecision, recorded_at: dt.datetime
    ) -> AttributionChange | None:
        """Make the claim's partner partner of record when `decision` says so."""
        if not decision.outcome.applies:
            return None
        kind: ChangeKind = "refresh" if decision.outcome is Outcome.REFRESH else "set"
        if decision.outcome is Outcome.REPLACE:
            kind = "replace"
        por = PartnerOfRecord(claim.partner_id, claim.at, claim.source)
        return self._record(
            AttributionChange(
                at=claim.at,
                recorded_at=recorded_at,
                kind=kind,
                partner_of_record=por,
                previous_partner_id=self._current_partner_id(),
                via=claim.via,
                ref=claim.ref,
                reason=decision.reason,
            )
        )

    def reassign(
        self, partner_id: str | None, *, reason: str, ref: str, now: dt.datetime
    ) -> AttributionChange:
        """An operator sets (or clears) the partner of record; always recorded."""
        por = PartnerOfRecord(partner_id, now, "operator") if partner_id is not None else None
        return self._record(
            AttributionChange(
                at=now,
                recorded_at=now,
                kind="reassign" if partner_id is not None else "clear",
                partner_of_record=por,
                previous_partner_id=self._current_partner_id(),
                via="operator",
                ref=ref,
                reason=reason,
            )
        )

    def end_partner_of_record(self, *, ref: str, now: dt.datetime) -> AttributionChange | None:
        """The customer ends the partner of record (CONTRACT 6.2); None if there is none.

        Recorded as a `clear` with reason `customer_removed`; until a new claim,
        nobody is partner of record, so later direct orders earn nobody.
        """
        if self.partner_of_record is None:
            return None
        return self._record(
            AttributionChange(
                at=now,
                recorded_at=now,
                kind="clear",
                partner_of_record=None,
                previous_partner_id=self._current_partner_id(),
                via="customer",
                ref=ref,
                reason="customer_removed",
            )
        )

    def grant_access(self, partner_id: str, permission: Permission, now: dt.datetime) -> bool:
        """Give `partner_id` access (replacing its permission); True if anything changed."""
        for index, current in enumerate(self.access):
            if current.partner_id == partner_id:
                if current.permission == permission:
                    return False
                self.access[index] = PartnerAccess(partner_id, permission, now)
                return True
        self.access.append(PartnerAccess(partner_id, permission, now))
        return True

    def revoke_access(self, partner_id: str) -> bool:
        """Take `partner_id`'s access away; True if it had any."""
        kept = [a for a in self.access if a.partner_id != partner_id]
        changed = len(kept) != len(self.access)
        self.access = kept
        return changed

    def access_of(self, partner_id: str) -> PartnerAccess | None:
        return next((a for a in self.access if a.partner_id == partner_id), None)

    def conflict(
        self,
        claim: Claim,
        decision: AttributionDecision,
        *,
        conflict_id: str,
        recorded_at: dt.datetime,
    ) -> AttributionConflict | None:
        """The conflict record for a claim that was refused, else None."""
        if decision.outcome is not Outcome.CONFLICT or self.partner_of_record is None:
            return None
        return AttributionConflict(
            conflict_id=conflict_id,
            license_key=self.license_key,
            claimant_partner_id=claim.partner_id,
            claim_source=claim.source,
            claimed_at=claim.at,
            via=claim.via,
            ref=claim.ref,
            partner_of_record=self.partner_of_record,
            reason=decision.reason,
            recorded_at=recorded_at,
        )

    def _current_partner_id(self) -> str | None:
        return self.partner_of_record.partner_id if self.partner_of_record else None

    def _record(self, change: AttributionChange) -> AttributionChange:
        self.partner_of_record = change.partner_of_record
        self.attribution_history.append(change)
        return change

    def partner_of_record_at(self, at: dt.datetime) -> PartnerOfRecord | None:
        """The partner of record as it stood at business time `at`.

        The current one if it was in place by then; otherwise the latest change
        (in the order they were made) that took effect by `at`; None before any.
        """
        if self.partner_of_record is not None and self.partner_of_record.since <= at:
            return self.partner_of_record
        for change in reversed(self.attribution_history):
            if change.at <= at:
                return change.partner_of_record
        return None

    # --- registrations ---------------------------------------------------------

    @property
    def is_registered(self) -> bool:
        return self.registration is not None

    def register_customer(
        self,
        customer: CustomerInfo | None,
        token_hash: str,
        seller_code: str | None,
        now: dt.datetime,
    ) -> None:
        if customer is not None:
            self.customer = customer
        self.registration = CustomerRegistration(
            registered_at=now,
            token_hash=token_hash,
            seller_code=seller_code,
            seller_code_at=now if seller_code is not None else None,
        )

    def request_contact(
        self, customer: CustomerInfo, token_hash: str, now: dt.datetime, ttl: dt.timedelta
    ) -> None:
        """Keep `customer` pending (a later request replaces an earlier one and its link)."""
        self.pending_contact = PendingContact(customer, token_hash, now, now + ttl)

    def confirm_contact(self, now: dt.datetime) -> bool:
        """The pending contact becomes the customer's contact; False if none or expired.

        The customer id stays: the account is the same, only whom to write to changes.
        """
        pending = self.pending_contact
        if pending is None or now >= pending.expires_at:
            return False
        self.customer = CustomerInfo(
            customer_id=self.customer.customer_id,
            org_name=pending.customer.org_name,
            contact_name=pending.customer.contact_name,
            email=pending.customer.email,
            country=pending.customer.country,
        )
        self.pending_contact = None
        return True

    def late_seller_code_deadline(self, days: int) -> dt.datetime | None:
        if self.registration is None:
            return None
        return self.registration.registered_at + dt.timedelta(days=days)

    def add_seller_code(self, seller_code: str, now: dt.datetime) -> None:
        if self.registration is None:
            raise ValueError("not registered")
        self.registration.seller_code = seller_code
        self.registration.seller_code_at = now

    def register_by_partner(self, partner_id: str) -> bool:
        """Remember that `partner_id` registered this licence; True the first time."""
        if partner_id in self.registered_by_partners:
            return False
        self.registered_by_partners.append(partner_id)
        return True
