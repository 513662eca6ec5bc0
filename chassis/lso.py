"""Watches how far the last stable offset of each output partition trails its high watermark.

A read_committed reader (finance on the ledger, our own downstream workers) never reads
past the last stable offset (LSO): the first offset of the oldest transaction still open
on the partition. A transaction left open by a producer that died mid-batch holds it
there until a producer with the same transactional id starts (fencing, KIP-98) or the
broker's transaction timeout aborts it; meanwhile the readers see nothing new, with no
error anywhere. This makes that visible, per partition, as two gauges:

- `lso_lag:<topic>:<partition>`: records between the LSO and the high watermark (0 when
  no transaction is open);
- `lso_stuck:<topic>:<partition>`: 1 when the LSO trails the high watermark and has not
  moved for longer than `stuck_after_s`, else 0.

The offsets come from ListOffsets under both isolation levels (a consumer's
`end_offsets`, read_committed and read_uncommitted), which Kafka and the embedded broker
both answer with the LSO and the high watermark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from chassis.metrics import WorkerCounters
from shared.topics import DLQ_SUFFIX, dlq_name

log = logging.getLogger(__name__)


@dataclass
class _Partition:
    stable: int = -1
    moved_at: float = 0.0


@dataclass(frozen=True)
class LsoReading:
    """One partition's last sample."""

    high_watermark: int
    last_stable: int
    stuck: bool

    @property
    def lag(self) -> int:
        return max(0, self.high_watermark - self.last_stable)


class LsoWatch:
    """Samples the LSO and high watermark of every partition of `topics` into `counters`."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        counters: WorkerCounters,
        *,
        stuck_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topics = list(dict.fromkeys(topics))
        self._bootstrap = bootstrap
        self._counters = counters
        self._stuck_after_s = stuck_after_s
        self._clock = clock
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._committed: AIOKafkaConsumer | None = None
        self._uncommitted: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # No group, nothing assigned: they only ask for end offsets.
        self._committed = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, isolation_level="read_committed"
        )
        self._uncommitted = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, isolation_level="read_uncommitted"
        )
        await self._committed.start()
        await self._uncommitted.start()

    async def stop(self) -> None:
        for consumer in (self._committed, self._uncommitted):
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await consumer.stop()
        self._committed = self._uncommitted = None

    async def sample(self) -> dict[TopicPartition, LsoReading]:
        """One reading per partition; also sets the gauges."""
        if self._committed is None or self._uncommitted is None:
            raise RuntimeError("LsoWatch not started")
        consumer = self._committed
        if any(consumer.partitions_for_topic(t) is None for t in self.topics):
            await consumer.topics()  # a metadata refresh: topics created since we started
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        # High watermark first: an LSO read after it can only be higher, never a false lag.
        high = await self._uncommitted.end_offsets(partitions)
        stable = await self._committed.end_offsets(partitions)
        now = self._clock()
        readings = {}
        for tp in partitions:
            state = self._partitions.setdefault(tp, _Partition(moved_at=now))
            if stable[tp] != state.stable:
                state.stable, state.moved_at = stable[tp], now
            behind = stable[tp] < high[tp]
            stuck = behind and now - state.moved_at > self._stuck_after_s
            reading = LsoReading(high[tp], stable[tp], stuck)
            readings[tp] = reading
            key = f"{tp.topic}:{tp.partition}"
            self._counters.set_gauge(f"lso_lag:{key}", reading.lag)
            self._counters.set_gauge(f"lso_stuck:{key}", 1 if stuck else 0)
        return readings

    async def run(self, interval_s: float) -> None:
        """Samples every `interval_s` until cancelled; a failed sample is logged, not raised.

        The gauges keep their last values while the broker does not answer.
        """
        stuck_before: set[TopicPartition] = set()
        try:
            while True:
                try:
                    if self._committed is None:
                        await self.start()
                    readings = await self.sample()
                    stuck = {tp for tp, reading in readings.items() if reading.stuck}
                    for tp in sorted(stuck - stuck_before):
                        log.warning(
                            "last stable offset stuck: read_committed readers see nothing new",
                            extra={
                                "topic": tp.topic,
                                "partition": tp.partition,
                                "lso_lag": readings[tp].lag,
                            },
                        )
                    stuck_before = stuck
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the broker is away; the gauges keep their values
                    log.warning("LSO sample failed", extra={"error": type(error).__name__})
                    await self.stop()
                await asyncio.sleep(interval_s)
        finally:
            await self.stop()


def output_topics(topics: Sequence[str], consumed: Sequence[str]) -> list[str]:
    """What a worker produces to: its topics that it does not consume, and its DLQs."""
    inputs = set(consumed)
    outputs = [t for t in topics if t not in inputs]
    outputs += [dlq_name(t) for t in consumed if not t.endswith(DLQ_SUFFIX)]
    return list(dict.fromkeys(outputs))
