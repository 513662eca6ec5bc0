"""The worker's batch handler: checkout's orders and refunds, a poll at a time.

Runs inside the chassis' transactional consume loop: orders become entitlement
changes (`OrderApplier`) and earned-tier revenue lines; refunds feed that revenue
only (CONTRACT 6.4). It returns what to produce and what to dead-letter; the loop
commits both with the consumed offsets in one Kafka transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from chassis.records import HandlerResult, Inbound, OutRecord
from services.registration.service_layer.orders import IncomingOrder, OrderApplier
from services.registration.service_layer.ports import Counters
from services.registration.service_layer.tiers import RefundEntry, TierService
from shared.events import OrderPlaced, RefundIssued


class OrderStreamHandler:
    """The batch handler of `checkout.orders.v1` and `checkout.refunds.v1`.

    `topic_map` renames the topics of the records it produces (tests and benchmarks
    run it on fresh topics).
    """

    def __init__(
        self,
        *,
        applier: OrderApplier,
        tiers: TierService,
        counters: Counters,
        topic_map: Mapping[str, str] | None = None,
    ) -> None:
        self._applier = applier
        self._tiers = tiers
        self._counters = counters
        self._rename = dict(topic_map or {})

    async def __call__(self, batch: list[Inbound]) -> HandlerResult:
        orders = [
            IncomingOrder(
                event_id=inbound.envelope.event_id,
                occurred_at=inbound.envelope.occurred_at,
                order=inbound.envelope.data,
                position=f"{inbound.topic}:{inbound.partition}:{inbound.offset}",
                index=index,
            )
            for index, inbound in enumerate(batch)
            if isinstance(inbound.envelope.data, OrderPlaced)
        ]
        outcome = await self._applier.apply(orders)
        # Earned-tier revenue: idempotent upserts, written before the batch's Kafka
        # transaction commits, so a crash in between replays the batch and writes
        # the same lines again (a replay re-emits the same records).
        await self._tiers.record_applied(outcome.records)
        await self._tiers.record_refunds(
            [
                RefundEntry(
                    refund_id=r.refund_id,
                    line_ref=f"{r.order_id}/{r.line_id}",
                    currency=r.currency,
                    amount_minor=r.amount_minor,
                    occurred_at=inbound.envelope.occurred_at,
                )
                for inbound in batch
                if isinstance(r := inbound.envelope.data, RefundIssued)
            ]
        )
        result = HandlerResult(
            produce=[
                OutRecord(self._rename.get(r.topic, r.topic), r.key, r.value, cause=cause)
                for r, cause in zip(outcome.records, outcome.causes, strict=True)
            ]
        )
        for rejection in outcome.rejections:
            result.reject(batch[rejection.index], rejection.reason, rejection.detail)
        counters = self._counters
        counters.inc("orders_applied_total", value=outcome.applied)
        if outcome.duplicates:
            counters.inc("orders_duplicate_total", value=outcome.duplicates)
        if outcome.replayed:
            counters.inc("orders_replayed_total", value=outcome.replayed)
        for reason, count in outcome.seller_codes_ignored.items():
            counters.inc("seller_codes_ignored_total", value=count, reason=reason)
        return result
