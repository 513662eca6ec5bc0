"""Two workers writing one order line at the same moment, on the real database.

With several worker processes an order line's `entitlement.order_applied` (keyed by
licence key) and its refunds (keyed by order id) are handled by different
processes. Both write the same order-line document with a version check; the one
that loses must find out, re-read and redo. Here both read version n and then both
write, deterministically: the scale-out finding (issue 20) where a refund held
before its order now and then never gave its clawback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

from chassis.records import HandlerResult
from services.commissions.adapters.mongo import MongoOrderLines, MongoRefundRegistry, prepare
from services.commissions.domain.decisions import Policy
from services.commissions.domain.order_line import OrderLineCommission, OrderLineKey, RawRecord
from services.commissions.service_layer.ingest import LedgerIngest, source_of
from services.commissions.service_layer.translate import refund_from
from shared.envelope import parse_event
from shared.topics import COMMISSIONS_LEDGER
from tests.unit.commissions.events import Stream, order_applied, refund_issued
from tests.unit.commissions.fakes import FakeRateTables

KEY = OrderLineKey("WEB-100017", "1")


class Racing:
    """A worker's order-line repository whose first update waits until the other's is due.

    Both workers have read the line (same version) before either writes it.
    """

    def __init__(self, inner: MongoOrderLines, barrier: asyncio.Barrier) -> None:
        self._inner, self._barrier, self._raced = inner, barrier, False

    async def get_many(
        self, keys: Collection[OrderLineKey]
    ) -> dict[OrderLineKey, OrderLineCommission]:
        return await self._inner.get_many(keys)

    async def add(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        return await self._inner.add(lines)

    async def update(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        if not self._raced:
            self._raced = True
            await asyncio.wait_for(self._barrier.wait(), 10)
        return await self._inner.update(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def ingest(db: Any, order_lines: Any) -> LedgerIngest:
    return LedgerIngest(
        order_lines=order_lines,
        refund_ids=MongoRefundRegistry(db),
        rate_tables=FakeRateTables(),
        policy=Policy(),
        ledger_topic=COMMISSIONS_LEDGER,
    )


def line_ids(*results: HandlerResult) -> list[tuple[str, str | None, int]]:
    found = []
    for result in results:
        for record in result.produce:
            data: Any = parse_event(COMMISSIONS_LEDGER, record.value).data
            found.append((data.role, data.refund_id, data.amount_minor))
    return sorted(found, key=repr)


def _refund(s: Stream, refund_id: str, amount: int) -> Any:
    """A refund as the aggregate takes it: (refund, source, raw record)."""
    inbound = s.record(refund_issued(refund_id, amount))
    data: Any = inbound.envelope.data
    record = RawRecord(inbound.topic, inbound.key, inbound.value, inbound.headers)
    return refund_from(data, inbound.envelope.occurred_at), source_of(inbound), record


async def test_a_version_check_lost_to_another_writer_is_reported_as_a_conflict(
    mongo_db: Any,
) -> None:
    await prepare(mongo_db)
    repo = MongoOrderLines(mongo_db)
    s = Stream()
    held = OrderLineCommission(KEY)
    held.apply_refund(*_refund(s, "RF-0", 1000))
    assert await repo.add([held]) == set()
    mine, theirs = (await repo.get_many([KEY]))[KEY], (await repo.get_many([KEY]))[KEY]
    for copy, refund_id in ((mine, "RF-1"), (theirs, "RF-2")):
        copy.apply_refund(*_refund(s, refund_id, 10))
    assert await repo.update([theirs]) == set()
    # Same version read, the other writer got there first: ours did not happen.
    assert await repo.update([mine]) == {KEY}
    assert mine.dirty and mine.version == 1
    stored = (await repo.get_many([KEY]))[KEY]
    assert [e.refund.refund_id for e in stored.refunds] == ["RF-0", "RF-2"]


async def test_an_order_and_a_second_early_refund_written_at_once_lose_no_clawback(
    mongo_db: Any,
) -> None:
    await prepare(mongo_db)
    s = Stream()
    barrier = asyncio.Barrier(2)
    worker_a = ingest(mongo_db, Racing(MongoOrderLines(mongo_db), barrier))
    worker_b = ingest(mongo_db, Racing(MongoOrderLines(mongo_db), barrier))
    # Worker B holds the first refund: the line is stored, order not yet known.
    first = await ingest(mongo_db, MongoOrderLines(mongo_db)).handle(
        [s.record(refund_issued("RF-1", 61728))]
    )
    assert first.produce == []
    # Then, at the same moment, A applies the order and B the second early refund.
    order, second = await asyncio.gather(
        worker_a.handle([s.record(order_applied())]),
        worker_b.handle([s.record(refund_issued("RF-2", 61729))]),
    )
    assert line_ids(order, second) == sorted(
        [
            ("partner_of_record", None, 18519),
            ("distributor_override", None, 2469),
            ("partner_of_record", "RF-1", -9259),
            ("distributor_override", "RF-1", -1234),
            ("partner_of_record", "RF-2", -9260),
            ("distributor_override", "RF-2", -1235),
        ],
        key=repr,
    )
    stored = (await MongoOrderLines(mongo_db).get_many([KEY]))[KEY]
    assert stored.order is not None and stored.held_refunds == []
    assert sorted(e.refund.refund_id for e in stored.refunds) == ["RF-1", "RF-2"]
