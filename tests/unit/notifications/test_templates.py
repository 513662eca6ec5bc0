"""Every message type renders to a text and an HTML part, partner-branded and vendor-branded."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

import pytest

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.messages import compose
from services.notifications.domain.model import NOTICE_TYPES, NOTIFICATION_TYPES, PlannedDelivery
from shared.events import (
    CustomerSignInRequested,
    DealApproved,
    EntitlementContactConfirmationRequested,
    PartnerUpdated,
)
from tests.unit.notifications.builders import ALPENTECH, NORDLICHT, OCCURRED, VENDOR, entitlement
from tests.unit.notifications.test_isolation import ADVISORY
from tests.unit.notifications.test_rules import AS_OF, commission_line

RENDERER = Renderer(VENDOR)
CONTACT_TOKEN = "ckc_" + "T0k3n" * 9
CONFIRMATION = {
    "license_key": "LK-5F2A-0001",
    "product": "secure-pro",
    "customer": {
        "customer_id": "C-881",
        "org_name": "Müller Logistik GmbH",
        "contact_name": "Jana Müller",
        "email": "jana@mueller-logistik.example",
        "country": "DE",
    },
    "requested_contact_name": "Sam Registrant",
    "requested_email": "sam@registrant.example",
    "confirmation_token": CONTACT_TOKEN,
    "expires_at": "2026-01-17T09:00:00Z",
}
SIGN_IN_TOKEN = "cki_" + "S1gn" * 11
SIGN_IN = {
    "email": "jana@mueller-logistik.example",
    "token": SIGN_IN_TOKEN,
    "expires_at": "2026-01-10T09:15:00Z",
}
NOTICE = {
    "notice_id": "NTC-3",
    "kind": "service_pack",
    "title": "Service Pack 2 for secure-pro 9.4",
    "summary": "Faster scans; install it within 90 days.",
    "url": "https://vendor.example/notices/NTC-3",
    "products": ["secure-pro"],
}
DEAL = {
    "deal_id": "D-0001",
    "partner_id": NORDLICHT.partner_id,
    "customer": {
        "customer_id": "C-881",
        "org_name": "Müller Logistik GmbH",
        "email": "jana@mueller-logistik.example",
        "country": "DE",
    },
    "product": "secure-pro",
    "expected_close": "2027-02-15",
    "estimated_amount_minor": 123457,
    "currency": "EUR",
    "status": "approved",
    "submitted_at": "2026-12-01T09:00:00Z",
    "approved_at": "2026-12-02T10:00:00Z",
    "protected_until": "2027-03-02T10:00:00Z",
    "reason": None,
    "order_id": None,
}
UNSUBSCRIBE = "https://notify.vendor.example/v1/unsubscribe/abc.def"
CONFIRMATION_EVENT = EntitlementContactConfirmationRequested.model_validate(CONFIRMATION)
SIGN_IN_EVENT = CustomerSignInRequested.model_validate(SIGN_IN)


def plan_of(kind: str) -> PlannedDelivery:
    mine = entitlement("LK-5F2A-0001", NORDLICHT)
    plans = {
        "welcome": [rules.plan_welcome(mine, OCCURRED)],
        "renewal_reminder": rules.plan_reminders([mine], 30, AS_OF, OCCURRED),
        "renewal_opportunity": rules.plan_renewal_opportunities(
            NORDLICHT.partner_id, [mine], AS_OF, OCCURRED, ["email"]
        ),
        "security_advisory": [rules.plan_security_advisory("ADV-7", [mine], OCCURRED)],
        "advisory_partner_digest": rules.plan_advisory_digest(
            "ADV-7", NORDLICHT.partner_id, [mine], 1, OCCURRED, ["email"]
        ),
        "product_notice": [rules.plan_product_notice("NTC-3", [mine], OCCURRED)],
        "notice_partner_digest": rules.plan_notice_digest(
            "NTC-3", NORDLICHT.partner_id, [mine], 1, OCCURRED, ["email"]
        ),
        "commission_earned": rules.plan_commission(
            "commission.accrued", commission_line(), OCCURRED, ["email"]
        ),
        "commission_reversed": rules.plan_commission(
            "commission.clawed_back", commission_line(amount=-9259), OCCURRED, ["email"]
        ),
        "attribution_changed": rules.plan_attribution_changed(
            mine, ALPENTECH.partner_id, OCCURRED, {}
        )[1:],
        "contact_confirmation": [rules.plan_contact_confirmation(CONFIRMATION_EVENT, OCCURRED)],
        "deal_decided": rules.plan_deal_decided(
            DealApproved.model_validate(DEAL), OCCURRED, ["email"]
        ),
        "customer_sign_in": [rules.plan_customer_sign_in(SIGN_IN_EVENT, OCCURRED)],
        "tier_changed": rules.plan_tier_changed(
            PartnerUpdated.model_validate(
                {
                    "partner_id": NORDLICHT.partner_id,
                    "display_name": NORDLICHT.display_name,
                    "legal_name": NORDLICHT.legal_name,
                    "type": "var",
                    "tier": "gold",
                    "status": "active",
                    "contact_email": NORDLICHT.contact_email,
                    "co_brand_customer_messages": False,
                    "seller_code": "7K3M-9QXF",
                    "effective_at": "2027-01-01T23:59:59.999Z",
                    "tier_reason": "evaluation",
                }
            ),
            OCCURRED,
            ["email"],
        ),
    }[kind]
    plan = plans[0]
    assert plan is not None
    return plan


class _Balance(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def assert_well_formed(html: str) -> None:
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert parser.stack == []


@pytest.mark.parametrize("kind", NOTIFICATION_TYPES)
@pytest.mark.parametrize("co_brand", [True, False], ids=["partner", "vendor"])
def test_every_type_renders_text_and_html(kind: str, co_brand: bool) -> None:
    partner = dataclasses.replace(NORDLICHT, co_brand_customer_messages=co_brand)
    message = compose(plan_of(kind), {partner.partner_id: partner}, VENDOR)
    announcement = NOTICE if kind in NOTICE_TYPES else ADVISORY
    rendered = RENDERER.render(message, advisory=announcement, unsubscribe_url=UNSUBSCRIBE)
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip() and rendered.html.startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text and "{%" not in rendered.html
    assert_well_formed(rendered.html)
    assert VENDOR.name in rendered.text and VENDOR.name in rendered.html
    partner_branded = message.branding.is_partner
    assert partner_branded == (co_brand and kind in ("welcome", "renewal_reminder"))
    if partner_branded:
        for part in (rendered.text, rendered.html):
            assert "Nordlicht IT" in part and "+49 30 1234567" in part
            assert "https://nordlicht-it.example" in part
        assert 'src="https://nordlicht-it.example/logo.png"' in rendered.html
        assert "background:#0B3D91" in rendered.html
        assert rendered.subject.startswith("Nordlicht IT: ")
    else:
        assert 'src="https://vendor.example/logo.png"' in rendered.html
        assert f"background:{VENDOR.color}" in rendered.html
    if kind == "customer_sign_in":
        assert UNSUBSCRIBE not in rendered.text
        assert "whatever your e-mail preferences" in rendered.text
    elif kind in ("security_advisory", "advisory_partner_digest", "contact_confirmation"):
        assert UNSUBSCRIBE not in rendered.text
        assert kind == "contact_confirmation" or ADVISORY["url"] in rendered.text
        assert "security notice" in rendered.text
    else:
        assert UNSUBSCRIBE in rendered.text and UNSUBSCRIBE in rendered.html
    if kind in ("security_advisory", "contact_confirmation", "product_notice", "customer_sign_in"):
        assert "Nordlicht" not in rendered.text + rendered.html
    if kind in NOTICE_TYPES:
        assert NOTICE["title"] in rendered.text and NOTICE["url"] in rendered.html
        assert "Service pack" in rendered.subject and "NTC-3" in rendered.text


def test_a_partner_branded_reminder_points_to_the_partner_and_to_renewing_direct() -> None:
    message = compose(plan_of("renewal_reminder"), {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    text = RENDERER.render(message, advisory=None, unsubscribe_url=None).text
    assert "Your partner Nordlicht IT can renew it" in text
    assert "renew directly with Channelkeep Software: https://vendor.example/renew" in text


def test_money_is_shown_exactly_in_the_currency() -> None:
    message = compose(plan_of("commission_earned"), {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    assert rendered.subject == "Commission earned: 185.19 EUR on order WEB-100017"
    assert "1,234.57 EUR at 15.00 %" in rendered.text
    reversed_ = compose(plan_of("commission_reversed"), {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    assert "92.59 EUR" in RENDERER.render(reversed_, advisory=None, unsubscribe_url=None).subject


def test_html_escapes_what_partners_and_customers_typed() -> None:
    evil = dataclasses.replace(NORDLICHT, display_name="<script>alert(1)</script>")
    message = compose(plan_of("welcome"), {evil.partner_id: evil}, VENDOR)
    html = RENDERER.render(message, advisory=None, unsubscribe_url=None).html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_contact_confirmation_goes_to_checkouts_contact_with_a_one_time_link() -> None:
    """CONTRACT 6.9: vendor-branded, naming no partner, whatever the licence's PoR; the
    token rides in the link's fragment, so no server on the way logs it."""
    plan = rules.plan_contact_confirmation(CONFIRMATION_EVENT, OCCURRED)
    assert (plan.audience, plan.recipient) == ("customer", "jana@mueller-logistik.example")
    assert plan.partner_scope is None and CONTACT_TOKEN not in plan.notification_id
    assert not rules.honours_unsubscribe(plan.type)
    message = compose(plan, {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    assert not message.branding.is_partner and not message.list_unsubscribe
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    link = f"{VENDOR.contact_confirmation_url}#token={CONTACT_TOKEN}"
    assert link in rendered.text and link in rendered.html
    assert "sam@registrant.example" in rendered.text
    assert CONTACT_TOKEN not in rendered.subject
    assert rendered.subject == "Confirm the new contact for your secure-pro licence"


def test_the_sign_in_link_is_vendor_branded_names_no_partner_and_ignores_unsubscribe() -> None:
    """CONTRACT 6.2: transactional, vendor-branded, naming no partner; the token rides in
    the fragment of the portal's sign-in page and never in the id or the subject."""
    plan = rules.plan_customer_sign_in(SIGN_IN_EVENT, OCCURRED)
    assert (plan.audience, plan.recipient) == ("customer", "jana@mueller-logistik.example")
    assert plan.partner_scope is None and plan.entitlements == ()
    assert SIGN_IN_TOKEN not in plan.notification_id
    assert not rules.honours_unsubscribe(plan.type)
    message = compose(plan, {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    assert not message.branding.is_partner and not message.list_unsubscribe
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    link = f"{VENDOR.customer_sign_in_url}#token={SIGN_IN_TOKEN}"
    assert link in rendered.text and link in rendered.html
    assert SIGN_IN_TOKEN not in rendered.subject
    assert "2026-01-10 09:15 UTC" in rendered.text
    assert "Nordlicht" not in rendered.text + rendered.html
