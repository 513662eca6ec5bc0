"""The isolation invariant, with a customer who has entitlements under two partners."""

from __future__ import annotations

import dataclasses

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.isolation import vendor_texts, violations
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


# --- CONTRACT 6.8: own markers, whole-word names ---------------------------------------


def _reminder_text(plan: object, partners: dict[str, object]) -> tuple[object, tuple[str, ...]]:
    message = compose(plan, partners, VENDOR)  # type: ignore[arg-type]
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url="https://u/x")
    return message, rendered.parts()


def test_a_support_line_shared_by_two_resellers_names_neither_to_the_other() -> None:
    """The acceptance defect: every reminder was refused as naming the other reseller."""
    shared = dataclasses.replace(ALPENTECH, phone=NORDLICHT.phone)
    partners = {NORDLICHT.partner_id: NORDLICHT, shared.partner_id: shared}
    entitlements = [entitlement("LK-A", NORDLICHT), entitlement("LK-B", shared)]
    for plan in rules.plan_reminders(entitlements, 30, AS_OF, OCCURRED):
        message, parts = _reminder_text(plan, partners)
        assert NORDLICHT.phone in parts[1]  # type: ignore[operator]
        assert violations(message, parts, partners.values()) == []  # type: ignore[arg-type]


def test_a_shared_parent_domain_is_not_another_partners_marker() -> None:
    parent = "https://channel-group.example"
    ours = dataclasses.replace(NORDLICHT, website=parent, contact_email="a@channel-group.example")
    theirs = dataclasses.replace(ALPENTECH, website=parent)
    partners = {ours.partner_id: ours, theirs.partner_id: theirs}
    plan = rules.plan_reminders([entitlement("LK-A", ours)], 7, AS_OF, OCCURRED)[0]
    message, parts = _reminder_text(plan, partners)
    assert "channel-group.example" in parts[1]
    assert violations(message, parts, partners.values()) == []  # type: ignore[arg-type]
    # Its own distinguishing markers still count: the other's seller code is a leak.
    sneaky = dataclasses.replace(plan, org_name=f"Müller (ref {theirs.seller_code})")
    message, parts = _reminder_text(sneaky, partners)
    assert violations(message, parts, partners.values()) == [  # type: ignore[arg-type]
        "text_names_another_partner"
    ]


def test_names_match_on_word_boundaries_not_as_substrings() -> None:
    data = dataclasses.replace(ALPENTECH, display_name="Data", legal_name="Data Handel AG")
    cloud = dataclasses.replace(
        ALPENTECH, partner_id="P-CLOUD3", display_name="Cloud", legal_name="Cloud Öko GmbH"
    )
    partners = {p.partner_id: p for p in (NORDLICHT, data, cloud)}
    customer = dataclasses.replace(
        TWO_PARTNERS[0].customer, org_name="Database Builders, a cloudy-day company"
    )
    own = dataclasses.replace(TWO_PARTNERS[0], customer=customer, product="cloud-backup")
    plan = rules.plan_reminders([own], 30, AS_OF, OCCURRED)[0]
    message, parts = _reminder_text(plan, partners)
    assert violations(message, parts, partners.values()) == []  # type: ignore[arg-type]
    # A one-word name that is also a word counts only as the partner spells it ...
    prose = dataclasses.replace(plan, org_name="we keep your data in the cloud")
    message, parts = _reminder_text(prose, partners)
    assert violations(message, parts, partners.values()) == []  # type: ignore[arg-type]
    # ... and as a name it is caught, and so is a legal name in any case and spacing.
    for leak in ("Resold by Data", "Cloud", "CLOUD  öko gmbh", "data HANDEL ag"):
        named = dataclasses.replace(plan, org_name=leak)
        message, parts = _reminder_text(named, partners)
        assert violations(message, parts, partners.values()) == [  # type: ignore[arg-type]
            "text_names_another_partner"
        ], leak


def test_another_partners_name_inside_the_own_name_is_not_a_leak() -> None:
    ours = dataclasses.replace(NORDLICHT, display_name="Data Systems", legal_name="Data Systems KG")
    data = dataclasses.replace(ALPENTECH, display_name="Data", legal_name="Data AG")
    partners = {ours.partner_id: ours, data.partner_id: data}
    plan = rules.plan_reminders([entitlement("LK-A", ours)], 30, AS_OF, OCCURRED)[0]
    message, parts = _reminder_text(plan, partners)
    assert "Data Systems" in parts[1]
    assert violations(message, parts, partners.values()) == []  # type: ignore[arg-type]
    # The other way round it is the other's name: "Secure Data" is not "Data".
    ours_short = dataclasses.replace(NORDLICHT, display_name="Data", legal_name="Data GmbH")
    longer = dataclasses.replace(ALPENTECH, display_name="Secure Data", legal_name="SD AG")
    partners = {ours_short.partner_id: ours_short, longer.partner_id: longer}
    leak = dataclasses.replace(plan, org_name="Bought from Secure Data")
    message, parts = _reminder_text(leak, partners)
    assert violations(message, parts, partners.values()) == [  # type: ignore[arg-type]
        "text_names_another_partner"
    ]


def test_a_phone_number_matches_in_any_grouping_but_not_inside_a_longer_number() -> None:
    partners = {p.partner_id: p for p in (NORDLICHT, ALPENTECH)}
    plan = rules.plan_reminders([entitlement("LK-A", NORDLICHT)], 30, AS_OF, OCCURRED)[0]
    for leak, refused in (
        ("call +41-44-555-0101", True),
        ("call (41) 44 5550101", True),
        ("order 9414455501012", False),
    ):
        named = dataclasses.replace(plan, org_name=leak)
        message, parts = _reminder_text(named, partners)
        found = violations(message, parts, partners.values())  # type: ignore[arg-type]
        assert (found == ["text_names_another_partner"]) is refused, leak


def test_the_vendors_own_text_names_no_partner() -> None:
    """An advisory titled with a word that is also a partner's name still goes out."""
    cloud = dataclasses.replace(ALPENTECH, display_name="Cloud", legal_name="Cloud GmbH")
    partners = {NORDLICHT.partner_id: NORDLICHT, cloud.partner_id: cloud}
    advisory = {**ADVISORY, "title": "Cloud agent privilege escalation"}
    plan = rules.plan_security_advisory(
        "ADV-7", [entitlement("LK-A", NORDLICHT), entitlement("LK-B", cloud)], OCCURRED
    )
    assert plan is not None
    message = compose(plan, partners, VENDOR)
    rendered = RENDERER.render(message, advisory=advisory, unsubscribe_url=None)
    assert "Cloud agent" in rendered.text
    assert violations(message, rendered.parts(), partners.values()) == [
        "text_names_another_partner"
    ]  # without knowing it is the vendor's text
    common = vendor_texts(VENDOR, advisory)
    assert violations(message, rendered.parts(), partners.values(), common=common) == []
