"""The chassis consume loop's fast paths must not change what it checks or commits.

The integer check scans bytes as the regex did; the consume loop hands pipelined
batches to the handler one at a time, commits them in poll order and rewinds all of
them on a failure; a revocation waits for the batches in hand; the empty-fetch
throttle only ever delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo.errors import AutoReconnect

from chassis import consumer_limits as chassis_consumer
from chassis.consumer import TransactionalProcessor
from chassis.consumer_limits import check_limits
from chassis.fetch_throttle import throttle_empty_fetches
from chassis.metrics import WorkerCounters
from chassis.rebalance import FinishBeforeRevoking
from chassis.records import HandlerResult, Inbound, OutRecord
from shared.envelope import EventValidationError, encode
from shared.examples import example_events
from shared.topics import REGISTRATION_ENTITLEMENTS

_LONG_DIGITS = re.compile(rb"\d{19,}")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"1", b"9", b"0", b"a", b'"', b":", b"\xd9\xa3"]), max_size=60))
def test_the_long_number_scan_finds_a_run_of_19_digits_as_the_regex_does(
    pieces: list[bytes],
) -> None:
    value = b"".join(pieces)
    found = chassis_consumer._LONG_RUN in value.translate(chassis_consumer._DIGITS_AS_ZERO)
    assert found == bool(_LONG_DIGITS.search(value))


def test_an_integer_beyond_64_bits_is_still_a_schema_violation() -> None:
    envelope: Any = type("E", (), {"schema_version": 1})()
    with pytest.raises(EventValidationError) as caught:
        check_limits(b'{"data":{"n":123456789012345678901}}', envelope, 10_000)
    assert caught.value.reason == "schema_violation"
    check_limits(b'{"data":{"n":1234567890123456789}}', envelope, 10_000)


# --- the empty-fetch throttle --------------------------------------------------------------


class _Fetcher:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers

    async def _proc_fetch_request(self, *_: Any) -> bool:
        return self.answers.pop(0)


class _WithFetcher:
    def __init__(self, fetcher: _Fetcher) -> None:
        self._fetcher = fetcher


async def test_an_empty_fetch_is_followed_by_a_pause_and_a_fruitful_one_is_not() -> None:
    fetcher = _Fetcher([False, True])
    assert throttle_empty_fetches(_WithFetcher(fetcher), 0.2)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await fetcher._proc_fetch_request() is False
    assert loop.time() - started >= 0.19
    started = loop.time()
    assert await fetcher._proc_fetch_request() is True
    assert loop.time() - started < 0.1


async def test_a_throttled_fetch_cancelled_in_its_pause_ends_quietly() -> None:
    fetcher = _Fetcher([False])
    throttle_empty_fetches(_WithFetcher(fetcher), 30)  # type: ignore[arg-type]
    task = asyncio.ensure_future(fetcher._proc_fetch_request())
    await asyncio.sleep(0.05)
    task.cancel()
    assert await task is False


def test_a_consumer_without_the_hook_is_left_alone() -> None:
    assert throttle_empty_fetches(object(), 0.1) is False  # type: ignore[arg-type]


# --- the pipelined consume loop ----------------------------------------------------------

TOPIC = "chassis.test.entitlements"
TP = TopicPartition(TOPIC, 0)


def _event_value(number: int) -> bytes:
    _, envelope = next(
        (t, e)
        for t, e in example_events()
        if t == REGISTRATION_ENTITLEMENTS and e.event_type == "entitlement.order_applied"
    )
    return encode(envelope.model_copy(update={"event_id": f"evt-{number}"}))


@dataclasses.dataclass
class _Record:
    offset: int
    value: bytes
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = ()


class _Consumer:
    def __init__(self, polls: list[list[int]], processor: TransactionalProcessor) -> None:
        self.all_polls = list(polls)
        self.polls = polls
        self.processor = processor
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if not self.polls:
            if timeout_ms:
                self.processor.request_stop()
            await asyncio.sleep(0)
            return {}
        offsets = self.polls.pop(0)
        return {TP: [_Record(o, _event_value(o)) for o in offsets]}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Redelivers from `offset`, as the broker would."""
        self.seeks.append((tp, offset))
        self.polls = [batch for batch in self.all_polls if batch[0] >= offset]

    def highwater(self, tp: TopicPartition) -> None:
        return None


class _Producer:
    def __init__(self) -> None:
        self.on_commit: Any = lambda offset: None
        self.commits: list[tuple[list[bytes], int]] = []
        self._pending: list[bytes] = []
        self._offset = -1

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self._pending, self._offset = [], -1
        yield
        await asyncio.sleep(0.01)  # the broker
        self.commits.append((self._pending, self._offset))
        self.on_commit(self._offset)

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        self._pending.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: str) -> None:
        self._offset = offsets[TP].offset


def _processor(
    handler: Any, polls: list[list[int]], max_in_flight: int = 3
) -> tuple[Any, _Consumer, _Producer]:
    processor = TransactionalProcessor(
        bootstrap="127.0.0.1:1",
        topics=[TOPIC],
        group_id="g",
        transactional_id="t",
        handler=handler,
        counters=WorkerCounters(),
        retry_backoff_s=0,
        schema_of={TOPIC: REGISTRATION_ENTITLEMENTS},
        max_in_flight=max_in_flight,
    )
    consumer, producer = _Consumer(polls, processor), _Producer()
    processor._consumer = consumer  # type: ignore[assignment]
    processor._producer = producer  # type: ignore[assignment]
    return processor, consumer, producer


def _output(batch: list[Inbound]) -> HandlerResult:
    return HandlerResult(produce=[OutRecord("ledger", None, str(i.offset).encode()) for i in batch])


async def test_pipelined_batches_are_handled_one_at_a_time_and_committed_in_poll_order() -> None:
    running: list[int] = []
    events: list[str] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        running.append(batch[0].offset)
        assert len(running) == 1, "two handlers ran at once"
        events.append(f"handle {batch[0].offset}")
        await asyncio.sleep(0.02)  # the database
        running.pop()
        return _output(batch)

    processor, _, producer = _processor(handler, [[0, 1], [2, 3], [4]])
    producer.on_commit = lambda offset: events.append(f"commit {offset}")
    await asyncio.wait_for(processor.run(), 5)
    assert producer.commits == [([b"0", b"1"], 2), ([b"2", b"3"], 4), ([b"4"], 5)]
    handled = [e for e in events if e.startswith("handle")]
    assert handled == ["handle 0", "handle 2", "handle 4"]
    # The next batch's handler ran while the previous one's transaction committed.
    assert events.index("handle 2") < events.index("commit 2")


async def test_a_failed_batch_stops_the_batches_behind_it_and_all_are_retried_in_order() -> None:
    failures = [True]
    handled: list[int] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        handled.append(batch[0].offset)
        await asyncio.sleep(0.02)
        if batch[0].offset == 0 and failures:
            failures.pop()
            raise AutoReconnect("database down")
        return _output(batch)

    processor, consumer, producer = _processor(handler, [[0, 1], [2, 3]])
    await asyncio.wait_for(processor.run(), 5)
    # The batch behind the failed one never reached its handler: nothing of it was
    # written ahead of the retried one. Both were rewound, and committed once after.
    assert handled == [0, 0, 2]
    assert consumer.seeks == [(TP, 0)]
    assert producer.commits == [([b"0", b"1"], 2), ([b"2", b"3"], 4)]


@pytest.mark.parametrize("max_in_flight", [1, 3])
async def test_a_rebalance_waits_until_the_batches_in_hand_are_committed(
    max_in_flight: int,
) -> None:
    release, started = asyncio.Event(), asyncio.Event()
    handled: list[int] = []

    async def handler(batch: list[Inbound]) -> HandlerResult:
        handled.append(batch[0].offset)
        started.set()
        if batch[0].offset == 0:
            await release.wait()  # a slow database while the group rebalances
        return _output(batch)

    processor, _, producer = _processor(handler, [[0, 1], [2, 3], [4]], max_in_flight)
    runner = asyncio.create_task(processor.run())
    await asyncio.wait_for(started.wait(), 2)
    listener = FinishBeforeRevoking(processor)
    revoke = asyncio.create_task(listener.on_partitions_revoked({TP}))
    await asyncio.sleep(0.05)
    assert not revoke.done(), "partitions handed over with a batch in hand"
    release.set()
    await asyncio.wait_for(revoke, 2)
    # Everything handled so far is committed before the next owner reads the offsets,
    # and nothing new is taken on while the rebalance goes on.
    committed = {values[0] for values, _ in producer.commits}
    assert {str(o).encode() for o in handled} <= committed
    taken = list(handled)
    await asyncio.sleep(0.05)
    assert handled == taken
    await listener.on_partitions_assigned({TP})
    await asyncio.wait_for(runner, 5)
