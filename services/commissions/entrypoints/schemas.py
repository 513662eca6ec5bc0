"""The HTTP shapes of the commissions API (request bodies and responses)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from chassis.bounds import check_instant
from services.commissions.domain.order_line import LedgerLine
from services.commissions.domain.periods import Month
from services.commissions.domain.rates import RateOverride, RateTable
from services.commissions.domain.statements import CurrencyTotals, carried_forward
from services.commissions.service_layer.queries import DecisionView
from shared.events import (
    CommissionRole,
    CommissionStatus,
    Currency,
    LineKind,
    PartnerTier,
    RateSource,
    Timestamp,
    format_timestamp,
)

Bps = Annotated[StrictInt, Field(ge=0, le=10_000)]
MAX_AMOUNT_MINOR = 10**15
"""CONTRACT 6.9: every amount is at most 10^15 minor units."""
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class CommissionLineOut(BaseModel):
    """A ledger line, in the fields of the contract's `commission.*` data."""

    line_id: str
    partner_id: str
    role: CommissionRole
    order_id: str | None = Field(description="null on an adjustment")
    line_ref: str | None
    license_key: str | None
    refund_id: str | None
    kind: LineKind | None
    tier: PartnerTier | None
    base_amount_minor: int
    rate_bps: int
    amount_minor: int
    currency: str
    status: CommissionStatus
    rate_table_version: int | None
    occurred_at: str
    payable_at: str | None
    paid_at: str | None = None
    rate_source: RateSource = "tier_table"
    reason: str | None = Field(None, description="an adjustment's reason")
    reference: str | None = Field(None, description="an adjustment's reference")
    carried_forward: bool = Field(
        False, description="on a statement: an earlier month's line still payable"
    )


def line_out(line: LedgerLine, month: Month | None = None) -> CommissionLineOut:
    return CommissionLineOut(
        line_id=line.line_id,
        partner_id=line.partner_id,
        role=line.role,
        order_id=line.order_id,
        line_ref=line.line_ref,
        license_key=line.license_key,
        refund_id=line.refund_id,
        kind=line.kind,
        tier=line.tier,
        base_amount_minor=line.base_amount_minor,
        rate_bps=line.rate_bps,
        amount_minor=line.amount_minor,
        currency=line.currency,
        status=line.status,
        rate_table_version=line.rate_table_version,
        occurred_at=format_timestamp(line.occurred_at),
        payable_at=format_timestamp(line.payable_at) if line.payable_at else None,
        paid_at=format_timestamp(line.paid_at) if line.paid_at else None,
        rate_source=line.rate_source,
        reason=line.reason,
        reference=line.reference,
        carried_forward=month is not None and carried_forward(line, month),
    )


class CommissionList(BaseModel):
    lines: list[CommissionLineOut]


class TotalsOut(BaseModel):
    currency: str
    accrued_minor: int
    payable_minor: int
    paid_minor: int
    net_minor: int = Field(description="accrued + payable + paid")
    carried_forward_minor: int = Field(
        0, description="the part of payable_minor carried forward from earlier months"
    )


def totals_out(totals: list[CurrencyTotals]) -> list[TotalsOut]:
    return [
        TotalsOut(
            currency=t.currency,
            accrued_minor=t.accrued_minor,
            payable_minor=t.payable_minor,
            paid_minor=t.paid_minor,
            net_minor=t.net_minor,
            carried_forward_minor=t.carried_forward_minor,
        )
        for t in totals
    ]


class StatementOut(BaseModel):
    partner_id: str
    month: str
    lines: list[CommissionLineOut] = Field(
        description="the month's lines, then earlier ones still payable (carried_forward)"
    )
    totals: list[TotalsOut] = Field(description="per currency (alphabetical) and status")


class DecisionOut(BaseModel):
    order_id: str
    line_id: str
    license_key: str
    kind: LineKind
    sales_channel: str
    occurred_at: str
    net_amount_minor: int
    currency: str
    decision: str = Field(description="granted | denied")
    reason: str | None = Field(description="the contract's reason code when denied")
    partner_id: str | None
    rate_table_version: int | None
    refunded_minor: int
    lines: list[CommissionLineOut]


def decision_out(view: DecisionView) -> DecisionOut:
    order, decision = view.order, view.decision
    return DecisionOut(
        order_id=order.order_id,
        line_id=order.line_id,
        license_key=order.license_key,
        kind=order.kind,
        sales_channel=order.sales_channel,
        occurred_at=format_timestamp(order.occurred_at),
        net_amount_minor=order.net_amount_minor,
        currency=order.currency,
        decision="granted" if decision.granted else "denied",
        reason=decision.reason,
        partner_id=decision.partner_id,
        rate_table_version=decision.rate_table_version,
        refunded_minor=sum(e.refund.amount_minor for e in view.refunds if e.held is None),
        lines=[line_out(line) for line in view.lines],
    )


class DecisionList(BaseModel):
    decisions: list[DecisionOut]


class RatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new: Bps
    renewal: Bps
    upgrade: Bps


class RateTableIn(BaseModel):
    """A new version; every tier and kind is required, basis points 0..10000."""

    model_config = ConfigDict(extra="forbid")

    # Bounded (CONTRACT 6.9): a table dated 9999 would be "in force" after every later one.
    effective_from: Annotated[Timestamp, AfterValidator(check_instant)]
    rates: dict[PartnerTier, RatesIn]
    distributor_override_bps: Bps


class RateTableOut(BaseModel):
    version: int
    effective_from: str
    rates: dict[str, dict[str, int]]
    distributor_override_bps: int


def rate_table_out(table: RateTable) -> RateTableOut:
    return RateTableOut(
        version=table.version,
        effective_from=format_timestamp(table.effective_from),
        rates={tier: dict(per_kind) for tier, per_kind in table.rates.items()},
        distributor_override_bps=table.distributor_override_bps,
    )


class RateTableList(BaseModel):
    versions: list[RateTableOut]
    in_force: int = Field(description="the version in force now")


class PayablesRunOut(BaseModel):
    as_of: str
    payable_lines: int


class PaidOut(BaseModel):
    partner_id: str
    month: str
    paid_lines: int
    totals: list[TotalsOut] = Field(description="of the lines this call paid")


class RateOverrideIn(BaseModel):
    """One entry: a partner, a product or both; `kind` narrows it to one line kind."""

    model_config = ConfigDict(extra="forbid")

    partner_id: Id | None = None
    product: Id | None = None
    kind: LineKind | None = None
    rate_bps: Bps
    effective_from: Timestamp


class RateOverridesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[RateOverrideIn] = Field(min_length=1, max_length=1000)


class RateOverrideOut(BaseModel):
    version: int
    position: int = Field(description="its place in that version's entries")
    partner_id: str | None
    product: str | None
    kind: LineKind | None
    rate_bps: int
    effective_from: str


def rate_override_out(entry: RateOverride) -> RateOverrideOut:
    return RateOverrideOut(
        version=entry.version,
        position=entry.position,
        partner_id=entry.partner_id,
        product=entry.product,
        kind=entry.kind,
        rate_bps=entry.rate_bps,
        effective_from=format_timestamp(entry.effective_from),
    )


class RateOverrideList(BaseModel):
    entries: list[RateOverrideOut]


class AdjustmentIn(BaseModel):
    """A manual ledger line (CONTRACT 6.5); `amount_minor` is signed and never 0."""

    model_config = ConfigDict(extra="forbid")

    partner_id: Id
    amount_minor: Annotated[StrictInt, Field(ge=-MAX_AMOUNT_MINOR, le=MAX_AMOUNT_MINOR)]
    currency: Currency
    reason: Note
    reference: Id
