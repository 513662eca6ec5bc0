"""Deals meet orders (CONTRACT 6.3): which approved deal an order line closes, and its claim.

A direct `new` order line for a (customer, product) an approved deal protects
at the order's `occurred_at` makes the deal's partner the partner of record
(source `deal_registration`, as strong as a partner registration, so it beats a
seller code typed at checkout) and the deal `won` with the `order_id`. The deal
partner's own partner-channel sale of it wins the deal too (the sale sets the
partner of record as always). Another reseller's sale leaves the deal open.

The order worker reads the approved deals of a batch's products once
(`DealMatcher.load`); the deals are tracked by the unit of work, so a won deal
is written in the batch's transaction and its `deal.won` produced in the
batch's Kafka transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from services.registration.domain.attribution import AttributionSource
from services.registration.domain.deals import Deal
from services.registration.domain.partners import Partner
from services.registration.service_layer.deals import deal_event
from services.registration.service_layer.unit_of_work import OutboundEvent, UnitOfWork
from shared.events import OrderLine, OrderPlaced


@dataclass(frozen=True)
class DealClaim:
    """The deal an order line closes, and the claim it makes (None: the order's own)."""

    deal: Deal
    partner: Partner | None
    source: AttributionSource | None


class DealMatcher:
    def __init__(self, deals: list[Deal]) -> None:
        # Earliest approval first: if one partner has two deals, the older one wins.
        self._deals = sorted(deals, key=lambda d: (d.approved_at or d.submitted_at, d.deal_id))

    @classmethod
    async def load(cls, uow: UnitOfWork, orders: Iterable[OrderPlaced]) -> DealMatcher:
        products = {line.product for o in orders for line in o.lines if line.kind == "new"}
        deals = await uow.deals.approved_for(products)
        if deals:
            await uow.partners.get_many({d.partner_id for d in deals})
        return cls(deals)

    def protecting(self, order: OrderPlaced, line: OrderLine, at: dt.datetime) -> Deal | None:
        if line.kind != "new":
            return None
        c = order.customer
        for deal in self._deals:
            if deal.protects(c.customer_id, c.email, line.product, at):
                return deal
        return None

    async def claim_for(
        self,
        uow: UnitOfWork,
        order: OrderPlaced,
        line: OrderLine,
        at: dt.datetime,
        order_partner: Partner | None,
    ) -> DealClaim | None:
        """The deal this line closes, if any; with the claim to make instead of the order's."""
        deal = self.protecting(order, line, at)
        if deal is None:
            return None
        if order.sales_channel == "partner":
            if order_partner is None or order_partner.partner_id != deal.partner_id:
                return None  # another reseller's sale: the deal stays open
            return DealClaim(deal, None, None)
        partner = await uow.partners.get(deal.partner_id)
        if partner is None or not partner.is_active_at(at):
            return None  # as a seller code of an inactive partner would be
        return DealClaim(deal, partner, "deal_registration")


def won_event(deal: Deal, order_id: str, at: dt.datetime) -> OutboundEvent:
    """Close the deal with this order and return its `deal.won`."""
    deal.win(order_id, at)
    return deal_event("deal.won", deal, occurred_at=at)
