"""Partners: the directory entry with its effective-dated tier, status and renewal-mode history.

"The tier in force at time T" is answered from the history, so an order is
judged by the partner as it stood when it was placed, not when it was read.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from shared.events import (
    DEFAULT_RENEWAL_MODE,
    PartnerStatus,
    PartnerTier,
    PartnerType,
    RenewalMode,
)

__all__ = [
    "AUDIT_KEPT",
    "AuditEntry",
    "Branding",
    "Change",
    "Partner",
    "PartnerError",
    "PartnerStatus",
    "PartnerTier",
    "PartnerType",
    "RenewalMode",
]

# The partner document keeps its most recent audit entries only (GET /v1/partner/audit
# lists them); the partner.* events on the topic are the full record.
AUDIT_KEPT = 100

ValueT = TypeVar("ValueT", bound=str)


class PartnerError(Exception):
    """A change the partner rules refuse; `code` is stable, `field` names the input."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Change(Generic[ValueT]):
    """One entry of a history: `value` is in force from `effective_at` on."""

    value: ValueT
    effective_at: dt.datetime
    recorded_at: dt.datetime


def _value_at(history: list[Change[ValueT]], at: dt.datetime) -> ValueT:
    # Before the first entry the first value applies: an order placed moments
    # before the partner was entered is judged by the partner's initial terms.
    if not history:
        raise ValueError("empty history")
    times = [c.effective_at for c in history]
    index = bisect.bisect_right(times, at) - 1
    return history[max(index, 0)].value


def _insert(history: list[Change[ValueT]], change: Change[ValueT]) -> None:
    # Sorted by effective_at; of equal instants the one recorded last wins.
    times = [c.effective_at for c in history]
    history.insert(bisect.bisect_right(times, change.effective_at), change)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who changed what on the partner and when (CONTRACT 6.7: key id, never the key)."""

    action: str
    actor: str
    at: dt.datetime
    before: str | None
    after: str | None
    effective_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Branding:
    logo_url: str | None = None
    color: str | None = None
    phone: str | None = None
    website: str | None = None


@dataclass
class Partner:
    partner_id: str
    display_name: str
    legal_name: str
    type: PartnerType
    parent_partner_id: str | None
    contact_email: str
    branding: Branding
    co_brand_customer_messages: bool
    customer_ids: list[str]
    seller_code: str
    api_key_hash: str
    created_at: dt.datetime
    effective_at: dt.datetime
    tier_history: list[Change[PartnerTier]] = field(default_factory=list)
    status_history: list[Change[PartnerStatus]] = field(default_factory=list)
    # Empty for partners stored before CONTRACT 6.1: they are on the default mode.
    renewal_mode_history: list[Change[RenewalMode]] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    version: int = 0

    @classmethod
    def enroll(
        cls,
        *,
        partner_id: str,
        display_name: str,
        legal_name: str,
        type: PartnerType,
        tier: PartnerTier,
        parent: Partner | None,
        contact_email: str,
        branding: Branding,
        co_brand_customer_messages: bool,
        customer_ids: list[str],
        seller_code: str,
        api_key_hash: str,
        effective_at: dt.datetime,
        now: dt.datetime,
        renewal_mode: RenewalMode = DEFAULT_RENEWAL_MODE,
    ) -> Partner:
        if parent is not None and parent.type != "distributor":
            raise PartnerError(
                "invalid_parent", "parent_partner_id must be a distributor", "parent_partner_id"
            )
        return cls(
            partner_id=partner_id,
            display_name=display_name,
            legal_name=legal_name,
            type=type,
            parent_partner_id=parent.partner_id if parent is not None else None,
            contact_email=contact_email,
            branding=branding,
            co_brand_customer_messages=co_brand_customer_messages,
            customer_ids=list(dict.fromkeys(customer_ids)),
            seller_code=seller_code,
            api_key_hash=api_key_hash,
            created_at=now,
            effective_at=effective_at,
            tier_history=[Change(tier, effective_at, now)],
            status_history=[Change("active", effective_at, now)],
            renewal_mode_history=[Change(renewal_mode, effective_at, now)],
        )

    def tier_at(self, at: dt.datetime) -> PartnerTier:
        return _value_at(self.tier_history, at)

    def status_at(self, at: dt.datetime) -> PartnerStatus:
        return _value_at(self.status_history, at)

    def renewal_mode_at(self, at: dt.datetime) -> RenewalMode:
        if not self.renewal_mode_history:
            return DEFAULT_RENEWAL_MODE
        return _value_at(self.renewal_mode_history, at)

    def is_active_at(self, at: dt.datetime) -> bool:
        return self.status_at(at) == "active"

    @property
    def latest_status(self) -> PartnerStatus:
        return self.status_history[-1].value

    def change_tier(self, tier: PartnerTier, effective_at: dt.datetime, now: dt.datetime) -> bool:
        if self.tier_at(effective_at) == tier:
            return False
        _insert(self.tier_history, Change(tier, effective_at, now))
        return True

    def change_renewal_mode(
        self,
        mode: RenewalMode,
        effective_at: dt.datetime,
        now: dt.datetime,
        *,
        actor: str,
    ) -> bool:
        """Effective-dated like the tier (CONTRACT 6.1); audited with who asked for it."""
        before = self.renewal_mode_at(effective_at)
        if before == mode:
            return False
        if not self.renewal_mode_history:
            # The implicit default becomes explicit from the partner's first terms on,
            # so the change below does not reach back before `effective_at`.
            first = self.tier_history[0].effective_at if self.tier_history else effective_at
            self.renewal_mode_history.append(Change(DEFAULT_RENEWAL_MODE, first, now))
        _insert(self.renewal_mode_history, Change(mode, effective_at, now))
        self.record(
            AuditEntry(
                action="renewal_mode.changed",
                actor=actor,
                at=now,
                before=before,
                after=mode,
                effective_at=effective_at,
            )
        )
        return True

    def record(self, entry: AuditEntry) -> None:
        self.audit.append(entry)
        del self.audit[:-AUDIT_KEPT]

    def change_status(
        self, status: PartnerStatus, effective_at: dt.datetime, now: dt.datetime
    ) -> bool:
        if self.status_at(effective_at) == status:
            return False
        if self.latest_status == "terminated":
            raise PartnerError(
                "partner_terminated", "a terminated partner cannot change status", "status"
            )
        _insert(self.status_history, Change(status, effective_at, now))
        return True

    def change_details(
        self,
        *,
        display_name: str | None = None,
        legal_name: str | None = None,
        contact_email: str | None = None,
        branding: dict[str, str | None] | None = None,
        co_brand_customer_messages: bool | None = None,
        customer_ids: list[str] | None = None,
    ) -> bool:
        """Apply the given fields (None leaves a field as is); True if anything changed."""
        before = (
            self.display_name,
            self.legal_name,
            self.contact_email,
            self.branding,
            self.co_brand_customer_messages,
            self.customer_ids,
        )
        if display_name is not None:
            self.display_name = display_name
        if legal_name is not None:
            self.legal_name = legal_name
        if contact_email is not None:
            self.contact_email = contact_email
        if branding is not None:
            # Branding is merged: fields not sent stay; an explicit null clears one.
            self.branding = replace(self.branding, **branding)
        if co_brand_customer_messages is not None:
            self.co_brand_customer_messages = co_brand_customer_messages
        if customer_ids is not None:
            self.customer_ids = list(dict.fromkeys(customer_ids))
        after = (
            self.display_name,
            self.legal_name,
            self.contact_email,
            self.branding,
            self.co_brand_customer_messages,
            self.customer_ids,
        )
        return before != after
