"""The consume loop with several batches in flight (`max_in_flight` > 1).

A mixin of `chassis.consumer.TransactionalProcessor`: the loop itself is here, the
steps it runs (poll, prepare, commit, rewind, observe) are the processor's.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from chassis.records import HandlerResult, Inbound, OutRecord


@dataclass
class Turn:
    """One in-flight batch's handler: finished (`done`), and whether it failed."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False


@dataclass(frozen=True)
class Prepared:
    """A handled batch waiting for its transaction."""

    started: float
    valid: list[Inbound]
    dead: list[OutRecord]
    result: HandlerResult
    offsets: dict[TopicPartition, OffsetAndMetadata]
    trace: Any = None
    """The batch span's context when tracing is on: its commit is a child of it."""


class PipelinedRun(abc.ABC):
    """`_run_pipelined` over the steps a processor provides."""

    _stopping: asyncio.Event
    _idle: asyncio.Event
    _revoking: bool
    _max_in_flight: int
    _poll_timeout_ms: int

    @abc.abstractmethod
    async def _poll(self, timeout_ms: int, *, in_flight: bool = False) -> Any:
        """The records of one poll (at most `timeout_ms` of waiting), by partition."""

    @abc.abstractmethod
    async def _prepare(
        self,
        batches: dict[TopicPartition, list[Any]],
        after: Turn | None = None,
        turn: Turn | None = None,
    ) -> Prepared:
        """Parse, validate and handle one poll's records (in turn after `after`)."""

    @abc.abstractmethod
    async def _commit(self, prepared: Prepared) -> None:
        """Produce the batch's records and commit its offsets in one transaction."""

    @abc.abstractmethod
    async def _rewind(
        self, failed: Sequence[Mapping[TopicPartition, Sequence[Any]]], error: BaseException
    ) -> None:
        """Seek the failed batches' partitions back to their first records, after a backoff."""

    @abc.abstractmethod
    async def _observe(self, force: bool = False) -> None:
        """Update the lag and stall gauges (`force`: now, not only when due)."""

    async def _run_pipelined(self) -> None:
        """`run` with up to `max_in_flight` batches in flight, committed in poll order.

        Batch N+1 is parsed and validated while batch N's handler waits (for its
        database), and N+1's handler runs while N's transaction commits. The handlers
        themselves still run one at a time, in poll order, each only after the one
        before it succeeded: the database sees the batches' effects in the same order
        as with one batch at a time. What differs is only that N+1's writes may come
        before N's Kafka commit, which is the crash-before-commit case every handler
        already handles (idempotent writes: replayed, the records are found applied).
        The transactions stay one at a time, in poll order. Any failure rewinds every
        batch in flight to its first offset and commits none of them.
        """
        in_flight: deque[tuple[dict[TopicPartition, list[Any]], asyncio.Task[Prepared]]] = deque()
        last_turn: Turn | None = None
        try:
            while not self._stopping.is_set():
                # With work in flight, take only what is already fetched: the oldest batch's
                # commit must not wait for a poll timeout.
                if self._revoking and not in_flight:
                    # Our partitions are being handed over: take nothing new till then.
                    self._idle.set()
                    await asyncio.sleep(0.01)
                    continue
                batches = {}
                if len(in_flight) < self._max_in_flight and not self._revoking:
                    batches = await self._poll(
                        0 if in_flight else self._poll_timeout_ms, in_flight=bool(in_flight)
                    )
                if self._stopping.is_set():
                    return
                if self._revoking:
                    batches = {}  # see `run`: the next owner reads them
                if batches:
                    self._idle.clear()
                    turn = Turn()
                    task = asyncio.create_task(self._prepare(batches, last_turn, turn))
                    in_flight.append((batches, task))
                    last_turn = turn
                    if len(in_flight) < self._max_in_flight:
                        # Let the new handler run up to its first wait, then poll again.
                        await asyncio.sleep(0)
                        continue
                if not in_flight:
                    self._idle.set()
                    await self._observe()
                    continue
                _, task = in_flight[0]
                try:
                    prepared = await task
                    await self._commit(prepared)
                    in_flight.popleft()
                    await self._observe()
                except Exception as error:
                    if self._stopping.is_set():
                        return
                    failed = [b for b, _ in in_flight]
                    await self._drain(in_flight)
                    last_turn = None  # every handler in flight has finished
                    await self._rewind(failed, error)
                if not in_flight:
                    self._idle.set()
        finally:
            await self._drain(in_flight)
            self._idle.set()

    @staticmethod
    async def _drain(
        in_flight: deque[tuple[dict[TopicPartition, list[Any]], asyncio.Task[Prepared]]],
    ) -> None:
        """Waits for the handlers in flight and forgets them (nothing of theirs is committed)."""
        while in_flight:
            _, task = in_flight.popleft()
            with contextlib.suppress(BaseException):
                await task
