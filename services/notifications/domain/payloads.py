"""What a webhook carries (CONTRACT 4): `{"type", "timestamp", "data"}`, and money for people.

The data is built from the same planned delivery as the e-mail, so both say
the same thing, and from nothing else, so it names no partner but the recipient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.notifications.domain.messages import Message
from services.notifications.domain.model import ListedEntitlement
from shared.events import format_timestamp
from shared.money import MINOR_DIGITS


def format_money(amount_minor: int, currency: str) -> str:
    """`18519 EUR` -> `185.19 EUR`; exact, never through a float."""
    digits = MINOR_DIGITS.get(currency, 2)
    value = Decimal(amount_minor).scaleb(-digits)
    return f"{value:,.{digits}f} {currency}"


def _listed(entitlement: ListedEntitlement) -> dict[str, Any]:
    item: dict[str, Any] = {"license_key": entitlement.license_key}
    if entitlement.product:
        item["product"] = entitlement.product
    if entitlement.sku:
        item["sku"] = entitlement.sku
    if entitlement.term_end is not None:
        item["term_end"] = entitlement.term_end.isoformat()
    if entitlement.org_name:
        item["customer_org_name"] = entitlement.org_name
    return item


def webhook_data(message: Message, advisory: Mapping[str, Any] | None) -> dict[str, Any]:
    """`advisory` is the announcement the message comes from: an advisory or a notice."""
    delivery = message.delivery
    facts = dict(delivery.facts)
    data: dict[str, Any] = {
        "notification_id": delivery.notification_id,
        "partner_id": delivery.recipient,
    }
    if delivery.type in ("commission_earned", "commission_reversed"):
        data["commission"] = {k: v for k, v in facts.items() if v is not None}
    elif delivery.type == "deal_decided":
        data["deal"] = {k: v for k, v in facts.items() if v is not None}
    elif delivery.type == "attribution_changed":
        data["change"] = facts.get("change")
        data["entitlement"] = _listed(delivery.entitlements[0]) if delivery.entitlements else None
    elif delivery.type == "tier_changed":
        data["tier"] = facts.get("tier")
        data["effective_at"] = facts.get("effective_at")
    elif delivery.type == "renewal_opportunity":
        data["offset_days"] = facts.get("offset_days")
        data["entitlements"] = [_listed(e) for e in delivery.entitlements]
    elif delivery.type == "advisory_partner_digest":
        data["advisory"] = dict(advisory or {"advisory_id": facts.get("advisory_id")})
        data["affected_total"] = facts.get("affected_total")
        data["entitlements"] = [_listed(e) for e in delivery.entitlements]
    elif delivery.type == "notice_partner_digest":
        data["notice"] = dict(advisory or {"notice_id": facts.get("notice_id")})
        data["affected_total"] = facts.get("affected_total")
        data["entitlements"] = [_listed(e) for e in delivery.entitlements]
    return data


def webhook_body(message: Message, advisory: Mapping[str, Any] | None) -> str:
    """The exact text that is signed and sent; stable across retries."""
    document = {
        "type": message.delivery.type,
        "timestamp": format_timestamp(message.delivery.occurred_at),
        "data": webhook_data(message, advisory),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
