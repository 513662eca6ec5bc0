"""Renders messages into e-mail text and HTML with the Jinja2 templates beside this package.

HTML autoescapes everything it is given; partner-supplied colours and URLs are
filtered before they get here (`rules.safe_color`, `rules.safe_url`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifications.domain.messages import Message
from services.notifications.domain.model import ListedEntitlement, Vendor
from services.notifications.domain.payloads import format_money
from services.notifications.domain.rules import safe_url

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
NOTICE_KINDS = {
    "service_pack": "Service pack",
    "end_of_life": "End of life",
    "maintenance": "Maintenance",
}


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str

    def parts(self) -> tuple[str, str, str]:
        return (self.subject, self.text, self.html)


def human_date(value: dt.date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else ""


class Renderer:
    """One Jinja2 environment per process; templates are compiled once and cached."""

    def __init__(self, vendor: Vendor, templates: Path = TEMPLATES) -> None:
        self.vendor = vendor
        loader = FileSystemLoader(str(templates))
        self._html = Environment(
            loader=loader,
            autoescape=select_autoescape(["html", "html.j2"], default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._text = Environment(
            loader=loader,
            autoescape=False,  # noqa: S701 (plain-text part; the HTML part escapes)
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(
        self,
        message: Message,
        *,
        advisory: Mapping[str, Any] | None,
        unsubscribe_url: str | None,
    ) -> RenderedEmail:
        context = self.context(message, advisory=advisory, unsubscribe_url=unsubscribe_url)
        name = message.delivery.type
        text = self._text.get_template(f"{name}.txt.j2").render(context)
        html = self._html.get_template(f"{name}.html.j2").render(context)
        return RenderedEmail(subject=context["subject"], text=_tidy(text), html=html)

    def context(
        self,
        message: Message,
        *,
        advisory: Mapping[str, Any] | None,
        unsubscribe_url: str | None,
    ) -> dict[str, Any]:
        delivery = message.delivery
        facts = dict(delivery.facts)
        items = [_item(e) for e in delivery.entitlements]
        context: dict[str, Any] = {
            "brand": message.branding,
            "vendor": self.vendor,
            "facts": facts,
            "items": items,
            "item": items[0] if items else {},
            "greeting_name": delivery.contact_name or delivery.org_name or "there",
            "org_name": delivery.org_name or "your organisation",
            "partner_name": message.to_partner.display_name if message.to_partner else "",
            "advisory": dict(advisory or {}),
            # A product notice's text (CONTRACT 6.6) travels the advisory's way.
            "notice": dict(advisory or {}),
            "notice_kind": NOTICE_KINDS.get(str((advisory or {}).get("kind", "")), "Notice"),
            "affected_total": int(facts.get("affected_total") or len(items)),
            "unsubscribe_url": unsubscribe_url if message.list_unsubscribe else None,
            "footer_reason": (
                f"you are the partner contact of {message.to_partner.display_name}"
                if message.to_partner
                else "you are a registered contact for these licences"
            ),
            "security_footer": (
                "This is a security notice for partners of record; it is sent whatever your"
                " e-mail preferences."
                if message.to_partner
                else "This is a security notice. It is sent to every registered contact,"
                " including those who unsubscribed from other e-mail."
            ),
            "renew_url": _renew_url(self.vendor.renew_url, delivery.license_keys),
            "renew_with": _renew_with(message),
            "steered": message.steer_to is not None,
            "renewal_mode": str(facts.get("renewal_mode") or ""),
        }
        if delivery.type == "contact_confirmation":
            # In the fragment: a browser never sends it to a server, so no access log
            # between here and the confirmation page keeps the token.
            context["confirm_url"] = (
                f"{self.vendor.contact_confirmation_url}#token={facts['confirmation_token']}"
            )
            expires = facts.get("expires_at")
            context["expires_at"] = _human_timestamp(expires) if expires else ""
        if delivery.type == "customer_sign_in":
            # In the fragment, like the confirmation link: no server on the way logs it.
            context["sign_in_url"] = (
                f"{self.vendor.customer_sign_in_url}#token={facts['sign_in_token']}"
            )
            expires = facts.get("expires_at")
            context["expires_at"] = _human_time(expires) if expires else ""
            context["security_footer"] = (
                "You receive this message because someone asked to sign in with this address;"
                " it is sent whatever your e-mail preferences."
            )
        if delivery.type in ("commission_earned", "commission_reversed"):
            currency = str(facts.get("currency") or "")
            context["money"] = format_money(abs(int(facts.get("amount_minor") or 0)), currency)
            context["base_money"] = format_money(int(facts.get("base_amount_minor") or 0), currency)
            context["rate_percent"] = f"{Decimal(int(facts.get('rate_bps') or 0)) / 100:.2f}"
            payable = facts.get("payable_at")
            context["payable_at"] = _human_timestamp(payable) if payable else ""
        if delivery.type == "deal_decided":
            amount = facts.get("estimated_amount_minor")
            currency = str(facts.get("currency") or "")
            context["money"] = format_money(int(amount), currency) if amount is not None else ""
            until = facts.get("protected_until")
            context["protected_until"] = _human_timestamp(until) if until else ""
            context["reason_text"] = (
                "another partner's registered deal already protects this customer and product"
                if facts.get("reason") == "deal_conflict"
                else str(facts.get("reason") or "")
            )
        if delivery.type == "tier_changed":
            context["tier_name"] = str(facts.get("tier") or "").capitalize()
            effective = facts.get("effective_at")
            context["effective_on"] = _human_timestamp(effective) if effective else ""
        context["subject"] = self.subject(message, context)
        return context

    def subject(self, message: Message, context: Mapping[str, Any]) -> str:
        delivery = message.delivery
        items = context["items"]
        brand = message.branding
        by = f"{brand.name}: " if brand.is_partner else ""
        count = len(items)
        first = items[0] if items else {}
        if delivery.type == "welcome":
            return f"{by}Your {first.get('product', '')} licence is registered"
        if delivery.type == "contact_confirmation":
            return f"Confirm the new contact for your {first.get('product', '')} licence"
        if delivery.type == "customer_sign_in":
            return f"Your sign-in link for {self.vendor.name}"
        if delivery.type == "renewal_reminder":
            days = context["facts"].get("offset_days")
            if count == 1:
                return f"{by}Your {first['product']} licence ends in {days} days"
            return f"{by}{count} of your licences end in {days} days"
        if delivery.type == "renewal_opportunity":
            plural = "licence ends" if count == 1 else "licences end"
            return f"Renewal opportunity: {count} {plural} on {first.get('term_end', '')}"
        advisory = context["advisory"]
        if delivery.type == "security_advisory":
            severity = str(advisory.get("severity", "")).upper()
            return f"[Security advisory, {severity}] {advisory.get('title', '')}"
        if delivery.type == "advisory_partner_digest":
            total = context["affected_total"]
            affected = "1 customer licence is" if total == 1 else f"{total} customer licences are"
            return f"Security advisory {advisory.get('advisory_id', '')}: {affected} affected"
        if delivery.type == "product_notice":
            return f"[{context['notice_kind']}] {advisory.get('title', '')}"
        if delivery.type == "notice_partner_digest":
            total = context["affected_total"]
            licences = "1 customer licence" if total == 1 else f"{total} customer licences"
            return f"{context['notice_kind']} {advisory.get('notice_id', '')}: {licences} concerned"
        if delivery.type == "commission_earned":
            return f"Commission earned: {context['money']} on order {context['facts']['order_id']}"
        if delivery.type == "commission_reversed":
            order = context["facts"]["order_id"]
            return f"Commission reversed: {context['money']} after a refund on order {order}"
        if delivery.type == "deal_decided":
            facts = context["facts"]
            verdict = "approved" if facts.get("status") == "approved" else "not approved"
            return f"Deal {facts.get('deal_id', '')} {verdict}: {facts.get('product', '')}"
        if delivery.type == "tier_changed":
            return f"Your partner tier is now {context['tier_name']}"
        if context["facts"].get("change") == "gained":
            return f"You are now partner of record for licence {first.get('license_key', '')}"
        return f"Licence {first.get('license_key', '')} is no longer attributed to you"


def _renew_with(message: Message) -> dict[str, Any] | None:
    """The partner a customer reminder points to for the renewal: the one it steers to
    (`partner_first`, CONTRACT 6.1), else its brand when partner-branded; else nobody."""
    partner = message.steer_to
    if partner is not None:
        return {
            "name": partner.display_name,
            "phone": partner.phone,
            "website": safe_url(partner.website),
        }
    brand = message.branding
    if brand.is_partner:
        return {"name": brand.name, "phone": brand.phone, "website": brand.website}
    return None


def _item(entitlement: ListedEntitlement) -> dict[str, Any]:
    return {
        "license_key": entitlement.license_key,
        "product": entitlement.product,
        "sku": entitlement.sku,
        "term_end": human_date(entitlement.term_end),
        "org_name": entitlement.org_name,
    }


def _renew_url(base: str, license_keys: list[str]) -> str:
    if not license_keys:
        return base
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}license_key={','.join(license_keys[:20])}"


def _human_timestamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return human_date(value.astimezone(dt.UTC).date())
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return human_date(parsed.astimezone(dt.UTC).date())


def _human_time(value: Any) -> str:
    """`2026-01-10 09:15 UTC`: a sign-in link lives minutes, so the time matters."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _tidy(text: str) -> str:
    # Conditionals in the text templates leave runs of blank lines; keep one.
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line and lines and not lines[-1]:
            continue
        lines.append(line)
    return "\n".join(lines).strip() + "\n"
