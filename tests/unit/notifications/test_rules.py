"""Branding and audience decisions for every notification type (CONTRACT 4)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from services.notifications.domain import rules
from services.notifications.domain.messages import UnknownPartner, compose
from services.notifications.domain.model import CUSTOMER_TYPES, NOTIFICATION_TYPES, PARTNER_TYPES
from shared.events import CommissionLine
from tests.unit.notifications.builders import (
    ALPENTECH,
    JANA,
    NORDLICHT,
    OCCURRED,
    VENDOR,
    entitlement,
)

PARTNERS = {p.partner_id: p for p in (NORDLICHT, ALPENTECH)}
AS_OF = dt.date(2027, 10, 11)  # 90 days before 2028-01-09


def commission_line(role: str = "partner_of_record", amount: int = 18519) -> CommissionLine:
    return CommissionLine.model_validate(
        {
            "line_id": "6d1c5a4e-0000-5000-8000-000000000001",
            "partner_id": NORDLICHT.partner_id,
            "role": role,
            "order_id": "WEB-100017",
            "line_ref": "1",
            "license_key": "LK-5F2A-0001",
            "refund_id": None if amount >= 0 else "RF-1",
            "kind": "renewal",
            "tier": "gold",
            "base_amount_minor": 123457,
            "rate_bps": 1500,
            "amount_minor": amount,
            "currency": "EUR",
            "status": "accrued",
            "payable_at": "2027-02-04T10:00:00Z",
            "rate_table_version": 1,
            "occurred_at": "2027-01-05T10:00:00Z",
        }
    )


def test_every_type_has_one_audience() -> None:
    assert set(NOTIFICATION_TYPES) == CUSTOMER_TYPES | PARTNER_TYPES
    assert not CUSTOMER_TYPES & PARTNER_TYPES


@pytest.mark.parametrize("kind", ["welcome", "renewal_reminder"])
def test_customer_messages_carry_the_brand_of_an_active_co_branding_partner(kind: str) -> None:
    branding = rules.customer_branding(kind, NORDLICHT, VENDOR)  # type: ignore[arg-type]
    assert branding.partner_id == NORDLICHT.partner_id
    assert (branding.name, branding.color, branding.phone) == (
        "Nordlicht IT",
        "#0B3D91",
        "+49 30 1234567",
    )
    assert branding.logo_url == NORDLICHT.logo_url and branding.website == NORDLICHT.website


@pytest.mark.parametrize(
    "partner",
    [
        None,
        dataclasses.replace(NORDLICHT, co_brand_customer_messages=False),
        dataclasses.replace(NORDLICHT, status="suspended"),
        dataclasses.replace(NORDLICHT, status="terminated"),
    ],
)
def test_otherwise_customer_messages_are_the_vendors(partner: object) -> None:
    branding = rules.customer_branding("welcome", partner, VENDOR)  # type: ignore[arg-type]
    assert branding == VENDOR.branding() and not branding.is_partner


def test_security_advisories_are_always_vendor_branded() -> None:
    assert rules.customer_branding("security_advisory", NORDLICHT, VENDOR) == VENDOR.branding()


def test_unsafe_partner_colours_and_links_fall_back() -> None:
    odd = dataclasses.replace(
        NORDLICHT, color="red;background:url(x)", logo_url="http://x/l.png", website="javascript:x"
    )
    branding = rules.customer_branding("welcome", odd, VENDOR)
    assert branding.color == VENDOR.color
    assert branding.logo_url is None and branding.website is None


def test_welcome_follows_registrations_not_orders() -> None:
    assert rules.welcome_applies("entitlement.registered")
    for other in (
        "entitlement.order_applied",
        "entitlement.updated",
        "entitlement.attribution_changed",
    ):
        assert not rules.welcome_applies(other)


def test_welcome_goes_to_the_customer_contact_scoped_to_the_por() -> None:
    plan = rules.plan_welcome(entitlement("LK-A", NORDLICHT), OCCURRED)
    assert (plan.type, plan.audience, plan.channel) == ("welcome", "customer", "email")
    assert plan.recipient == JANA.email and plan.partner_scope == NORDLICHT.partner_id
    assert plan.license_keys == ["LK-A"]
    again = rules.plan_welcome(entitlement("LK-A", NORDLICHT), OCCURRED)
    assert again.notification_id == plan.notification_id


def test_reminders_one_per_partner_scope_and_offset() -> None:
    due = [
        entitlement("LK-A", NORDLICHT),
        entitlement("LK-A2", NORDLICHT),
        entitlement("LK-B", ALPENTECH),
        entitlement("LK-C", None),
    ]
    plans = rules.plan_reminders(due, 90, AS_OF, OCCURRED)
    by_scope = {p.partner_scope: p for p in plans}
    assert set(by_scope) == {NORDLICHT.partner_id, ALPENTECH.partner_id, None}
    assert by_scope[NORDLICHT.partner_id].license_keys == ["LK-A", "LK-A2"]
    assert by_scope[ALPENTECH.partner_id].license_keys == ["LK-B"]
    assert all(p.audience == "customer" and p.recipient == JANA.email for p in plans)
    assert all(p.facts["offset_days"] == 90 for p in plans)
    at_30 = rules.plan_reminders(due, 30, AS_OF, OCCURRED)
    assert {p.notification_id for p in plans}.isdisjoint({p.notification_id for p in at_30})
    assert [p.notification_id for p in rules.plan_reminders(due, 90, AS_OF, OCCURRED)] == [
        p.notification_id for p in plans
    ]


def test_reminder_offsets_and_due_dates() -> None:
    assert rules.due_term_ends(dt.date(2027, 10, 11)) == {
        90: dt.date(2028, 1, 9),
        30: dt.date(2027, 11, 10),
        7: dt.date(2027, 10, 18),
    }


def test_renewal_opportunity_goes_to_the_por_with_its_own_entitlements_only() -> None:
    due = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]
    plans = rules.plan_renewal_opportunities(
        NORDLICHT.partner_id, due, AS_OF, OCCURRED, ("email", "webhook")
    )
    assert [p.channel for p in plans] == ["email", "webhook"]
    for plan in plans:
        assert plan.audience == "partner" and plan.recipient == NORDLICHT.partner_id
        assert plan.license_keys == ["LK-A"]
    assert plans[0].notification_id != plans[1].notification_id


def test_security_advisory_one_per_contact_names_no_partner() -> None:
    due = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]
    plan = rules.plan_security_advisory("ADV-7", due, OCCURRED)
    assert plan is not None
    assert plan.partner_scope is None and plan.audience == "customer"
    assert plan.license_keys == ["LK-A", "LK-B"]
    message = compose(plan, PARTNERS, VENDOR)
    assert message.named_partner_ids == frozenset() and not message.list_unsubscribe
    assert not rules.honours_unsubscribe("security_advisory")


def test_advisory_digest_lists_only_the_partners_own_entitlements() -> None:
    listed = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]
    plans = rules.plan_advisory_digest(
        "ADV-7", NORDLICHT.partner_id, listed, 1, OCCURRED, ["email"]
    )
    assert [p.license_keys for p in plans] == [["LK-A"]]
    assert plans[0].facts == {"advisory_id": "ADV-7", "affected_total": 1}
    assert not rules.honours_unsubscribe("advisory_partner_digest")


def test_product_notice_one_per_contact_vendor_branded_naming_no_partner() -> None:
    """CONTRACT 6.6: like an advisory, but it honours unsubscribes."""
    due = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]
    plan = rules.plan_product_notice("NTC-3", due, OCCURRED)
    assert plan is not None
    assert plan.type == "product_notice" and plan.audience == "customer"
    assert plan.partner_scope is None and plan.license_keys == ["LK-A", "LK-B"]
    assert plan.facts == {"notice_id": "NTC-3", "affected_total": 2}
    message = compose(plan, PARTNERS, VENDOR)
    assert message.named_partner_ids == frozenset() and message.branding == VENDOR.branding()
    assert rules.customer_branding("product_notice", NORDLICHT, VENDOR) == VENDOR.branding()
    assert rules.honours_unsubscribe("product_notice") and message.list_unsubscribe
    assert rules.plan_product_notice("NTC-3", [], OCCURRED) is None
    advisory = rules.plan_security_advisory("NTC-3", due, OCCURRED)
    assert advisory is not None and advisory.notification_id != plan.notification_id


def test_notice_digest_lists_only_the_partners_own_entitlements() -> None:
    listed = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]
    plans = rules.plan_notice_digest(
        "NTC-3", NORDLICHT.partner_id, listed, 1, OCCURRED, ["email", "webhook"]
    )
    assert [p.license_keys for p in plans] == [["LK-A"], ["LK-A"]]
    assert {p.type for p in plans} == {"notice_partner_digest"}
    assert plans[0].facts == {"notice_id": "NTC-3", "affected_total": 1}
    assert rules.honours_unsubscribe("notice_partner_digest")
    assert rules.needs_active_partner("notice_partner_digest")


def test_commission_notices_go_to_the_beneficiary() -> None:
    earned = rules.plan_commission("commission.accrued", commission_line(), OCCURRED, ["email"])
    assert [(p.type, p.recipient) for p in earned] == [("commission_earned", "P-GOLD01")]
    assert earned[0].license_keys == ["LK-5F2A-0001"]
    reversed_ = rules.plan_commission(
        "commission.clawed_back", commission_line(amount=-9259), OCCURRED, ["email", "webhook"]
    )
    assert {p.type for p in reversed_} == {"commission_reversed"}
    assert len({p.notification_id for p in reversed_}) == 2
    # An adjustment (CONTRACT 6.5) is told on the statement, not by a notice.
    for status_change in ("commission.payable", "commission.paid", "commission.adjusted"):
        assert rules.plan_commission(status_change, commission_line(), OCCURRED, ["email"]) == []


def test_a_distributor_override_notice_lists_no_licence_of_its_reseller() -> None:
    plans = rules.plan_commission(
        "commission.accrued", commission_line("distributor_override", 2469), OCCURRED, ["email"]
    )
    assert plans[0].entitlements == () and plans[0].facts["license_key"] is None


def test_attribution_change_tells_the_old_and_the_new_partner_separately() -> None:
    moved = entitlement("LK-A", NORDLICHT)
    plans = rules.plan_attribution_changed(moved, ALPENTECH.partner_id, OCCURRED, {})
    by_recipient = {p.recipient: p for p in plans}
    assert by_recipient[ALPENTECH.partner_id].facts == {"change": "lost"}
    assert by_recipient[NORDLICHT.partner_id].facts == {"change": "gained"}
    for recipient, plan in by_recipient.items():
        assert plan.partner_scope == recipient
        assert [e.partner_of_record for e in plan.entitlements] == [recipient]
    # The old partner is not even told the customer's name any more.
    assert by_recipient[ALPENTECH.partner_id].entitlements[0].org_name == ""
    assert rules.plan_attribution_changed(moved, None, OCCURRED, {})[0].facts == {
        "change": "gained"
    }


def test_partner_messages_are_vendor_branded_and_name_only_the_recipient() -> None:
    plan = rules.plan_commission("commission.accrued", commission_line(), OCCURRED, ["email"])[0]
    message = compose(plan, PARTNERS, VENDOR)
    assert message.branding == VENDOR.branding()
    assert message.to_address == NORDLICHT.contact_email
    assert message.named_partner_ids == frozenset({NORDLICHT.partner_id})
    with pytest.raises(UnknownPartner):
        compose(plan, {}, VENDOR)


def test_channels_follow_the_webhook_setting() -> None:
    assert rules.partner_channels(False) == ("email",)
    assert rules.partner_channels(True) == ("email", "webhook")
    assert rules.needs_active_partner("renewal_opportunity")
    assert not rules.needs_active_partner("commission_earned")
