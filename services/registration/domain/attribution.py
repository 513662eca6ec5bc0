"""Who is the partner of record (CONTRACT 2.1): claim strengths, the window, the decision.

Pure rules. A *claim* says "partner P should be partner of record of this
entitlement, because of S at time T"; `decide_attribution` compares it with the partner of
record in place and answers set / replace / refresh / conflict / noop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from shared.calendar import in_attribution_window
from shared.events import AttributionSource

__all__ = [
    "STRENGTH",
    "AttributionDecision",
    "AttributionSource",
    "Claim",
    "Outcome",
    "PartnerOfRecord",
    "decide_attribution",
]

STRENGTH: Final[dict[AttributionSource, int]] = {
    "partner_sale": 3,
    "partner_registration": 2,
    # An operator's reassignment is a deliberate decision: only a partner-channel
    # sale (the customer switched providers) or expiry displaces it.
    "operator": 2,
    # CONTRACT 6.3: a direct order for a (customer, product) the partner's approved
    # deal protects, "as strong as a partner registration".
    "deal_registration": 2,
    "customer_registration": 1,
    "checkout_seller_code": 1,
}
"""Strength of a claim by its source; a higher number wins (CONTRACT 2.1)."""

ViaKind = Literal["order", "customer_registration", "partner_registration", "operator", "customer"]
"""`customer`: the customer in self-service (CONTRACT 6.2)."""


@dataclass(frozen=True, slots=True)
class PartnerOfRecord:
    partner_id: str
    since: dt.datetime
    source: AttributionSource


@dataclass(frozen=True, slots=True)
class Claim:
    """A reason to make `partner_id` partner of record, at business time `at`."""

    partner_id: str
    source: AttributionSource
    at: dt.datetime
    via: ViaKind
    ref: str


class Outcome(StrEnum):
    SET = "set"
    REPLACE = "replace"
    REFRESH = "refresh"
    CONFLICT = "conflict"
    NOOP = "noop"

    @property
    def applies(self) -> bool:
        """True when the claim becomes the partner of record."""
        return self in (Outcome.SET, Outcome.REPLACE, Outcome.REFRESH)


@dataclass(frozen=True, slots=True)
class AttributionDecision:
    outcome: Outcome
    reason: str


def decide_attribution(
    current: PartnerOfRecord | None,
    *,
    current_active: bool,
    claim: Claim,
    window_months: int,
) -> AttributionDecision:
    """What `claim` does to the partner of record `current`.

    `current_active` is whether the current partner of record's status was
    `active` at `claim.at`. For a different partner, a partner-channel sale
    always replaces; a partner registration never takes a licence from another
    partner that is active (CONTRACT 6.9: window and strength aside, that is a
    takeover by licence key); any other claim replaces a partner of record that
    is inactive or outside its window, or that a stronger claim beats; otherwise
    the claim is a conflict for an operator. For the same partner, a partner-channel sale, a
    stronger claim or an expired window refresh `since`; anything else changes
    nothing.
    """
    if current is None:
        return AttributionDecision(Outcome.SET, "no_partner_of_record")
    inside = in_attribution_window(current.since, claim.at, window_months)
    stronger = STRENGTH[claim.source] > STRENGTH[current.source]
    if claim.partner_id == current.partner_id:
        if claim.source == "partner_sale":
            return AttributionDecision(Outcome.REFRESH, "partner_sale")
        if not inside:
            return AttributionDecision(Outcome.REFRESH, "window_expired")
        if stronger:
            return AttributionDecision(Outcome.REFRESH, "stronger_claim")
        return AttributionDecision(Outcome.NOOP, "already_partner_of_record")
    if claim.source == "partner_sale":
        return AttributionDecision(Outcome.REPLACE, "partner_sale")
    if not current_active:
        return AttributionDecision(Outcome.REPLACE, "partner_of_record_inactive")
    if claim.source == "partner_registration":
        return AttributionDecision(Outcome.CONFLICT, "attributed_elsewhere")
    if not inside:
        return AttributionDecision(Outcome.REPLACE, "window_expired")
    if stronger:
        return AttributionDecision(Outcome.REPLACE, "stronger_claim")
    return AttributionDecision(Outcome.CONFLICT, "weaker_or_equal_claim")
