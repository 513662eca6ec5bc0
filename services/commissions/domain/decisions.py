"""Who earns what on one order line (CONTRACT 3.1-3.3): the decision and its amounts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final, Literal

from services.commissions.domain.rates import RateBook
from shared.calendar import ATTRIBUTION_WINDOW_MONTHS, in_attribution_window
from shared.events import (
    CommissionRole,
    LineKind,
    PartnerStatus,
    PartnerTier,
    RateSource,
    SalesChannel,
)
from shared.money import round_half_even

DenialReason = Literal[
    "partner_channel_sale",
    "no_partner_of_record",
    "partner_inactive",
    "attribution_expired",
    "zero_amount",
    "self_purchase",
]

BPS_DENOMINATOR: Final = 10_000


@dataclass(frozen=True, slots=True)
class Policy:
    """The contract's tunables: HOLD_DAYS and ATTRIBUTION_WINDOW_MONTHS."""

    hold_days: int = 30
    attribution_window_months: int = ATTRIBUTION_WINDOW_MONTHS


@dataclass(frozen=True, slots=True)
class ParentAtOrder:
    partner_id: str
    status: PartnerStatus


@dataclass(frozen=True, slots=True)
class PartnerAtOrder:
    """The partner of record as it stood at the order's `occurred_at` (registration's view)."""

    partner_id: str
    tier: PartnerTier
    status: PartnerStatus
    customer_ids: tuple[str, ...]
    since: dt.datetime
    parent: ParentAtOrder | None


@dataclass(frozen=True, slots=True)
class OrderApplied:
    """One order line as registration applied it: everything the decision depends on."""

    order_id: str
    line_id: str
    license_key: str
    kind: LineKind
    sales_channel: SalesChannel
    customer_id: str
    net_amount_minor: int
    currency: str
    occurred_at: dt.datetime
    partner: PartnerAtOrder | None
    # The entitlement's product, for product overrides (CONTRACT 6.5). Not compared:
    # a licence's product never changes, and order lines stored before it was kept
    # have none, so a redelivery of one must still count as a duplicate.
    product: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """A line to accrue: who, in which role, at which rate, for how much."""

    partner_id: str
    role: CommissionRole
    tier: PartnerTier
    rate_bps: int
    amount_minor: int
    rate_source: RateSource = "tier_table"


@dataclass(frozen=True, slots=True)
class CommissionDecision:
    """Granted with its beneficiaries, or denied with the contract's reason code."""

    reason: DenialReason | None
    partner_id: str | None
    rate_table_version: int | None = None
    beneficiaries: tuple[Beneficiary, ...] = field(default=())

    @property
    def granted(self) -> bool:
        return self.reason is None


def commission_minor(base_minor: int, rate_bps: int) -> int:
    """`round_half_even(base * rate_bps / 10000)`, exactly, in minor units."""
    return round_half_even(base_minor * rate_bps, BPS_DENOMINATOR)


def decide_commission(order: OrderApplied, rates: RateBook, policy: Policy) -> CommissionDecision:
    """Exactly one decision per order line; checks in the contract's order."""
    partner = order.partner
    if order.sales_channel == "partner":
        return CommissionDecision("partner_channel_sale", partner.partner_id if partner else None)
    if partner is None:
        return CommissionDecision("no_partner_of_record", None)
    if partner.status != "active":
        return CommissionDecision("partner_inactive", partner.partner_id)
    if not in_attribution_window(
        partner.since, order.occurred_at, policy.attribution_window_months
    ):
        return CommissionDecision("attribution_expired", partner.partner_id)
    if order.net_amount_minor == 0:
        return CommissionDecision("zero_amount", partner.partner_id)
    if order.customer_id in partner.customer_ids:
        return CommissionDecision("self_purchase", partner.partner_id)
    rate = rates.rate(
        partner.partner_id, order.product, partner.tier, order.kind, order.occurred_at
    )
    table = rate.table
    beneficiaries = [
        Beneficiary(
            partner.partner_id,
            "partner_of_record",
            partner.tier,
            rate.bps,
            commission_minor(order.net_amount_minor, rate.bps),
            rate.source,
        )
    ]
    parent = partner.parent
    if parent is not None and parent.status == "active":
        override = table.distributor_override_bps
        beneficiaries.append(
            Beneficiary(
                parent.partner_id,
                "distributor_override",
                # The override line records the tier that set the sale's rate: the PoR's.
                # Rate overrides (CONTRACT 6.5) set the PoR's rate only; the distributor
                # keeps the table's distributor_override_bps.
                partner.tier,
                override,
                commission_minor(order.net_amount_minor, override),
            )
        )
    return CommissionDecision(None, partner.partner_id, table.version, tuple(beneficiaries))
