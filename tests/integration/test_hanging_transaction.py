"""A producer SIGKILLed mid-transaction: the LSO alarm goes up, and the restart clears it.

The killed producer leaves a transaction open on the output partitions, which holds
their last stable offset back: a read_committed reader sees nothing past it. The
`lso_stuck` gauge says so after its bound. A processor restarted with the same
transactional id aborts that transaction when its producer starts (KIP-98 fencing),
before it consumes; then the reader, which kept reading all along, gets every committed
record and none of the aborted ones, and the gauges go back to 0.

Stated bounds (2-core CI box, embedded broker): the LSO catches up within
`LSO_CATCH_UP_S` of the restarted producer's start (measured 0.02-0.4 s with
`python -m devkit.txn_probe`), and the reader holds the restarted processor's output
within `READER_CATCH_UP_S` of it (that includes joining the consumer group).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics, make_producer
from chassis.lso import LsoWatch
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord
from devkit.txn_probe import COMMITTED_BEFORE, PARTITIONS, kill_mid_transaction
from shared.envelope import encode
from shared.examples import example_events
from tests.conftest import Names

ORDERS = "checkout.orders.v1"
STUCK_AFTER_S = 1.0
LSO_CATCH_UP_S = 5.0
READER_CATCH_UP_S = 30.0


class Reader:
    """A read_committed reader that keeps up with the output topic from its start."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.values: list[bytes] = []
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                self.values.extend(r.value for r in records if r.value is not None)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


async def eventually(predicate: Any, within_s: float, what: str) -> float:
    """Seconds until `predicate()` held; fails after `within_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def gauges(counters: WorkerCounters, name: str, topic: str) -> list[float]:
    return [v for k, v in counters.gauges.items() if k.startswith(f"{name}:{topic}:")]


async def test_a_producer_killed_mid_transaction_raises_lso_stuck_until_its_restart_fences_it(
    kafka_bootstrap: str, names: Names
) -> None:
    source, out = names.topic(ORDERS), names.topic("out")
    txid = f"{names.group()}-tx"
    await ensure_topics(kafka_bootstrap, [source, out], partitions=PARTITIONS)
    inputs = []
    for value in (encode(env) for topic, env in example_events() if topic == ORDERS):
        doc = json.loads(value)
        doc["event_id"] = f"{doc['event_id']}-{names.run}"
        inputs.append(json.dumps(doc).encode())
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    for value in inputs:
        await producer.send_and_wait(source, value, key=b"k")
    await producer.stop()

    counters = WorkerCounters()
    watch = LsoWatch(kafka_bootstrap, [out], counters, stuck_after_s=STUCK_AFTER_S)
    watching = asyncio.create_task(watch.run(0.1))

    async def passthrough(batch: list[Inbound]) -> HandlerResult:
        return HandlerResult(produce=[OutRecord(out, i.key, i.value) for i in batch])

    processor = TransactionalProcessor(
        bootstrap=kafka_bootstrap,
        topics=[source],
        schema_of={source: ORDERS},
        group_id=names.group(),
        transactional_id=txid,
        handler=passthrough,
        counters=counters,
    )
    running: asyncio.Task[None] | None = None
    try:
        async with Reader(kafka_bootstrap, out) as reader:
            # Commits COMMITTED_BEFORE records, leaves a transaction open, is SIGKILLed.
            await asyncio.to_thread(kill_mid_transaction, kafka_bootstrap, out, txid, 60_000)
            await eventually(
                lambda: max(gauges(counters, "lso_stuck", out), default=0) == 1,
                within_s=STUCK_AFTER_S + 10,
                what="lso_stuck raised for the killed producer's partitions",
            )
            assert max(gauges(counters, "lso_lag", out)) > 0
            assert len(reader.values) == COMMITTED_BEFORE

            await processor.start()  # InitProducerId with the killed producer's id
            await eventually(
                lambda: (
                    gauges(counters, "lso_lag", out) == [0] * PARTITIONS
                    and gauges(counters, "lso_stuck", out) == [0] * PARTITIONS
                ),
                within_s=LSO_CATCH_UP_S,
                what="the LSO caught up and lso_stuck cleared after the restart",
            )
            running = asyncio.create_task(processor.run())
            await eventually(
                lambda: len(reader.values) >= COMMITTED_BEFORE + len(inputs),
                within_s=READER_CATCH_UP_S,
                what="the reader got the restarted processor's output",
            )
            await asyncio.sleep(1.0)  # anything aborted or doubled would show up by now
            values = list(reader.values)
    finally:
        processor.request_stop()
        if running is not None:
            await asyncio.wait_for(running, 10)
        await processor.stop()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching

    assert not [v for v in values if v.startswith(b"open-")], "aborted records were read"
    assert sorted(v for v in values if v.startswith(b"committed-")) == sorted(
        f"committed-{i}".encode() for i in range(COMMITTED_BEFORE)
    )
    assert sorted(v for v in values if not v.startswith(b"committed-")) == sorted(inputs)
