"""The partner-of-record rules (CONTRACT 2.1) as a table, and the 36-month window."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from services.registration.domain.attribution import (
    STRENGTH,
    AttributionSource,
    Claim,
    Outcome,
    PartnerOfRecord,
    decide_attribution,
)

UTC = dt.UTC
SINCE = dt.datetime(2024, 1, 31, 10, 0, tzinfo=UTC)
INSIDE = dt.datetime(2026, 6, 1, tzinfo=UTC)
OUTSIDE = dt.datetime(2027, 1, 31, 10, 0, tzinfo=UTC)  # exactly since + 36 months
EXISTING: list[AttributionSource | None] = [
    None,
    "partner_sale",
    "partner_registration",
    "customer_registration",
    "checkout_seller_code",
    "operator",
]
CLAIMS: list[AttributionSource] = [
    "partner_sale",
    "partner_registration",
    "customer_registration",
    "checkout_seller_code",
]


def expected(
    existing: AttributionSource | None,
    claim: AttributionSource,
    same_partner: bool,
    active: bool,
    inside: bool,
) -> Outcome:
    """The rule in words, independent of the implementation's branch order."""
    if existing is None:
        return Outcome.SET
    stronger = STRENGTH[claim] > STRENGTH[existing]
    if same_partner:
        # The sale refreshes (CONTRACT 3.1); so do a stronger claim and an expired window.
        return (
            Outcome.REFRESH if claim == "partner_sale" or stronger or not inside else Outcome.NOOP
        )
    # "A weaker or equal claim for a different partner does not replace a PoR that is
    # active and inside its window"; "a partner-channel sale by another reseller does".
    if claim == "partner_sale" or not active:
        return Outcome.REPLACE
    # CONTRACT 6.9: a partner registration against another active partner is a conflict,
    # whatever the window and the strength of the claim in place.
    if claim == "partner_registration":
        return Outcome.CONFLICT
    if not inside or stronger:
        return Outcome.REPLACE
    return Outcome.CONFLICT


CASES = list(itertools.product(EXISTING, CLAIMS, [True, False], [True, False], [True, False]))


@pytest.mark.parametrize(("existing", "claim", "same_partner", "active", "inside"), CASES)
def test_partner_of_record_table(
    existing: AttributionSource | None,
    claim: AttributionSource,
    same_partner: bool,
    active: bool,
    inside: bool,
) -> None:
    current = PartnerOfRecord("P-A", SINCE, existing) if existing is not None else None
    at = INSIDE if inside else OUTSIDE
    new = Claim("P-A" if same_partner else "P-B", claim, at, "order", "O-1/1")
    decision = decide_attribution(current, current_active=active, claim=new, window_months=36)
    assert decision.outcome is expected(existing, claim, same_partner, active, inside)
    assert decision.reason


def test_table_has_the_contract_examples() -> None:
    held = PartnerOfRecord("P-A", SINCE, "partner_registration")
    # A customer's seller code for B while A's registration holds: conflict, not applied.
    code = Claim("P-B", "customer_registration", INSIDE, "customer_registration", "r")
    assert decide_attribution(held, current_active=True, claim=code, window_months=36).outcome is (
        Outcome.CONFLICT
    )
    # Another reseller's sale: the customer switched providers.
    sale = Claim("P-B", "partner_sale", INSIDE, "order", "o")
    assert decide_attribution(held, current_active=True, claim=sale, window_months=36).outcome is (
        Outcome.REPLACE
    )


# The window's arithmetic: tests/unit/shared/test_calendar.py.


def test_month_end_clamp_decides_a_claim_at_the_clamped_instant() -> None:
    current = PartnerOfRecord(
        "P-A", dt.datetime(2023, 1, 31, 10, tzinfo=UTC), "checkout_seller_code"
    )

    def outcome(at: dt.datetime) -> Outcome:
        claim = Claim("P-B", "checkout_seller_code", at, "order", "o")
        return decide_attribution(
            current, current_active=True, claim=claim, window_months=13
        ).outcome

    # 2023-01-31 + 13 months = 2024-02-29 10:00 (leap year, clamped)
    assert outcome(dt.datetime(2024, 2, 29, 9, 59, 59, tzinfo=UTC)) is Outcome.CONFLICT
    assert outcome(dt.datetime(2024, 2, 29, 10, 0, tzinfo=UTC)) is Outcome.REPLACE
