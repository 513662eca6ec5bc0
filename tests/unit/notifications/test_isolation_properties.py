"""Isolation as a property (CONTRACT 6.8): partners that share phones, domains and words.

Partners are drawn from small pools, so two of them often share a support line,
a parent's web domain or a word of their names ("Data", "Cloud", "Secure"); a
customer buys from several of them. For every message the rules plan, rendered
by the real templates:

- it is never refused when it carries no distinguishing marker of another
  partner (no false refusals: the defect the acceptance run found);
- it never carries one (the templates leak nothing), by an oracle that does not
  use the checker: another partner's id, seller code, e-mail, phone digits, web
  host or distinctive name, none of which the message's own partner shares;
- once another partner's distinguishing marker is slipped into it (a bad import
  in the customer's organisation name), it is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.isolation import (
    markers_of,
    own_partner_ids,
    vendor_texts,
    violations,
)
from services.notifications.domain.messages import compose
from services.notifications.domain.model import (
    NOTICE_TYPES,
    Customer,
    Entitlement,
    Partner,
    PlannedDelivery,
    host_of,
)
from services.notifications.domain.payloads import webhook_body
from tests.unit.notifications.builders import OCCURRED, VENDOR

RENDERER = Renderer(VENDOR)
AS_OF = dt.date(2027, 10, 11)
COMMON_WORDS = ("Data", "Cloud", "Secure", "Systems", "Netz")
DISTINCTIVE = ("Nordlicht", "Alpentech", "Kvarnström", "Żurawia", "Quellwerk")
SUFFIXES = ("GmbH", "AG", "Ltd", "s.r.o.")
PHONES = ("+49 30 1234567", "+41 44 555 0101", "+44 20 7946 0000")
DOMAINS = ("channel-group.example", "nordlicht-it.example", "quell.example")
LOCALS = ("partners", "support", "sales")
PRODUCTS = ("secure-pro", "cloud-backup", "data-vault")
ADVISORY = {
    "advisory_id": "ADV-9",
    "severity": "high",
    "title": "Cloud agent: Data exposure in Secure Systems module",
    "summary": "Update the agent; data stays safe in the cloud.",
    "url": "https://vendor.example/advisories/ADV-9",
    "products": list(PRODUCTS),
}
NOTICE = {
    "notice_id": "NTC-4",
    "kind": "end_of_life",
    "title": "Secure Data Vault 7 reaches its end of life",
    "summary": "Move to Cloud Backup 9; your data moves with you.",
    "url": "https://vendor.example/notices/NTC-4",
    "products": list(PRODUCTS),
}


def announcement(plan: PlannedDelivery) -> dict[str, object]:
    return NOTICE if plan.type in NOTICE_TYPES else ADVISORY


@st.composite
def partner_sets(draw: st.DrawFn) -> list[Partner]:
    count = draw(st.integers(2, 4))
    partners = []
    for index in range(count):
        words = draw(st.lists(st.sampled_from(COMMON_WORDS + DISTINCTIVE), min_size=1, max_size=2))
        display = " ".join(dict.fromkeys(words))
        domain = draw(st.sampled_from(DOMAINS))
        partners.append(
            Partner(
                partner_id=f"P-{index:02d}{draw(st.sampled_from('ABCDEF'))}9",
                display_name=display,
                legal_name=f"{display} {draw(st.sampled_from(SUFFIXES))}",
                status="active",
                co_brand_customer_messages=draw(st.booleans()),
                contact_email=f"{draw(st.sampled_from(LOCALS))}@{domain}",
                seller_code=f"{index}K3M-9QX{index}",
                phone=draw(st.sampled_from(PHONES)),
                website=f"https://{draw(st.sampled_from(DOMAINS))}",
            )
        )
    return partners


CUSTOMER = Customer(
    customer_id="C-1",
    org_name="Müller Logistik GmbH",
    contact_name="Jana Müller",
    email="jana@mueller-logistik.example",
)


def entitlements_of(partners: list[Partner], products: list[str]) -> list[Entitlement]:
    owners: list[Partner | None] = [*partners, None]
    return [
        Entitlement(
            license_key=f"LK-{index:04d}",
            product=products[index % len(products)],
            sku="SKU-1Y",
            term_end=AS_OF + dt.timedelta(days=30),
            customer=CUSTOMER,
            partner_of_record=owner.partner_id if owner else None,
        )
        for index, owner in enumerate(owners)
    ]


def planned(partners: list[Partner], entitlements: list[Entitlement]) -> list[PlannedDelivery]:
    plans: list[PlannedDelivery] = []
    plans += rules.plan_reminders(entitlements, 30, AS_OF, OCCURRED)
    plans += [rules.plan_welcome(e, OCCURRED) for e in entitlements]
    advisory = rules.plan_security_advisory("ADV-9", entitlements, OCCURRED)
    notice = rules.plan_product_notice("NTC-4", entitlements, OCCURRED)
    assert advisory is not None and notice is not None
    plans += [advisory, notice]
    for partner in partners:
        plans += rules.plan_renewal_opportunities(
            partner.partner_id, entitlements, AS_OF, OCCURRED, ["email", "webhook"]
        )
        own = [e for e in entitlements if e.partner_of_record == partner.partner_id]
        plans += rules.plan_advisory_digest(
            "ADV-9", partner.partner_id, own, len(own), OCCURRED, ["email"]
        )
        plans += rules.plan_notice_digest(
            "NTC-4", partner.partner_id, own, len(own), OCCURRED, ["email", "webhook"]
        )
    moved = dataclasses.replace(entitlements[0], partner_of_record=partners[1].partner_id)
    plans += rules.plan_attribution_changed(moved, partners[0].partner_id, OCCURRED, {})
    return plans


def rendered_parts(plan: PlannedDelivery, by_id: dict[str, Partner]) -> tuple[str, ...]:
    message = compose(plan, by_id, VENDOR)
    if plan.channel == "webhook":
        return (webhook_body(message, announcement(plan)),)
    return RENDERER.render(
        message, advisory=announcement(plan), unsubscribe_url="https://u/x"
    ).parts()


def leaked(plan: PlannedDelivery, partners: list[Partner], text: str) -> list[str]:
    """The oracle: literal markers of other partners that the own partner does not share.

    Names made of common words only are left out: "Data Systems" is prose as
    much as a name, and the vendor's advisory says it too. The own partner's
    names are taken out of the text first ("Nordlicht" is in "Data Nordlicht").
    """
    message = compose(plan, {p.partner_id: p for p in partners}, VENDOR)
    own_ids = own_partner_ids(message)
    own = [p for p in partners if p.partner_id in own_ids]
    own_values = {
        v.casefold()
        for p in own
        for v in (p.partner_id, p.seller_code, p.contact_email, p.phone, host_of(p.website))
        if v
    } | {p.display_name.casefold() for p in own}
    found = []
    for partner in partners:
        if partner.partner_id in own_ids:
            continue
        values = [partner.partner_id, partner.seller_code, partner.contact_email, partner.phone]
        values.append(host_of(partner.website))
        if any(word in DISTINCTIVE for word in partner.display_name.split()):
            values.append(partner.display_name)
        found += [v for v in values if v and v.casefold() not in own_values]
    for partner in own:
        for name in sorted((partner.legal_name, partner.display_name), key=len, reverse=True):
            text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    return [v for v in found if contains(text, v)]


def contains(text: str, value: str) -> bool:
    """Whole-token, case-insensitive: what a reader would recognise as that marker."""
    pattern = rf"(?<![\w@.\-]){re.escape(value)}(?![\w\-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partners=partner_sets(), products=st.lists(st.sampled_from(PRODUCTS), min_size=1))
def test_no_message_is_refused_or_leaks_when_partners_share_markers(
    partners: list[Partner], products: list[str]
) -> None:
    by_id = {p.partner_id: p for p in partners}
    for plan in planned(partners, entitlements_of(partners, products)):
        parts = rendered_parts(plan, by_id)
        message = compose(plan, by_id, VENDOR)
        related = [by_id[p] for p in plan.related_partner_ids if p in by_id]
        text = "\n".join(parts)
        assert leaked(plan, related, text) == [], plan.type
        common = vendor_texts(VENDOR, announcement(plan))
        assert violations(message, parts, related, common=common) == [], plan.type


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    partners=partner_sets(),
    products=st.lists(st.sampled_from(PRODUCTS), min_size=1),
    data=st.data(),
)
def test_a_distinguishing_marker_of_another_partner_is_always_refused(
    partners: list[Partner], products: list[str], data: st.DataObject
) -> None:
    by_id = {p.partner_id: p for p in partners}
    entitlements = entitlements_of(partners, products)
    customer_plans = [
        p
        for p in planned(partners, entitlements)
        if p.audience == "customer" and len(p.related_partner_ids) > 1
    ]
    plan = data.draw(st.sampled_from(customer_plans))
    message = compose(plan, by_id, VENDOR)
    own_ids = own_partner_ids(message)
    own_keys = {m.key for p in partners if p.partner_id in own_ids for m in markers_of(p)}
    others = [by_id[p] for p in plan.related_partner_ids if p not in own_ids]
    choices = [
        (partner, marker)
        for partner in others
        for marker in markers_of(partner)
        if marker.key not in own_keys
    ]
    if not choices:
        return  # every marker of every other partner is shared: nothing could leak
    _, marker = data.draw(st.sampled_from(choices))
    slipped = f"Müller, resold by {marker.value}"
    leaked = dataclasses.replace(plan, org_name=slipped, contact_name=slipped)
    parts = rendered_parts(leaked, by_id)
    assert slipped in parts[1]
    related = [by_id[p] for p in plan.related_partner_ids if p in by_id]
    common = vendor_texts(VENDOR, announcement(plan))
    found = violations(compose(leaked, by_id, VENDOR), parts, related, common=common)
    assert "text_names_another_partner" in found, marker
