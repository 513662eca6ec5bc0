"""Consumed events in, ledger changes and ledger events out: the worker's one use case.

A batch is processed per order line (aggregate), in arrival order within each.
Orders of lines never seen before are written with one bulk insert and no read
first, the common case; only refunds, and inserts that find their line already
stored (a duplicate, a replay, a refund that came first), read state. Writes are
idempotent: deterministic ids, and each aggregate remembers the records it has
applied. A batch retried after a crash finds its own records applied and returns
the same output again, so the Kafka transaction that finally commits carries
every ledger event exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from chassis.records import HandlerResult, Inbound, dead_letter
from services.commissions.domain.decisions import Policy
from services.commissions.domain.order_line import (
    Effects,
    OrderLineCommission,
    OrderLineKey,
    RawRecord,
    Source,
)
from services.commissions.domain.rates import RateBook
from services.commissions.service_layer.ports import (
    Counters,
    NullCounters,
    OrderLineRepository,
    RateTableRepository,
    RefundRegistry,
)
from services.commissions.service_layer.translate import entry_event, order_from, refund_from
from shared import events

log = logging.getLogger(__name__)

ORDER_APPLIED: Final = "entitlement.order_applied"
REFUND_ISSUED: Final = "refund.issued"
MAX_CONFLICT_ROUNDS: Final = 8


class ConcurrentUpdateError(RuntimeError):
    """An order line kept changing under us; the batch is retried from its first offset."""

    # Another writer's doing, not the input's: the chassis retries the batch rather than
    # splitting it to dead-letter a record (chassis.batch.is_infrastructure).
    retryable = True


@dataclass(frozen=True, slots=True)
class _Item:
    inbound: Inbound
    source: Source
    order: events.EntitlementOrderApplied | None = None
    refund: events.RefundIssued | None = None


@dataclass
class _Work:
    items: list[_Item] = field(default_factory=list)
    effects: list[tuple[_Item, Effects]] = field(default_factory=list)


def source_of(inbound: Inbound) -> Source:
    return Source(inbound.envelope.event_id, inbound.topic, inbound.partition, inbound.offset)


class LedgerIngest:
    def __init__(
        self,
        *,
        order_lines: OrderLineRepository,
        refund_ids: RefundRegistry,
        rate_tables: RateTableRepository,
        policy: Policy,
        ledger_topic: str,
        counters: Counters | None = None,
    ) -> None:
        self._order_lines = order_lines
        self._refund_ids = refund_ids
        self._rate_tables = rate_tables
        self._policy = policy
        self._ledger_topic = ledger_topic
        self._counters = counters or NullCounters()

    async def handle(self, batch: list[Inbound]) -> HandlerResult:
        result = HandlerResult()
        work: dict[OrderLineKey, _Work] = {}
        refunds: list[tuple[OrderLineKey, _Item]] = []
        for inbound in batch:
            data = inbound.envelope.data
            if isinstance(data, events.EntitlementOrderApplied):
                item = _Item(inbound, source_of(inbound), order=data)
                key = OrderLineKey(data.order.order_id, data.order.line_id)
            elif isinstance(data, events.RefundIssued):
                item = _Item(inbound, source_of(inbound), refund=data)
                key = OrderLineKey(data.order_id, data.line_id)
                refunds.append((key, item))
            else:
                # Registration's other entitlement events: nothing for commissions.
                self._counters.inc("commission_inputs_total", outcome="ignored")
                continue
            work.setdefault(key, _Work()).items.append(item)

        await self._drop_refund_id_conflicts(refunds, work, result)
        if not work:
            return result
        rates = await self._rate_tables.book()
        # Only lines with a refund in the batch need their state up front.
        pending = await self._order_lines.get_many({key for key, _ in refunds if key in work})
        keys = list(work)
        for round_no in range(MAX_CONFLICT_ROUNDS):
            fresh: list[OrderLineCommission] = []
            stored: list[OrderLineCommission] = []
            for key in keys:
                line = pending.get(key) or OrderLineCommission(key)
                work[key].effects = self._apply(line, work[key].items, rates)
                if line.dirty:
                    (stored if line.version else fresh).append(line)
            conflicts = await self._order_lines.add(fresh) | await self._order_lines.update(stored)
            if not conflicts:
                break
            # Stored meanwhile (a held refund, a duplicate, a replay) or changed by another writer.
            log.info("order lines found stored or changed; re-reading", extra={"n": len(conflicts)})
            keys = [key for key in keys if key in conflicts]
            pending = await self._order_lines.get_many(keys)
            self._counters.inc("order_line_conflicts_total", value=len(keys), round=str(round_no))
        else:
            raise ConcurrentUpdateError(f"{len(keys)} order lines kept changing")

        for unit in work.values():
            for item, effects in unit.effects:
                self._counters.inc("commission_inputs_total", outcome=effects.outcome)
                result.produce.extend(
                    entry_event(line, self._ledger_topic) for line in effects.emitted
                )
                for rejection in effects.rejections:
                    if rejection.held is None:
                        result.reject(item.inbound, rejection.reason, rejection.detail)
                    else:
                        held = rejection.held
                        record = dead_letter(
                            held.topic,
                            held.key,
                            held.value,
                            held.headers,
                            rejection.reason,
                            rejection.detail,
                        )
                        result.rejected.append((record, rejection.reason))
        self._counters.inc("ledger_lines_emitted_total", value=len(result.produce))
        return result

    def _apply(
        self, line: OrderLineCommission, items: Iterable[_Item], rates: RateBook
    ) -> list[tuple[_Item, Effects]]:
        done: list[tuple[_Item, Effects]] = []
        for item in items:
            if item.order is not None:
                order = order_from(item.order)
                done.append((item, line.apply_order(order, item.source, rates, self._policy)))
            elif item.refund is not None:
                refund = refund_from(item.refund, item.inbound.envelope.occurred_at)
                inbound = item.inbound
                record = RawRecord(inbound.topic, inbound.key, inbound.value, inbound.headers)
                done.append((item, line.apply_refund(refund, item.source, record)))
        return done

    async def _drop_refund_id_conflicts(
        self,
        refunds: list[tuple[OrderLineKey, _Item]],
        work: dict[OrderLineKey, _Work],
        result: HandlerResult,
    ) -> None:
        """A refund_id names one refund of one order line; reusing it elsewhere is a rule break."""
        if not refunds:
            return
        claims: dict[str, OrderLineKey] = {}
        for key, item in refunds:
            assert item.refund is not None
            claims.setdefault(item.refund.refund_id, key)
        owners = await self._refund_ids.claim(claims)
        for key, item in refunds:
            assert item.refund is not None
            owner = owners.get(item.refund.refund_id, key)
            if owner == key:
                continue
            result.reject(
                item.inbound,
                "refund_id_conflict",
                f"refund {item.refund.refund_id} belongs to order line {owner.text}",
            )
            self._counters.inc("commission_inputs_total", outcome="rejected")
            work[key].items.remove(item)
            if not work[key].items:
                del work[key]
