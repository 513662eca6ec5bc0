"""accrued -> payable -> paid, through the transactional outbox.

A transition changes the stored order line and appends its `commission.*` event
to the outbox in one database transaction; the relay publishes the outbox. A
line is only moved once its own ledger entry is committed to Kafka (the
published horizon), so `commission.payable` never overtakes `commission.accrued`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from services.commissions.domain.order_line import LedgerLine, OrderLineCommission
from services.commissions.domain.periods import Month
from services.commissions.domain.statements import below_minimum, on_statement
from services.commissions.service_layer.ports import (
    Clock,
    OrderLineRepository,
    OutboxMessage,
    PublishedHorizon,
    TransitionStore,
)
from services.commissions.service_layer.translate import event_id_of, ledger_event

log = logging.getLogger(__name__)

PAGE: Final = 200
MAX_ATTEMPTS: Final = 8


class TransitionConflictError(RuntimeError):
    """Order lines kept changing while a transition was being committed."""


@dataclass(frozen=True, slots=True)
class PaidStatement:
    partner_id: str
    month: Month
    lines: list[LedgerLine]
    held: dict[str, int] = field(default_factory=dict)
    """Currency -> payable total left unpaid: below MIN_PAYOUT_MINOR (CONTRACT 6.5)."""


Transition = Callable[[OrderLineCommission], list[LedgerLine]]


class LedgerLifecycle:
    def __init__(
        self,
        *,
        order_lines: OrderLineRepository,
        transitions: TransitionStore,
        horizon: PublishedHorizon,
        clock: Clock,
        ledger_topic: str,
        min_payout_minor: Mapping[str, int] | None = None,
    ) -> None:
        self._min_payout_minor = dict(min_payout_minor or {})
        self._order_lines = order_lines
        self._transitions = transitions
        self._horizon = horizon
        self._clock = clock
        self._ledger_topic = ledger_topic

    async def run_payables(self, as_of: dt.datetime) -> list[LedgerLine]:
        """Every line whose hold has passed at `as_of` becomes payable; idempotent."""
        now = self._clock()
        published = await self._horizon.snapshot()

        def release(line: OrderLineCommission) -> list[LedgerLine]:
            # A line whose accrual or clawback is not yet on the ledger topic waits a run.
            if not all(published(entry.source) for entry in line.lines):
                return []
            return line.release_payables(as_of, now)

        changed: list[LedgerLine] = []
        after = None
        while True:
            page = await self._order_lines.due(as_of, after, PAGE)
            if not page:
                break
            after = page[-1].key
            changed.extend(await self._commit(page, release, "commission.payable"))
        log.info("payables run", extra={"as_of": as_of.isoformat(), "lines": len(changed)})
        return changed

    async def mark_paid(self, partner_id: str, month: Month) -> PaidStatement:
        """The payable lines on the partner's `month` statement become paid; idempotent.

        Per currency: a payable total below `MIN_PAYOUT_MINOR` is not paid; its lines
        stay payable and carry into the next statement (CONTRACT 6.5), and `held`
        says so. The month's own lines and those carried forward into it are paid
        together.
        """
        now = self._clock()
        # Earlier months too: their lines still payable are carried forward into this one.
        lines = await self._order_lines.for_partner(partner_id, None, month.end)
        on_it = [
            entry
            for aggregate in lines
            for entry in aggregate.lines_of(partner_id)
            if on_statement(entry, month)
        ]
        payable, held = below_minimum(on_it, self._min_payout_minor)
        changed: list[LedgerLine] = []
        if payable:
            for start in range(0, len(lines), PAGE):
                changed.extend(
                    await self._commit(
                        lines[start : start + PAGE],
                        lambda line: line.mark_paid(partner_id, month, now, payable),
                        "commission.paid",
                    )
                )
        held_totals = {
            currency: sum(
                e.amount_minor for e in on_it if e.currency == currency and e.status == "payable"
            )
            for currency in sorted(held)
        }
        if held:
            log.info(
                "statement below the minimum payout",
                extra={"partner_id": partner_id, "month": str(month), "held": sorted(held)},
            )
        return PaidStatement(partner_id, month, changed, held_totals)

    async def _commit(
        self, page: Sequence[OrderLineCommission], transition: Transition, event_type: str
    ) -> list[LedgerLine]:
        for _ in range(MAX_ATTEMPTS):
            touched: list[OrderLineCommission] = []
            messages: list[OutboxMessage] = []
            changed: list[LedgerLine] = []
            for line in page:
                moved = transition(line)
                if line.dirty:
                    touched.append(line)
                for entry in moved:
                    messages.append(self._message(entry, event_type))
                changed.extend(moved)
            if not touched:
                return []
            if await self._transitions.commit(touched, messages):
                return changed
            # Someone (the worker applying a refund) changed a line: read again, redo.
            fresh = await self._order_lines.get_many([line.key for line in page])
            page = list(fresh.values())
        raise TransitionConflictError(f"{len(page)} order lines kept changing")

    def _message(self, line: LedgerLine, event_type: str) -> OutboxMessage:
        occurred_at = line.paid_at if event_type == "commission.paid" else line.payable_at
        assert occurred_at is not None
        record = ledger_event(line, event_type, occurred_at, self._ledger_topic)
        assert record.key is not None
        return OutboxMessage(
            event_id=event_id_of(event_type, line.line_id),
            topic=record.topic,
            key=record.key,
            value=record.value,
        )


async def payables_daily(lifecycle: LedgerLifecycle, clock: Clock, hour_utc: int) -> None:
    """Run payables every day at `hour_utc` with as_of = now; runs until cancelled.

    A run covers every hold that passed before it, so a day missed while the
    worker was down is caught up by the next run.
    """
    while True:
        now = clock()
        next_run = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
        if next_run <= now:
            next_run += dt.timedelta(days=1)
        await asyncio.sleep((next_run - now).total_seconds())
        while True:
            try:
                await lifecycle.run_payables(clock())
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("daily payables run failed", extra={"error": type(error).__name__})
                await asyncio.sleep(300)
