"""The order-line aggregate: one order line's decision, ledger lines and refunds.

Everything that touches one order line (its `entitlement.order_applied`, its
refunds, the payables run, the paid mark) goes through this object, so the
clawback of a refund always sees the refunds before it, a refund that arrives
before its order waits here, and the lifecycle rules see all of a line's
clawbacks. Every change remembers the input record (`Source`) that caused it:
seeing that same record again (a batch replayed after a crash) reproduces the
same effects instead of applying it twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

from services.commissions.domain.decisions import (
    CommissionDecision,
    OrderApplied,
    Policy,
    decide_commission,
)
from services.commissions.domain.periods import Month
from services.commissions.domain.rates import RateBook
from shared.events import CommissionRole, CommissionStatus, LineKind, PartnerTier, RateSource
from shared.ids import clawback_line_id, commission_line_id
from shared.money import round_half_even

RejectionReason = Literal[
    "conflicting_order_line", "conflicting_refund", "currency_mismatch", "refund_exceeds_line"
]
Outcome = Literal["applied", "held", "duplicate", "replayed", "rejected"]


class OrderLineKey(NamedTuple):
    order_id: str
    line_id: str

    @property
    def text(self) -> str:
        return f"{self.order_id}/{self.line_id}"


@dataclass(frozen=True, slots=True)
class Source:
    """The input record that caused a change, by event and by position in its topic."""

    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record exactly as it arrived: kept so it can be dead-lettered unchanged later."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RefundToApply:
    """A refund of one order line, as the domain applies it (from shared.events.RefundIssued)."""

    refund_id: str
    order_id: str
    line_id: str
    amount_minor: int
    currency: str
    reason: str
    # Business time, not content: the same refund re-sent later is still a duplicate.
    occurred_at: dt.datetime = field(compare=False)

    @property
    def key(self) -> OrderLineKey:
        return OrderLineKey(self.order_id, self.line_id)


@dataclass(frozen=True, slots=True)
class RefundEntry:
    refund: RefundToApply
    source: Source
    held: RawRecord | None = None
    """Set while the refund waits for its order; None once applied."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that breaks a rule (CONTRACT 1.4), decided while processing `decided_by`."""

    decided_by: Source
    reason: RejectionReason
    detail: str
    held: RawRecord | None = None
    """The rejected record when it is not `decided_by`'s own: a held refund."""


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One ledger line: an accrual (refund_id None), a clawback (negative), or an adjustment.

    An adjustment (role `adjustment`, CONTRACT 6.5) belongs to no order: its order
    fields are None, its base and rate 0, and it carries finance's reason and reference.
    """

    line_id: str
    partner_id: str
    role: CommissionRole
    order_id: str | None
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
    occurred_at: dt.datetime
    payable_at: dt.datetime | None
    source: Source
    payable_marked_at: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    withheld: bool = False
    """An accrual fully clawed back before its hold ended: it never becomes payable."""
    rate_source: RateSource = "tier_table"
    reason: str | None = None
    reference: str | None = None

    @property
    def is_clawback(self) -> bool:
        return self.refund_id is not None

    @property
    def is_adjustment(self) -> bool:
        return self.role == "adjustment"


@dataclass
class Effects:
    """What processing one input did: new ledger lines to announce, records to dead-letter."""

    outcome: Outcome
    emitted: list[LedgerLine] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class OrderLineCommission:
    """One order line's commission; or, keyed `adjustment/<Idempotency-Key>`, one adjustment."""

    key: OrderLineKey
    order: OrderApplied | None = None
    decision: CommissionDecision | None = None
    lines: list[LedgerLine] = field(default_factory=list)
    refunds: list[RefundEntry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    version: int = 0
    """Optimistic-concurrency token of the stored copy; 0 = never stored."""
    dirty: bool = field(default=False, compare=False)

    # --- inputs -------------------------------------------------------------------------

    def apply_order(
        self, order: OrderApplied, source: Source, rates: RateBook, policy: Policy
    ) -> Effects:
        if (order.order_id, order.line_id) != self.key:
            raise ValueError(f"order line {order.order_id}/{order.line_id} is not {self.key.text}")
        if source in self.sources:
            return self._replay(source)
        if self.order is not None:
            if self.order == order:
                return Effects("duplicate")
            return self._reject(
                source,
                "conflicting_order_line",
                f"order line {self.key.text} was applied before with different data",
            )
        decision = decide_commission(order, rates, policy)
        payable_at = order.occurred_at + dt.timedelta(days=policy.hold_days)
        accruals = [
            LedgerLine(
                line_id=commission_line_id(
                    order.order_id, order.line_id, beneficiary.partner_id, beneficiary.role
                ),
                partner_id=beneficiary.partner_id,
                role=beneficiary.role,
                order_id=order.order_id,
                line_ref=order.line_id,
                license_key=order.license_key,
                refund_id=None,
                kind=order.kind,
                tier=beneficiary.tier,
                base_amount_minor=order.net_amount_minor,
                rate_bps=beneficiary.rate_bps,
                amount_minor=beneficiary.amount_minor,
                currency=order.currency,
                status="accrued",
                rate_table_version=decision.rate_table_version or 0,
                occurred_at=order.occurred_at,
                payable_at=payable_at,
                source=source,
                rate_source=beneficiary.rate_source,
            )
            for beneficiary in decision.beneficiaries
        ]
        self.order, self.decision = order, decision
        self.lines.extend(accruals)
        self.sources.append(source)
        self.dirty = True
        effects = Effects("applied", emitted=list(accruals))
        # Held refunds now apply in the order they arrived: the same result as in order.
        held, self.refunds = self.refunds, []
        for entry in held:
            problem = self._refund_problem(entry.refund)
            if problem is not None:
                rejection = Rejection(source, problem[0], problem[1], entry.held)
                self.rejections.append(rejection)
                effects.rejections.append(rejection)
            else:
                effects.emitted.extend(
                    self._claw_back(RefundEntry(entry.refund, entry.source), source)
                )
        return effects

    def apply_refund(self, refund: RefundToApply, source: Source, record: RawRecord) -> Effects:
        if refund.key != self.key:
            raise ValueError(f"refund of {refund.key.text} is not for {self.key.text}")
        if source in self.sources:
            return self._replay(source)
        existing = next((e for e in self.refunds if e.refund.refund_id == refund.refund_id), None)
        if existing is not None:
            if existing.refund == refund:
                return Effects("duplicate")
            return self._reject(
                source,
                "conflicting_refund",
                f"refund {refund.refund_id} was received before with different data",
            )
        if self.order is None:
            self.refunds.append(RefundEntry(refund, source, held=record))
            self.sources.append(source)
            self.dirty = True
            return Effects("held")
        problem = self._refund_problem(refund)
        if problem is not None:
            return self._reject(source, *problem)
        self.sources.append(source)
        return Effects("applied", emitted=self._claw_back(RefundEntry(refund, source), source))

    # --- lifecycle -----------------------------------------------------------------------

    def release_payables(self, as_of: dt.datetime, now: dt.datetime) -> list[LedgerLine]:
        """Lines whose hold has passed at `as_of` become payable (CONTRACT 3.4).

        An accrual fully clawed back by refunds that occurred before its hold ended
        is withheld for good; its clawbacks with it. A clawback of a line already
        payable or paid becomes payable itself, so it nets on the next statement.
        """
        changed: list[LedgerLine] = []
        for index, line in enumerate(self.lines):
            if line.is_clawback or line.status != "accrued" or line.withheld:
                continue
            if line.payable_at is None or line.payable_at > as_of:
                continue
            clawed_in_hold = sum(
                c.amount_minor for c in self._clawbacks_of(line) if c.occurred_at < line.payable_at
            )
            self.dirty = True
            if line.amount_minor > 0 and line.amount_minor + clawed_in_hold <= 0:
                self.lines[index] = replace(line, withheld=True)
                continue
            self.lines[index] = replace(line, status="payable", payable_marked_at=now)
            changed.append(self.lines[index])
        for index, line in enumerate(self.lines):
            if not line.is_clawback or line.status != "accrued":
                continue
            accrual = self._accrual_of(line)
            if accrual.status == "accrued" or accrual.payable_at is None:
                continue
            # Payable from when both the refund and its line's payability had happened.
            eligible = max(line.occurred_at, accrual.payable_at)
            if eligible > as_of:
                continue
            self.lines[index] = replace(
                line, status="payable", payable_at=eligible, payable_marked_at=now
            )
            self.dirty = True
            changed.append(self.lines[index])
        return changed

    def mark_paid(
        self,
        partner_id: str,
        month: Month,
        now: dt.datetime,
        currencies: Collection[str] | None = None,
    ) -> list[LedgerLine]:
        """The partner's payable lines on `month`'s statement become paid.

        That is the month's own lines (by occurred_at) and the earlier ones still
        payable, which the statement carries forward (CONTRACT 6.5); `currencies`,
        when given, limits it to those (the others are below the minimum payout).
        """
        changed: list[LedgerLine] = []
        for index, line in enumerate(self.lines):
            if (
                line.partner_id == partner_id
                and line.status == "payable"
                and line.occurred_at < month.end
                and (currencies is None or line.currency in currencies)
            ):
                self.lines[index] = replace(line, status="paid", paid_at=now)
                self.dirty = True
                changed.append(self.lines[index])
        return changed

    # --- views ---------------------------------------------------------------------------

    @property
    def refunded_minor(self) -> int:
        return sum(e.refund.amount_minor for e in self.refunds if e.held is None)

    @property
    def held_refunds(self) -> list[RefundEntry]:
        return [e for e in self.refunds if e.held is not None]

    @property
    def partner_ids(self) -> list[str]:
        return sorted({line.partner_id for line in self.lines})

    @property
    def due_at(self) -> dt.datetime | None:
        """The earliest instant a payables run could change a line here; None if never."""
        candidates: list[dt.datetime] = []
        for line in self.lines:
            if line.status != "accrued" or line.withheld:
                continue
            if not line.is_clawback:
                if line.payable_at is not None:
                    candidates.append(line.payable_at)
                continue
            accrual = self._accrual_of(line)
            if accrual.status != "accrued" and accrual.payable_at is not None:
                candidates.append(max(line.occurred_at, accrual.payable_at))
        return min(candidates, default=None)

    def lines_of(self, partner_id: str) -> list[LedgerLine]:
        return [line for line in self.lines if line.partner_id == partner_id]

    # --- internals -----------------------------------------------------------------------

    def _replay(self, source: Source) -> Effects:
        return Effects(
            "replayed",
            emitted=[line for line in self.lines if line.source == source],
            rejections=[r for r in self.rejections if r.decided_by == source],
        )

    def _reject(self, source: Source, reason: RejectionReason, detail: str) -> Effects:
        rejection = Rejection(source, reason, detail)
        self.rejections.append(rejection)
        self.sources.append(source)
        self.dirty = True
        return Effects("rejected", rejections=[rejection])

    def _refund_problem(self, refund: RefundToApply) -> tuple[RejectionReason, str] | None:
        order = self.order
        assert order is not None
        if refund.currency != order.currency:
            return (
                "currency_mismatch",
                f"refund {refund.refund_id} is in {refund.currency}, its order in {order.currency}",
            )
        total = self.refunded_minor + refund.amount_minor
        if total > order.net_amount_minor:
            return (
                "refund_exceeds_line",
                f"refunds of {self.key.text} would total {total} minor units,"
                f" more than its net {order.net_amount_minor}",
            )
        return None

    def _claw_back(self, entry: RefundEntry, source: Source) -> list[LedgerLine]:
        """CONTRACT 3.5: each beneficiary line gives back its share of the cumulative refund."""
        order = self.order
        assert order is not None
        before = self.refunded_minor
        after = before + entry.refund.amount_minor
        self.refunds.append(entry)
        self.dirty = True
        net = order.net_amount_minor
        clawbacks: list[LedgerLine] = []
        for accrual in [line for line in self.lines if not line.is_clawback]:
            commission = accrual.amount_minor
            share = round_half_even(commission * after, net) - round_half_even(
                commission * before, net
            )
            if share == 0:
                # Nothing to give back on this refund (a tiny line); no zero lines in the ledger.
                continue
            clawbacks.append(
                replace(
                    accrual,
                    line_id=clawback_line_id(
                        entry.refund.refund_id, accrual.partner_id, accrual.role
                    ),
                    refund_id=entry.refund.refund_id,
                    base_amount_minor=entry.refund.amount_minor,
                    amount_minor=-share,
                    status="accrued",
                    occurred_at=entry.refund.occurred_at,
                    payable_at=None,
                    source=source,
                    payable_marked_at=None,
                    paid_at=None,
                    withheld=False,
                )
            )
        self.lines.extend(clawbacks)
        return clawbacks

    def _clawbacks_of(self, accrual: LedgerLine) -> list[LedgerLine]:
        return [
            line
            for line in self.lines
            if line.is_clawback
            and line.partner_id == accrual.partner_id
            and line.role == accrual.role
        ]

    def _accrual_of(self, clawback: LedgerLine) -> LedgerLine:
        for line in self.lines:
            if (
                not line.is_clawback
                and line.partner_id == clawback.partner_id
                and line.role == clawback.role
            ):
                return line
        raise LookupError(f"clawback {clawback.line_id} has no accrual in {self.key.text}")


ADJUSTMENT_ORDER_ID = "adjustment"
"""The key of an adjustment's aggregate is `adjustment/<Idempotency-Key>` (CONTRACT 6.5)."""


def new_adjustment(
    *,
    line_id: str,
    idempotency_key: str,
    partner_id: str,
    amount_minor: int,
    currency: str,
    reason: str,
    reference: str,
    at: dt.datetime,
) -> OrderLineCommission:
    """Finance's manual line: payable at once, on the statement of the month it was made."""
    if amount_minor == 0:
        raise ValueError("an adjustment of 0 moves nothing")
    source = Source(line_id, "adjustments", 0, 0)
    line = LedgerLine(
        line_id=line_id,
        partner_id=partner_id,
        role="adjustment",
        order_id=None,
        line_ref=None,
        license_key=None,
        refund_id=None,
        kind=None,
        tier=None,
        base_amount_minor=0,
        rate_bps=0,
        amount_minor=amount_minor,
        currency=currency,
        status="payable",
        rate_table_version=None,
        occurred_at=at,
        payable_at=at,
        source=source,
        payable_marked_at=at,
        reason=reason,
        reference=reference,
    )
    return OrderLineCommission(
        OrderLineKey(ADJUSTMENT_ORDER_ID, idempotency_key),
        lines=[line],
        sources=[source],
        dirty=True,
    )
