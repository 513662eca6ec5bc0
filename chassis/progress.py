"""Lag and stalls of a consumer's partitions, as worker gauges (issue: a halt is visible).

`consumer_lag:<topic>` sums, over every assigned partition of the topic, the records
between the group's committed position and the high watermark: measured after every
turn of the loop, a failed one too, so a stuck consumer shows its true lag.
`partition_stalled:<topic>:<partition>` is 1 while records wait on a partition (the
consumer's position is below the high watermark) and the committed position has not
moved for `stall_after_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import TopicPartition

from chassis.metrics import WorkerCounters

log = logging.getLogger(__name__)

STALL_AFTER_S = 60.0
"""Default: records waiting this long behind an unmoving position make a stall."""


class PartitionProgress:
    """Tracks committed positions against high watermarks; writes the gauges."""

    def __init__(
        self,
        counters: WorkerCounters,
        *,
        stall_after_s: float = STALL_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._stall_after_s = stall_after_s
        self._clock = clock
        self._committed: dict[TopicPartition, int] = {}
        self._moved_at: dict[TopicPartition, float] = {}
        self._stalled_keys: set[str] = set()
        self._lag_topics: set[str] = set()

    def committed(self, offsets: Mapping[TopicPartition, Any]) -> None:
        """Our transaction committed `offsets` (OffsetAndMetadata or int)."""
        now = self._clock()
        for tp, offset in offsets.items():
            value = int(getattr(offset, "offset", offset))
            if value != self._committed.get(tp):
                self._committed[tp] = value
                self._moved_at[tp] = now

    async def observe(self, consumer: Any) -> None:
        """Recomputes the gauges for the partitions `consumer` holds. Never raises."""
        try:
            await self._observe(consumer)
        except Exception:  # bookkeeping only: never fail the loop over a gauge
            log.debug("lag bookkeeping failed", exc_info=True)

    async def _observe(self, consumer: Any) -> None:
        now = self._clock()
        assigned = set(consumer.assignment())
        lag_by_topic: dict[str, int] = dict.fromkeys({tp.topic for tp in assigned}, 0)
        stalled: set[str] = set()
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            committed = await self._committed_offset(consumer, tp)
            position = await _position(consumer, tp)
            # The position runs past transaction markers the committed offset stops before.
            caught_up = position is not None and position >= highwater
            lag_by_topic[tp.topic] += 0 if caught_up else max(0, highwater - committed)
            # Records of a transaction still open are not ours to read yet: no stall.
            readable_end = min(highwater, _last_stable(consumer, tp, highwater))
            waiting = position is None or position < readable_end
            if not waiting or committed >= readable_end:
                self._moved_at[tp] = now
            elif now - self._moved_at.setdefault(tp, now) >= self._stall_after_s:
                stalled.add(f"partition_stalled:{tp.topic}:{tp.partition}")
        for tp in list(self._committed):
            if tp not in assigned:  # handed over: its new owner reports it
                self._committed.pop(tp, None)
                self._moved_at.pop(tp, None)
        for topic, lag in lag_by_topic.items():
            self._counters.set_gauge(f"consumer_lag:{topic}", lag)
        for tp in assigned:
            self._counters.set_gauge(f"partition_stalled:{tp.topic}:{tp.partition}", 0)
        for key in self._stalled_keys - {
            f"partition_stalled:{tp.topic}:{tp.partition}" for tp in assigned
        }:
            self._counters.gauges.pop(key, None)
        for key in stalled:
            self._counters.set_gauge(key, 1)
        self._stalled_keys = {f"partition_stalled:{tp.topic}:{tp.partition}" for tp in assigned}

    async def _committed_offset(self, consumer: Any, tp: TopicPartition) -> int:
        known = self._committed.get(tp)
        if known is not None:
            return known
        # A partition we have not committed on yet: the group's offset, asked once.
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            async with asyncio.timeout(5):
                offset = await consumer.committed(tp)
        except Exception:
            offset = None
        value = int(offset) if offset is not None else 0
        self._committed[tp] = value
        self._moved_at.setdefault(tp, self._clock())
        return value


def _last_stable(consumer: Any, tp: TopicPartition, default: int) -> int:
    try:
        offset = consumer.last_stable_offset(tp)
    except Exception:
        return default
    return int(offset) if isinstance(offset, int) and offset >= 0 else default


async def _position(consumer: Any, tp: TopicPartition) -> int | None:
    try:
        async with asyncio.timeout(1):
            return int(await consumer.position(tp))
    except Exception:
        return None
