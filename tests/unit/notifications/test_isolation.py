"""The isolation invariant, with a customer who has entitlements under two partners."""

from __future__ import annotations

import dataclasses

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.isolation import violations
from services.notifications.domain.messages import compose
from services.notifications.domain.model import ListedEntitlement
from services.notifications.domain.payloads import webhook_body
from tests.unit.notifications.builders import (
    ALPENTECH,
    NORDLICHT,
    OCCURRED,
    VENDOR,
    entitlement,
)
from tests.unit.notifications.test_rules import AS_OF

PARTNERS = {p.partner_id: p for p in (NORDLICHT, ALPENTECH)}
RENDERER = Renderer(VENDOR)
ADVISORY = {
    "advisory_id": "ADV-7",
    "severity": "high",
    "title": "Agent privilege escalation",
    "summary": "A local user can gain SYSTEM rights.",
    "url": "https://vendor.example/advisories/ADV-7",
    "products": ["secure-pro"],
}
TWO_PARTNERS = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)]


def check(plan: object, partners: dict[str, object] | None = None) -> list[str]:
    message = compose(plan, partners or PARTNERS, VENDOR)  # type: ignore[arg-type]
    rendered = RENDERER.render(message, advisory=ADVISORY, unsubscribe_url="https://u/x")
    return violations(message, rendered.parts(), PARTNERS.values())


def test_the_customers_reminders_each_stay_in_their_partners_scope() -> None:
    plans = rules.plan_reminders(TWO_PARTNERS, 90, AS_OF, OCCURRED)
    assert len(plans) == 2
    for plan in plans:
        assert check(plan) == []
        other = ALPENTECH if plan.partner_scope == NORDLICHT.partner_id else NORDLICHT
        message = compose(plan, PARTNERS, VENDOR)
        text = " ".join(RENDERER.render(message, advisory=None, unsubscribe_url=None).parts())
        assert other.display_name not in text and other.phone not in text  # type: ignore[operator]


def test_a_reminder_that_mixes_scopes_is_refused() -> None:
    plan = rules.plan_reminders(TWO_PARTNERS[:1], 90, AS_OF, OCCURRED)[0]
    mixed = dataclasses.replace(
        plan, entitlements=(*plan.entitlements, ListedEntitlement.of(TWO_PARTNERS[1]))
    )
    assert "mixes_partner_scopes" in check(mixed)


def test_text_naming_another_partner_is_refused_even_if_the_structure_is_fine() -> None:
    plan = rules.plan_welcome(TWO_PARTNERS[0], OCCURRED)
    assert check(plan) == []
    # Say a bad import put the other reseller's name into the customer's org name.
    sneaky = dataclasses.replace(plan, org_name="Resold by Alpentech Systems")
    assert check(sneaky) == ["text_names_another_partner"]


def test_a_vendor_reminder_in_a_partners_scope_names_no_partner() -> None:
    quiet = dataclasses.replace(NORDLICHT, co_brand_customer_messages=False)
    plan = rules.plan_reminders(TWO_PARTNERS[:1], 90, AS_OF, OCCURRED)[0]
    message = compose(plan, {NORDLICHT.partner_id: quiet}, VENDOR)
    assert message.named_partner_ids == frozenset()
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    assert violations(message, rendered.parts(), [quiet, ALPENTECH]) == []
    assert "Nordlicht" not in rendered.text


def test_an_advisory_names_no_partner() -> None:
    plan = rules.plan_security_advisory("ADV-7", TWO_PARTNERS, OCCURRED)
    assert plan is not None
    assert check(plan) == []
    scoped = dataclasses.replace(plan, partner_scope=NORDLICHT.partner_id)
    assert "advisory_names_partner" in check(scoped)


def test_a_partner_message_listing_another_partners_entitlement_is_refused() -> None:
    plans = rules.plan_renewal_opportunities(
        NORDLICHT.partner_id, TWO_PARTNERS, AS_OF, OCCURRED, ["email"]
    )
    assert check(plans[0]) == []
    leaked = dataclasses.replace(
        plans[0],
        entitlements=(*plans[0].entitlements, ListedEntitlement.of(TWO_PARTNERS[1])),
    )
    assert "lists_another_partners_entitlement" in check(leaked)
    misaddressed = dataclasses.replace(plans[0], partner_scope=ALPENTECH.partner_id)
    assert "scope_is_not_recipient" in check(misaddressed)


def test_the_old_partner_of_record_is_not_told_who_won_the_licence() -> None:
    moved = entitlement("LK-A", NORDLICHT)
    plans = rules.plan_attribution_changed(moved, ALPENTECH.partner_id, OCCURRED, {})
    for plan in plans:
        assert check(plan) == []
        message = compose(plan, PARTNERS, VENDOR)
        body = webhook_body(message, None)
        assert violations(message, (body,), PARTNERS.values()) == []
    lost = next(p for p in plans if p.facts["change"] == "lost")
    rendered = RENDERER.render(compose(lost, PARTNERS, VENDOR), advisory=None, unsubscribe_url=None)
    for marker in NORDLICHT.identity_markers():
        assert marker not in rendered.text and marker not in rendered.html


def test_violations_are_codes_that_name_nobody() -> None:
    plan = rules.plan_reminders(TWO_PARTNERS[:1], 90, AS_OF, OCCURRED)[0]
    mixed = dataclasses.replace(
        plan, entitlements=(*plan.entitlements, ListedEntitlement.of(TWO_PARTNERS[1]))
    )
    for code in check(mixed):
        assert ALPENTECH.partner_id not in code and "Alpentech" not in code
