"""The consume -> handle -> produce loop on the real broker: DLQ, transactions, retries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord
from shared.envelope import encode
from shared.examples import example_events
from tests.conftest import Names

ORDERS = "checkout.orders.v1"


def order_records() -> list[bytes]:
    return [encode(env) for topic, env in example_events() if topic == ORDERS]


async def read_all(bootstrap: str, topic: str, expect: int, wait_s: float = 15.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(got) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                got.extend(records)
        # Anything beyond `expect` would be a duplicate: give it a moment to show up.
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got


async def run_processor(
    bootstrap: str,
    source: str,
    group: str,
    handler: Callable[[list[Inbound]], Awaitable[HandlerResult]],
    until: Callable[[], bool],
    counters: WorkerCounters,
) -> None:
    processor = TransactionalProcessor(
        bootstrap=bootstrap,
        topics=[source],
        schema_of={source: ORDERS},
        group_id=group,
        transactional_id=f"{group}-tx",
        handler=handler,
        counters=counters,
        retry_backoff_s=0.1,
    )
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:
        for _ in range(300):
            if until():
                break
            await asyncio.sleep(0.1)
    finally:
        processor.request_stop()
        await asyncio.wait_for(task, 10)
        await processor.stop()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_through(
    kafka_bootstrap: str, names: Names
) -> None:
    source = names.topic(ORDERS)
    out = names.topic("out")
    await ensure_topics(kafka_bootstrap, [source, out], partitions=1)
    marker = names.run
    good = []
    for value in order_records():
        doc = json.loads(value)
        doc["event_id"] = f"{doc['event_id']}-{marker}"
        good.append(json.dumps(doc).encode())
    broken_schema = json.loads(good[0])
    broken_schema["event_id"] = f"bad-{marker}"
    broken_schema["data"]["lines"][0]["net_amount_minor"] = 12.5
    bad = [b"\xff not json " + marker.encode(), json.dumps(broken_schema).encode()]
    await produce(kafka_bootstrap, source, [*good, *bad])

    seen: list[Inbound] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        mine = [i for i in batch if i.envelope.event_id.endswith(marker)]
        seen.extend(mine)
        return HandlerResult(produce=[OutRecord(out, i.key, i.value) for i in mine])

    counters = WorkerCounters()
    await run_processor(
        kafka_bootstrap,
        source,
        names.group(),
        handler,
        lambda: (
            len(seen) >= len(good)
            and counters.get("dead_letters_total", topic=source, reason="schema_violation") >= 1
        ),
        counters,
    )
    assert [i.envelope.event_id for i in seen] == [json.loads(g)["event_id"] for g in good]
    produced = await read_all(kafka_bootstrap, out, len(good))
    assert len(produced) == len(good)

    dead = [
        r
        for r in await read_all(kafka_bootstrap, f"{source}.dlq", 100, wait_s=3)
        if marker.encode() in r.value
    ]
    assert len(dead) == 2
    reasons = {dict(r.headers)["error.reason"].decode(): r for r in dead}
    assert set(reasons) == {"unparsable", "schema_violation"}
    schema = reasons["schema_violation"]
    assert b"net_amount_minor" in dict(schema.headers)["error.detail"]
    assert schema.value == bad[1] and schema.key == b"k"


async def test_a_failed_batch_is_retried_and_its_output_committed_once(
    kafka_bootstrap: str, names: Names
) -> None:
    source, out = names.topic(ORDERS), names.topic("out")
    await ensure_topics(kafka_bootstrap, [source, out], partitions=1)
    marker = names.run
    value = json.loads(order_records()[0])
    value["event_id"] = f"once-{marker}"
    await produce(kafka_bootstrap, source, [json.dumps(value).encode()])
    calls = 0
    done = False

    async def flaky(batch: list[Inbound]) -> HandlerResult:
        nonlocal calls, done
        mine = [i for i in batch if i.envelope.event_id == f"once-{marker}"]
        if mine:
            calls += 1
            if calls == 1:
                raise ConnectionError("database went away")
            done = True
        return HandlerResult(produce=[OutRecord(out, i.key, i.value) for i in mine])

    group = names.group()
    await run_processor(kafka_bootstrap, source, group, flaky, lambda: done, WorkerCounters())
    assert calls == 2
    # A second run of the same group finds its offsets committed: nothing is redelivered.
    calls_before = calls
    give_up = time.monotonic() + 3
    await run_processor(
        kafka_bootstrap, source, group, flaky, lambda: time.monotonic() > give_up, WorkerCounters()
    )
    produced = await read_all(kafka_bootstrap, out, 1)
    assert len(produced) == 1
    assert calls == calls_before


class _NotUtf8(str):
    """A header key that encodes to bytes which are not UTF-8 (any client may send one)."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe-key"


@pytest.mark.parametrize("max_in_flight", [1, 3])
async def test_a_record_the_client_cannot_read_is_stubbed_and_skipped(
    kafka_bootstrap: str, names: Names, monkeypatch: Any, max_in_flight: int
) -> None:
    # aiokafka's C reader raises UnicodeDecodeError on the header key in every getmany:
    # before, the loop died on it (and again after every restart). The failing getmany
    # also consumes what it read of other partitions: none of that may be lost.
    from aiokafka.producer import message_accumulator
    from aiokafka.producer import producer as producer_module
    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    source = names.topic(ORDERS)
    await ensure_topics(kafka_bootstrap, [source], partitions=3)
    marker = names.run

    def value(name: str) -> bytes:
        doc = json.loads(order_records()[0])
        doc["event_id"] = f"{name}-{marker}"
        return json.dumps(doc).encode()

    before = [(p, f"before-{p}-{n}") for n in range(4) for p in range(3)]
    after = [(p, f"after-{p}-{n}") for n in range(4) for p in range(3)]
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for partition, name in before:
            await producer.send_and_wait(source, value(name), key=b"k", partition=partition)
        with monkeypatch.context() as patch:
            # The pure-Python builder writes the key's bytes as its `encode` gives them.
            for module in (message_accumulator, producer_module):
                patch.setattr(module, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
            poison = await producer.send_and_wait(
                source, value("poison"), key=b"k", partition=1, headers=[(_NotUtf8("h"), b"x")]
            )
        for partition, name in after:
            await producer.send_and_wait(source, value(name), key=b"k", partition=partition)
    finally:
        await producer.stop()

    seen: list[str] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        seen.extend(i.envelope.event_id.removesuffix(f"-{marker}") for i in batch)
        return HandlerResult()

    counters = WorkerCounters()
    expected = {name for _, name in [*before, *after]}
    processor = TransactionalProcessor(
        bootstrap=kafka_bootstrap,
        topics=[source],
        schema_of={source: ORDERS},
        group_id=names.group(),
        transactional_id=f"{names.group()}-tx",
        handler=handler,
        counters=counters,
        retry_backoff_s=0.1,
        max_records=500,
        max_in_flight=max_in_flight,
    )
    await processor.start()
    task = asyncio.create_task(processor.run())
    try:
        for _ in range(300):
            if expected <= set(seen):
                break
            await asyncio.sleep(0.1)
    finally:
        processor.request_stop()
        await asyncio.wait_for(task, 10)
        await processor.stop()
    assert sorted(seen) == sorted(expected), "a record was lost or handled twice"
    [stub] = await read_all(kafka_bootstrap, f"{source}.dlq", 1, wait_s=5)
    headers = dict(stub.headers)
    assert headers["error.reason"] == b"unreadable" and headers["error.stub"] == b"true"
    assert (json.loads(stub.value)["partition"], json.loads(stub.value)["offset"]) == (
        1,
        poison.offset,
    )
    assert counters.get("dead_letters_total", topic=source, reason="unreadable") == 1
