"""The read side of the API: a partner's lines and statements, the admin's views."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.commissions.domain.decisions import CommissionDecision, OrderApplied
from services.commissions.domain.order_line import LedgerLine, OrderLineCommission, RefundEntry
from services.commissions.domain.periods import Month
from services.commissions.domain.statements import (
    CurrencyTotals,
    on_statement,
    statement_order,
    totals,
)
from services.commissions.service_layer.ports import OrderLineRepository
from shared.events import CommissionStatus


@dataclass(frozen=True, slots=True)
class Statement:
    partner_id: str
    month: Month
    lines: list[LedgerLine]
    totals: list[CurrencyTotals]


@dataclass(frozen=True, slots=True)
class DecisionView:
    order: OrderApplied
    decision: CommissionDecision
    lines: list[LedgerLine]
    refunds: list[RefundEntry]


class LedgerQueries:
    def __init__(self, order_lines: OrderLineRepository) -> None:
        self._order_lines = order_lines

    async def partner_lines(
        self,
        partner_id: str,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        status: CommissionStatus | None = None,
    ) -> list[LedgerLine]:
        """The partner's own lines with `start <= occurred_at < end`, oldest first."""
        found = []
        for aggregate in await self._order_lines.for_partner(partner_id, start, end):
            for line in aggregate.lines_of(partner_id):
                if start is not None and line.occurred_at < start:
                    continue
                if end is not None and line.occurred_at >= end:
                    continue
                if status is not None and line.status != status:
                    continue
                found.append(line)
        return statement_order(found)

    async def statement(self, partner_id: str, month: Month) -> Statement:
        """The month's lines and, carried forward, the earlier ones still payable."""
        earlier_and_now = await self.partner_lines(partner_id, end=month.end)
        lines = [line for line in earlier_and_now if on_statement(line, month)]
        return Statement(partner_id, month, lines, totals(lines, month))

    async def admin_lines(
        self, *, partner_id: str | None, order_id: str | None, limit: int
    ) -> list[LedgerLine]:
        aggregates = await self._order_lines.search(
            order_id=order_id, partner_id=partner_id, limit=limit
        )
        lines = [
            line
            for aggregate in aggregates
            for line in aggregate.lines
            if partner_id is None or line.partner_id == partner_id
        ]
        return statement_order(lines)[:limit]

    async def decisions(self, *, order_id: str | None, limit: int) -> list[DecisionView]:
        aggregates = await self._order_lines.search(order_id=order_id, partner_id=None, limit=limit)
        return [view for aggregate in aggregates if (view := _decision_view(aggregate)) is not None]


def _decision_view(aggregate: OrderLineCommission) -> DecisionView | None:
    if aggregate.order is None or aggregate.decision is None:
        return None  # only refunds so far, waiting for their order
    return DecisionView(aggregate.order, aggregate.decision, aggregate.lines, aggregate.refunds)
