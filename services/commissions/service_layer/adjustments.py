"""Finance's manual adjustments (CONTRACT 6.5): one idempotent ledger line per Idempotency-Key.

An adjustment is an aggregate of its own (`adjustment/<Idempotency-Key>`) holding
one line, payable at once. It is inserted with its `commission.adjusted` event in
the outbox, in one database transaction, like every other API-made ledger event.
The key names the request: the same key with the same body answers the line made
the first time; with another body it is a conflict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from services.commissions.domain.order_line import (
    ADJUSTMENT_ORDER_ID,
    LedgerLine,
    OrderLineCommission,
    OrderLineKey,
    new_adjustment,
)
from services.commissions.service_layer.ports import (
    Clock,
    OrderLineRepository,
    OutboxMessage,
    TransitionStore,
)
from services.commissions.service_layer.translate import event_id_of, ledger_event
from shared.ids import adjustment_line_id

EVENT_TYPE = "commission.adjusted"


class AdjustmentError(ValueError):
    """A request that cannot be booked (422), naming the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflictError(RuntimeError):
    """The Idempotency-Key was used before with another body (409)."""


@dataclass(frozen=True, slots=True)
class AdjustmentRequest:
    partner_id: str
    amount_minor: int
    currency: str
    reason: str
    reference: str

    def made(self, line: LedgerLine) -> bool:
        """Whether `line` is what this request books (the same body)."""
        return (
            line.partner_id,
            line.amount_minor,
            line.currency,
            line.reason,
            line.reference,
        ) == (self.partner_id, self.amount_minor, self.currency, self.reason, self.reference)


class Adjustments:
    def __init__(
        self,
        *,
        order_lines: OrderLineRepository,
        transitions: TransitionStore,
        clock: Clock,
        ledger_topic: str,
    ) -> None:
        self._order_lines = order_lines
        self._transitions = transitions
        self._clock = clock
        self._ledger_topic = ledger_topic

    async def make(self, idempotency_key: str, request: AdjustmentRequest) -> LedgerLine:
        """The adjustment's ledger line: booked now, or the one this key booked before."""
        key = OrderLineKey(ADJUSTMENT_ORDER_ID, idempotency_key)
        earlier = await self._earlier(key, request)
        if earlier is not None:
            return earlier
        if request.amount_minor == 0:
            raise AdjustmentError("amount_minor: an adjustment of 0 moves nothing", "amount_minor")
        if not await self._has_earned_in(request.partner_id, request.currency):
            raise AdjustmentError(
                f"currency: the partner has no ledger line in {request.currency}", "currency"
            )
        aggregate = new_adjustment(
            line_id=adjustment_line_id(idempotency_key),
            idempotency_key=idempotency_key,
            partner_id=request.partner_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            reason=request.reason,
            reference=request.reference,
            at=self._clock(),
        )
        line = aggregate.lines[0]
        if await self._transitions.commit([aggregate], [self._message(line)]):
            return line
        # Another request with this key was booked meanwhile: answer as if it came first.
        earlier = await self._earlier(key, request)
        if earlier is None:
            raise IdempotencyConflictError(f"adjustment {idempotency_key} could not be stored")
        return earlier

    async def _earlier(self, key: OrderLineKey, request: AdjustmentRequest) -> LedgerLine | None:
        found: OrderLineCommission | None = (await self._order_lines.get_many([key])).get(key)
        if found is None or not found.lines:
            return None
        line = found.lines[0]
        if not request.made(line):
            raise IdempotencyConflictError("this Idempotency-Key was used before with another body")
        # The first answer: the line as it was booked, though it may have been paid since.
        return dataclasses.replace(line, status="payable", paid_at=None)

    async def _has_earned_in(self, partner_id: str, currency: str) -> bool:
        for aggregate in await self._order_lines.for_partner(partner_id, None, None):
            if any(line.currency == currency for line in aggregate.lines_of(partner_id)):
                return True
        return False

    def _message(self, line: LedgerLine) -> OutboxMessage:
        record = ledger_event(line, EVENT_TYPE, line.occurred_at, self._ledger_topic)
        assert record.key is not None
        return OutboxMessage(
            event_id=event_id_of(EVENT_TYPE, line.line_id),
            topic=record.topic,
            key=record.key,
            value=record.value,
        )
