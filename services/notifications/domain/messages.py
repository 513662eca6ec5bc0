"""A planned delivery made concrete at send time: its brand, its recipient, what it names.

Partner data is read when the message goes out, so a message planned before
its partner's record arrived (topics are read in no fixed order) still gets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.notifications.domain.model import Branding, Partner, PlannedDelivery, Vendor
from services.notifications.domain.rules import carries_list_unsubscribe, customer_branding


class UnknownPartner(Exception):
    """The partner a message goes to is not (yet) known here; the send is retried later."""


@dataclass(frozen=True, slots=True)
class Message:
    delivery: PlannedDelivery
    branding: Branding
    to_partner: Partner | None
    to_address: str
    list_unsubscribe: bool
    # A `partner_first` reminder names its scope's partner as the one to renew with
    # (CONTRACT 6.1), whatever brand the message carries.
    steer_to: Partner | None = None

    @property
    def named_partner_ids(self) -> frozenset[str]:
        """The partners the message names: its brand, the partner it addresses or steers to."""
        named = {self.branding.partner_id}
        if self.to_partner is not None:
            named.add(self.to_partner.partner_id)
        if self.steer_to is not None:
            named.add(self.steer_to.partner_id)
        return frozenset(p for p in named if p is not None)


def compose(delivery: PlannedDelivery, partners: Mapping[str, Partner], vendor: Vendor) -> Message:
    """Customer messages carry their scope's brand (or the vendor's); partner ones the vendor's."""
    if delivery.audience == "partner":
        partner = partners.get(delivery.recipient)
        if partner is None:
            raise UnknownPartner(delivery.recipient)
        return Message(
            delivery=delivery,
            branding=vendor.branding(),
            to_partner=partner,
            to_address=partner.contact_email,
            list_unsubscribe=carries_list_unsubscribe(delivery.type),
        )
    scope = partners.get(delivery.partner_scope) if delivery.partner_scope else None
    steer = delivery.type == "renewal_reminder" and bool(delivery.facts.get("steer_to_partner"))
    return Message(
        delivery=delivery,
        branding=customer_branding(delivery.type, scope, vendor),
        to_partner=None,
        to_address=delivery.recipient,
        list_unsubscribe=carries_list_unsubscribe(delivery.type),
        # Only ever the scope's own partner (isolation, CONTRACT 4). The pass chose the
        # mode at `as_of`; a partner suspended or terminated since is not named after
        # all (the text falls back to renewing direct): no customer is sent to a
        # reseller that can no longer sell.
        steer_to=scope if steer and scope is not None and scope.active else None,
    )
