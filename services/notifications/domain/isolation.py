"""The isolation invariant (CONTRACT 4), checked on every message right before it is sent.

A message to or branded for partner P names no other partner and lists only
entitlements whose partner of record is P; a customer message names at most
one partner and never mixes partner-of-record scopes; a security advisory
names no partner at all. The check reads both the message's structure and
its rendered text, so a template that printed the wrong thing is caught too.
A violation is reported as short codes only: they end up in delivery records
a partner can read, so they must not name the other partner either.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.notifications.domain.messages import Message
from services.notifications.domain.model import Partner


def violations(message: Message, rendered: Iterable[str], related: Iterable[Partner]) -> list[str]:
    """Empty when the message may go out; else why not (codes, never names or ids)."""
    delivery = message.delivery
    named = message.named_partner_ids
    found: list[str] = []
    if delivery.audience == "partner":
        owner = delivery.recipient
        allowed = frozenset({owner})
        if message.to_partner is None or message.to_partner.partner_id != owner:
            found.append("recipient_mismatch")
        if delivery.partner_scope != owner:
            found.append("scope_is_not_recipient")
        if named - allowed:
            found.append("names_another_partner")
        if message.branding.partner_id is not None:
            found.append("partner_message_branded_by_partner")
        if any(e.partner_of_record != owner for e in delivery.entitlements):
            found.append("lists_another_partners_entitlement")
    else:
        allowed = named
        if len(named) > 1:
            found.append("names_several_partners")
        if named and named != frozenset({delivery.partner_scope}):
            found.append("names_partner_outside_scope")
        if delivery.type == "security_advisory":
            if named or delivery.partner_scope is not None:
                found.append("advisory_names_partner")
        elif any(e.partner_of_record != delivery.partner_scope for e in delivery.entitlements):
            found.append("mixes_partner_scopes")
    texts = [t.casefold() for t in rendered]
    for partner in related:
        if partner.partner_id in allowed:
            continue
        for marker in partner.identity_markers():
            folded = marker.casefold()
            if any(folded in text for text in texts):
                found.append("text_names_another_partner")
                break
    return list(dict.fromkeys(found))
