"""No record stops the consume loop (CONTRACT 6.9): isolation, stubs, retries, gauges."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import TopicPartition
from pymongo.errors import AutoReconnect

from chassis.batch import HANDLER_ERROR, is_infrastructure
from chassis.metrics import WorkerCounters
from chassis.progress import PartitionProgress
from chassis.records import DEAD_LETTER_MAX_BYTES, HandlerResult, Inbound, OutRecord, dead_letter
from tests.unit.chassis.test_consumer_loop import TP, _processor

pytestmark = [pytest.mark.unit]


def _output(batch: list[Inbound]) -> HandlerResult:
    return HandlerResult(produce=[OutRecord("ledger", None, str(i.offset).encode()) for i in batch])


@pytest.mark.parametrize(
    "poison", [ValueError("year 10002 is out of range"), RecursionError(), KeyError("x")]
)
async def test_a_record_the_handler_fails_on_is_isolated_and_dead_lettered(
    poison: Exception,
) -> None:
    calls: list[list[int]] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        calls.append([i.offset for i in batch])
        if any(i.offset == 5 for i in batch):
            raise poison
        return _output(batch)

    processor, consumer, producer = _processor(handler, [[0, 1, 2, 3, 4, 5, 6, 7]], 1)
    await asyncio.wait_for(processor.run(), 5)
    assert consumer.seeks == [], "the batch was rewound instead of split"
    [(values, offset)] = producer.commits
    assert offset == 8
    produced = [v for v in values if v.isdigit()]
    assert produced == [b"0", b"1", b"2", b"3", b"4", b"6", b"7"]
    [dead] = [v for v in values if not v.isdigit()]
    assert json.loads(dead)["event_id"] == "evt-5"
    counters = processor._counters
    assert counters.get("dead_letters_total", topic=TP.topic, reason=HANDLER_ERROR) == 1
    assert [5] in calls


async def test_an_infrastructure_error_is_retried_with_backoff_and_counted() -> None:
    failures = [AutoReconnect("primary stepped down"), AutoReconnect("again")]

    async def handler(batch: list[Inbound]) -> HandlerResult:
        if failures:
            raise failures.pop(0)
        return _output(batch)

    processor, consumer, producer = _processor(handler, [[0, 1]], 1)
    await asyncio.wait_for(processor.run(), 5)
    assert consumer.seeks == [(TP, 0), (TP, 0)]
    assert producer.commits == [([b"0", b"1"], 2)]
    assert processor._counters.get("infra_retries_total", error="AutoReconnect") == 2


def test_infrastructure_errors_are_told_from_the_inputs() -> None:
    from aiokafka.errors import KafkaConnectionError
    from bson.errors import InvalidDocument
    from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

    assert is_infrastructure(KafkaConnectionError())
    assert is_infrastructure(ServerSelectionTimeoutError("no primary"))
    assert is_infrastructure(ConnectionResetError())
    assert not is_infrastructure(InvalidDocument("key '$where' must not start with '$'"))
    assert not is_infrastructure(OperationFailure("document too large"))
    assert not is_infrastructure(ValueError("year 10002 is out of range"))
    assert not is_infrastructure(OverflowError())


async def test_a_record_with_odd_headers_and_no_value_is_dead_lettered() -> None:
    async def handler(batch: list[Inbound]) -> HandlerResult:
        return _output(batch)

    processor, consumer, producer = _processor(handler, [[0, 1]], 1)
    real_getmany = consumer.getmany

    async def getmany(timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        batches = await real_getmany(timeout_ms, max_records)
        for records in batches.values():
            records[0].headers = (("odd", None), ("fine", b"x"))  # type: ignore[assignment]
            records[0].value = None  # type: ignore[assignment]
        return batches

    consumer.getmany = getmany  # type: ignore[method-assign]
    await asyncio.wait_for(processor.run(), 5)
    [(values, offset)] = producer.commits
    assert offset == 2 and b"1" in values
    assert processor._counters.get("dead_letters_total", topic=TP.topic, reason="unparsable") == 1


def test_a_dead_letter_too_large_for_the_producer_goes_as_a_stub() -> None:
    value = b"x" * (DEAD_LETTER_MAX_BYTES + 1)
    record = dead_letter(
        "checkout.orders.v1",
        b"WEB-1",
        value,
        [("h", b"v")],
        "too_large",
        "2 MB",
        partition=3,
        offset=42,
    )
    assert record.topic == "checkout.orders.v1.dlq" and record.key == b"WEB-1"
    stub = json.loads(record.value)
    assert stub["stub"] is True
    assert (stub["topic"], stub["partition"], stub["offset"]) == ("checkout.orders.v1", 3, 42)
    assert (stub["key"], stub["reason"], stub["value_bytes"]) == ("WEB-1", "too_large", len(value))
    headers = dict(record.headers)
    assert headers["error.reason"] == b"too_large" and headers["error.stub"] == b"true"
    small = dead_letter("t", b"k", b"{}", [], "unparsable", "d")
    assert small.value == b"{}"


class _Watched:
    def __init__(self, highwater: int, position: int, committed: int | None) -> None:
        self.hw, self.pos, self.group_offset = highwater, position, committed
        self.tp = TopicPartition("orders", 2)

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def highwater(self, tp: TopicPartition) -> int:
        return self.hw

    async def position(self, tp: TopicPartition) -> int:
        return self.pos

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.group_offset


async def test_a_partition_that_does_not_advance_while_records_wait_is_stalled() -> None:
    now = [0.0]
    counters = WorkerCounters()
    progress = PartitionProgress(counters, stall_after_s=30, clock=lambda: now[0])
    consumer = _Watched(highwater=10, position=4, committed=4)
    await progress.observe(consumer)
    assert counters.gauges["consumer_lag:orders"] == 6
    assert counters.gauges["partition_stalled:orders:2"] == 0
    now[0] = 31.0
    await progress.observe(consumer)
    assert counters.gauges["partition_stalled:orders:2"] == 1
    # It moves: not stalled any more.
    progress.committed({consumer.tp: 8})
    await progress.observe(consumer)
    assert counters.gauges["partition_stalled:orders:2"] == 0
    assert counters.gauges["consumer_lag:orders"] == 2
    # Caught up past a transaction marker: no lag, no stall.
    consumer.pos = 10
    now[0] = 100.0
    await progress.observe(consumer)
    assert counters.gauges["consumer_lag:orders"] == 0
    assert counters.gauges["partition_stalled:orders:2"] == 0


async def test_a_stuck_consumer_shows_its_true_lag() -> None:
    attempts: list[int] = []
    third = asyncio.Event()

    async def handler(batch: list[Inbound]) -> HandlerResult:
        attempts.append(1)
        if len(attempts) >= 3:
            third.set()
        raise AutoReconnect("database down")

    processor, consumer, _ = _processor(handler, [[0, 1]], 1)
    consumer.highwater = lambda tp: 2  # type: ignore[method-assign,assignment,return-value]

    async def committed(tp: TopicPartition) -> int:
        return 0

    async def position(tp: TopicPartition) -> int:
        return 0

    consumer.committed = committed  # type: ignore[attr-defined]
    consumer.position = position  # type: ignore[attr-defined]
    runner = asyncio.create_task(processor.run())
    await asyncio.wait_for(third.wait(), 5)
    runner.cancel()  # a stop while the batch fails again and again
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, 5)
    assert processor._counters.gauges[f"consumer_lag:{TP.topic}"] == 2


async def test_records_of_a_transaction_still_open_count_as_lag_but_not_as_a_stall() -> None:
    now = [0.0]
    counters = WorkerCounters()
    progress = PartitionProgress(counters, stall_after_s=30, clock=lambda: now[0])
    consumer = _Watched(highwater=10, position=4, committed=4)
    consumer.last_stable_offset = lambda tp: 4  # type: ignore[attr-defined]
    await progress.observe(consumer)
    now[0] = 100.0
    await progress.observe(consumer)
    assert counters.gauges["consumer_lag:orders"] == 6
    assert counters.gauges["partition_stalled:orders:2"] == 0
