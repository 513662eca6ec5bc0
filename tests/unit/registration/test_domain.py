"""Partners' effective-dated history and what order lines and claims do to an entitlement."""

from __future__ import annotations

import datetime as dt

import pytest

from services.registration.domain.attribution import (
    AttributionDecision,
    Claim,
    Outcome,
    PartnerOfRecord,
)
from services.registration.domain.entitlements import CustomerInfo, Entitlement, LineFacts
from services.registration.domain.partners import Branding, Partner, PartnerError

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def partner(type: str = "var", parent: Partner | None = None) -> Partner:
    return Partner.enroll(
        partner_id="P-1",
        display_name="Nordlicht IT",
        legal_name="Nordlicht IT GmbH",
        type=type,  # type: ignore[arg-type]
        tier="silver",
        parent=parent,
        contact_email="p@nordlicht.example",
        branding=Branding(),
        co_brand_customer_messages=False,
        customer_ids=["C-1", "C-1"],
        seller_code="7K3M-9QXF",
        api_key_hash="h",
        effective_at=T0,
        now=T0,
    )


def test_tier_and_status_in_force_at_any_time() -> None:
    p = partner()
    assert p.customer_ids == ["C-1"]
    p.change_tier("gold", T0 + dt.timedelta(days=30), T0)
    p.change_status("suspended", T0 + dt.timedelta(days=60), T0)
    p.change_status("active", T0 + dt.timedelta(days=90), T0)
    assert p.tier_at(T0) == "silver"
    assert p.tier_at(T0 + dt.timedelta(days=30)) == "gold"
    assert p.status_at(T0 + dt.timedelta(days=59)) == "active"
    assert p.status_at(T0 + dt.timedelta(days=60)) == "suspended"
    assert p.status_at(T0 + dt.timedelta(days=100)) == "active"
    # Before the partner was entered, its first terms apply.
    assert p.tier_at(T0 - dt.timedelta(days=1)) == "silver"


def test_a_backdated_change_is_slotted_into_the_history() -> None:
    p = partner()
    p.change_tier("gold", T0 + dt.timedelta(days=30), T0)
    p.change_tier("bronze", T0 + dt.timedelta(days=10), T0 + dt.timedelta(days=40))
    assert [c.value for c in p.tier_history] == ["silver", "bronze", "gold"]
    assert p.tier_at(T0 + dt.timedelta(days=20)) == "bronze"


def test_no_change_is_not_recorded_and_terminated_is_final() -> None:
    p = partner()
    assert not p.change_tier("silver", T0 + dt.timedelta(days=1), T0)
    assert p.change_status("terminated", T0 + dt.timedelta(days=1), T0)
    with pytest.raises(PartnerError) as error:
        p.change_status("active", T0 + dt.timedelta(days=2), T0)
    assert error.value.code == "partner_terminated"


def test_parent_must_be_a_distributor() -> None:
    with pytest.raises(PartnerError) as error:
        partner(parent=partner(type="var"))
    assert error.value.field == "parent_partner_id"
    assert partner(parent=partner(type="distributor")).parent_partner_id == "P-1"


def test_branding_is_merged_and_details_report_changes() -> None:
    p = partner()
    assert p.change_details(branding={"color": "#112233"})
    assert p.change_details(branding={"phone": "+49 30 1"})
    assert p.branding == Branding(color="#112233", phone="+49 30 1")
    assert not p.change_details(display_name="Nordlicht IT")


CUSTOMER = CustomerInfo("C-9", "Müller GmbH", "Jana", "jana@example.com", "DE")


def line(kind: str, start: str, end: str, product: str = "secure-pro") -> LineFacts:
    return LineFacts(
        kind=kind,  # type: ignore[arg-type]
        license_key="LK-1",
        sku=f"{product.upper()}-1Y",
        product=product,
        term_start=dt.date.fromisoformat(start),
        term_end=dt.date.fromisoformat(end),
    )


def test_renewal_extends_and_an_older_order_never_shortens() -> None:
    e = Entitlement.from_line(line("new", "2026-01-01", "2026-12-31"), CUSTOMER, T0)
    assert e.apply_line(line("renewal", "2027-01-01", "2027-12-31"), CUSTOMER)
    assert (e.term_start, e.term_end) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    assert not e.apply_line(line("renewal", "2026-01-01", "2026-12-31"), CUSTOMER)
    assert e.term_end == dt.date(2027, 12, 31)


def test_upgrade_changes_the_product_and_keeps_the_start() -> None:
    e = Entitlement.from_line(line("new", "2026-01-01", "2026-12-31"), CUSTOMER, T0)
    assert e.apply_line(line("upgrade", "2026-06-01", "2026-12-31", "secure-max"), CUSTOMER)
    assert (e.product, e.term_start) == ("secure-max", dt.date(2026, 1, 1))


def test_claims_are_recorded_in_the_history_and_the_past_is_answerable() -> None:
    e = Entitlement.from_line(line("new", "2026-01-01", "2026-12-31"), CUSTOMER, T0)
    a = Claim(
        "P-A", "customer_registration", T0 + dt.timedelta(days=1), "customer_registration", "r1"
    )
    change = e.apply_claim(a, AttributionDecision(Outcome.SET, "no_partner_of_record"), T0)
    assert change is not None and change.previous_partner_id is None
    b = Claim("P-B", "partner_sale", T0 + dt.timedelta(days=10), "order", "O-1/1")
    change = e.apply_claim(b, AttributionDecision(Outcome.REPLACE, "partner_sale"), T0)
    assert change is not None and change.previous_partner_id == "P-A"
    assert (
        e.apply_claim(a, AttributionDecision(Outcome.CONFLICT, "weaker_or_equal_claim"), T0) is None
    )
    assert e.partner_of_record == PartnerOfRecord("P-B", b.at, "partner_sale")
    assert e.partner_of_record_at(T0) is None
    assert e.partner_of_record_at(T0 + dt.timedelta(days=5)).partner_id == "P-A"  # type: ignore[union-attr]
    assert e.partner_of_record_at(T0 + dt.timedelta(days=10)).partner_id == "P-B"  # type: ignore[union-attr]
    cleared = e.reassign(None, reason="fraud", ref="op-1", now=T0 + dt.timedelta(days=20))
    assert cleared.kind == "clear" and e.partner_of_record is None
    assert [c.kind for c in e.attribution_history] == ["set", "replace", "clear"]
