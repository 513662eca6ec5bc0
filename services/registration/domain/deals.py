"""Deal registration (CONTRACT 6.3): who a deal protects, for how long, and what closes it.

Pure rules. A partner registers a deal for a (customer, product) before it
sells; an operator approves it, and from approval the deal protects
(partner, customer, product) for `DEAL_PROTECTION_DAYS`. While it does, another
partner's deal for the same customer and product is rejected at once
(`deal_conflict`, naming nobody), and a direct `new` order line for them makes
the deal's partner the partner of record and the deal `won`. An approved deal
that nobody won is `expired` once its protection ends.

Customers match by `customer_id` when the deal gives one, else by the contact
e-mail, compared case-insensitively.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from shared.events import DealStatus

__all__ = [
    "DEAL_CONFLICT",
    "Deal",
    "DealCustomer",
    "DealStatus",
    "expiry_cutoff",
    "same_customer",
]

DEAL_CONFLICT: Final = "deal_conflict"
"""The rejection reason of a deal another partner's approved deal already covers."""


def _folded(email: str) -> str:
    return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class DealCustomer:
    customer_id: str | None
    org_name: str
    email: str
    country: str

    def matches(self, customer_id: str | None, email: str) -> bool:
        """Is the customer (`customer_id`, `email`) of an order or another deal this one?

        By id when this deal gives one and the other side has one too; else by
        e-mail, case-insensitively.
        """
        if self.customer_id and customer_id:
            return self.customer_id == customer_id
        return _folded(self.email) == _folded(email)


def same_customer(a: DealCustomer, b: DealCustomer) -> bool:
    """Two deals for one customer: by id when both give one, else by e-mail."""
    return a.matches(b.customer_id, b.email)


def expiry_cutoff(as_of: dt.date) -> dt.datetime:
    """`as_of=YYYY-MM-DD` means the end of that day, UTC (CONTRACT 1)."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


class DealStateError(Exception):
    """A decision that does not apply to the deal's status (e.g. approving a won deal)."""


@dataclass
class Deal:
    deal_id: str
    partner_id: str
    customer: DealCustomer
    product: str
    expected_close: dt.date
    estimated_amount_minor: int
    currency: str
    submitted_at: dt.datetime
    status: DealStatus = "submitted"
    approved_at: dt.datetime | None = None
    protected_until: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    reason: str | None = None
    order_id: str | None = None
    closed_at: dt.datetime | None = None
    version: int = 0

    def protects(self, customer_id: str | None, email: str, product: str, at: dt.datetime) -> bool:
        """Does this deal protect that (customer, product) at business time `at`?"""
        return (
            self.status == "approved"
            and self.product == product
            and self.approved_at is not None
            and self.protected_until is not None
            and self.approved_at <= at < self.protected_until
            and self.customer.matches(customer_id, email)
        )

    def conflicts_with(self, other: Deal, at: dt.datetime) -> bool:
        """Is `other` another partner's deal that protects this deal's (customer, product)?"""
        return (
            other.deal_id != self.deal_id
            and other.partner_id != self.partner_id
            and other.protects(self.customer.customer_id, self.customer.email, self.product, at)
        )

    def approve(self, now: dt.datetime, protection_days: int) -> None:
        self._require("submitted")
        self.status = "approved"
        self.approved_at = now
        self.decided_at = now
        self.protected_until = now + dt.timedelta(days=protection_days)

    def reject(self, reason: str, now: dt.datetime) -> None:
        self._require("submitted")
        self.status = "rejected"
        self.reason = reason
        self.decided_at = now

    def win(self, order_id: str, at: dt.datetime) -> None:
        self._require("approved")
        self.status = "won"
        self.order_id = order_id
        self.closed_at = at

    def expire(self, cutoff: dt.datetime) -> bool:
        """Expire if approved, unwon, and its protection ended by `cutoff`; False if not due."""
        if self.status != "approved" or self.protected_until is None:
            return False
        if self.protected_until > cutoff:
            return False
        self.status = "expired"
        self.closed_at = self.protected_until
        return True

    def _require(self, status: DealStatus) -> None:
        if self.status != status:
            raise DealStateError(f"deal is {self.status}, not {status}")
