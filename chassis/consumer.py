"""The batched, transactional consume -> handle -> produce loop every hot path runs on.

Each poll's records are validated against the topic registry; bad ones go to
`<topic>.dlq` with a reason. The good ones go to the handler as one batch; the
handler writes the database idempotently (deterministic ids, upserts) and returns
the records to produce. Those records, the dead letters and the consumer offsets
commit in one Kafka transaction, so a `read_committed` reader sees each output
once, and a crash before the commit replays the batch into idempotent writes.

No record stops the loop (CONTRACT 6.9): whatever parsing one raises makes it a dead
letter; a handler that fails on the input is given halves of the batch until the one
record it fails on is found and dead-lettered (`chassis.batch`); only the broker's and
the database's errors rewind the batch, retried with a growing backoff and counted
(`infra_retries_total`). Lag and stalled partitions are gauges (`chassis.progress`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from chassis import tracing
from chassis.batch import handle_isolating
from chassis.consumer_limits import MAX_EVENT_BYTES
from chassis.fetch_throttle import throttle_empty_fetches
from chassis.intake import count_rejections, read_poll
from chassis.kafka import TRANSACTION_TIMEOUT_MS, make_producer, send_all
from chassis.metrics import WorkerCounters
from chassis.pipeline import PipelinedRun, Prepared, Turn
from chassis.progress import STALL_AFTER_S, PartitionProgress
from chassis.rebalance import FinishBeforeRevoking
from chassis.records import BatchHandler, HandlerResult
from chassis.retry import Backoff
from chassis.unreadable import UnreadableGuard

log = logging.getLogger(__name__)

OBSERVE_EVERY_S = 1.0
"""How often lag and stalls are recomputed (also after every failed batch)."""


class TransactionalProcessor(PipelinedRun):
    """Consumes `topics` as consumer group `group_id` and hands batches to `handler`."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        transactional_id: str,
        handler: BatchHandler,
        counters: WorkerCounters,
        max_records: int = 500,
        poll_timeout_ms: int = 500,
        retry_backoff_s: float = 1.0,
        schema_of: Mapping[str, str] | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
        group_instance_id: str | None = None,
        empty_fetch_backoff_ms: int = 0,
        producer_batch_bytes: int = 16384,
        max_in_flight: int = 1,
        stall_after_s: float = STALL_AFTER_S,
        transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._max_in_flight = max_in_flight
        self._max_event_bytes = max_event_bytes
        self._empty_fetch_backoff_s = empty_fetch_backoff_ms / 1000
        self.topics = list(topics)
        # Which registry topic's schemas a consumed topic carries: identity in production;
        # tests consume fresh topic names that carry a contract topic's events.
        self._schema_of = dict(schema_of or {})
        self.group_id = group_id
        self._handler = handler
        self._counters = counters
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_backoff_s = retry_backoff_s
        self._backoff = Backoff(counters, retry_backoff_s, group_id)
        self._progress = PartitionProgress(counters, stall_after_s=stall_after_s)
        self._observed_at = 0.0
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            # Static membership (opt-in): a restarted instance takes its predecessor's
            # partitions at once, even when the predecessor died without leaving (SIGKILL).
            # Opt-in because the embedded broker mishandles a clean leave-and-rejoin of a
            # static member in one process (a resumed consumer then waits for minutes).
            group_instance_id=group_instance_id,
        )
        self._unreadable = UnreadableGuard(max_records)
        self._producer = make_producer(
            bootstrap,
            transactional_id=transactional_id,
            max_batch_bytes=producer_batch_bytes,
            transaction_timeout_ms=transaction_timeout_ms,
        )
        self._consumer.subscribe(self.topics, listener=FinishBeforeRevoking(self))
        self._stopping = asyncio.Event()
        # Set while no batch is in hand; `_revoking` while a rebalance waits for that.
        self._idle = asyncio.Event()
        self._idle.set()
        self._revoking = False
        # When the consume loop last came round (a poll returned, even empty): the
        # worker's liveness probe fails when it stops coming round (a hung handler).
        self.last_progress = time.monotonic()

    def assignment(self) -> list[str]:
        return sorted(f"{tp.topic}:{tp.partition}" for tp in self._consumer.assignment())

    async def start(self) -> None:
        # The producer first: its InitProducerId fences a predecessor with our transactional
        # id and aborts the transaction it left open (the broker answers once that is done),
        # so we never consume behind a transaction of our own that is still hanging.
        await self._producer.start()
        await self._consumer.start()
        if self._empty_fetch_backoff_s > 0:
            throttle_empty_fetches(self._consumer, self._empty_fetch_backoff_s)

    def request_stop(self) -> None:
        """`run` returns after the batch in hand (at most one poll timeout later)."""
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        await self._consumer.stop()
        await self._producer.stop()

    async def run(self) -> None:
        """Poll until stopped. A failing batch is retried from its first offset."""
        if self._max_in_flight > 1:
            await self._run_pipelined()
            return
        while not self._stopping.is_set():
            batches = await self._poll(self._poll_timeout_ms)
            if self._stopping.is_set():
                # Not processed, not committed: the next owner of these partitions reads them.
                return
            if not batches or self._revoking:
                # Fetched before a rebalance began: the partitions' next owner (maybe us
                # again) reads these records from the committed offset.
                await self._observe()
                continue
            self._idle.clear()
            try:
                await self._process(batches)
            except Exception as error:
                if self._stopping.is_set():
                    return
                await self._rewind([batches], error)
            finally:
                self._idle.set()
            await self._observe()

    async def _poll(self, timeout_ms: int, *, in_flight: bool = False) -> Any:
        """`getmany`, past records the client cannot read (`chassis.unreadable`)."""
        self.last_progress = time.monotonic()  # the loop came round (liveness)
        if self._unreadable.pending is not None:
            if in_flight or self._revoking:
                # Take nothing new: the failed poll consumed records it never returned,
                # and the partitions go back to their committed offsets once idle.
                return {}
            self._idle.clear()
            try:
                await self._unreadable.skip_pending(
                    self._consumer,
                    self._producer,
                    group_id=self.group_id,
                    counters=self._counters,
                    timeout_ms=self._poll_timeout_ms,
                    committed=self._progress.committed,
                )
            except Exception as failure:
                await self._rewind([], failure)
                return {}
            finally:
                self._idle.set()
        return await self._unreadable.getmany(self._consumer, timeout_ms)

    async def _observe(self, force: bool = False) -> None:
        """Lag and stall gauges, at most every OBSERVE_EVERY_S unless `force`."""
        now = time.monotonic()
        if force or now - self._observed_at >= OBSERVE_EVERY_S:
            self._observed_at = now
            await self._progress.observe(self._consumer)

    async def _rewind(
        self, failed: Sequence[Mapping[TopicPartition, Sequence[Any]]], error: BaseException
    ) -> None:
        """Seeks every partition back to its first uncommitted offset among `failed`.

        The wait doubles with each failure in a row (`chassis.retry`).
        """
        delay = self._backoff.failed(error)
        first: dict[TopicPartition, int] = {}
        for batches in failed:
            for tp, records in batches.items():
                first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
        assigned = self._consumer.assignment()
        for tp, offset in first.items():
            # A partition taken away meanwhile (a rebalance) is not ours to rewind:
            # its new owner starts from the committed offset.
            if tp in assigned:
                self._consumer.seek(tp, offset)
        await self._observe(force=True)
        await asyncio.sleep(delay)

    async def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        await self._commit(await self._prepare(batches))

    async def _prepare(
        self,
        batches: dict[TopicPartition, list[Any]],
        after: Turn | None = None,
        turn: Turn | None = None,
    ) -> Prepared:
        """Validates a poll's records and runs the handler on the good ones.

        With `after`, the handler waits for that earlier batch's handler, and does not
        run at all when it failed; `turn` is this batch's, for the next one.
        """
        try:
            return await self._prepare_in_turn(batches, after)
        except BaseException:
            if turn is not None:
                turn.failed = True
            raise
        finally:
            if turn is not None:
                turn.done.set()

    async def _prepare_in_turn(
        self, batches: dict[TopicPartition, list[Any]], after: Turn | None
    ) -> Prepared:
        started = time.perf_counter()
        valid, dead, offsets = read_poll(
            batches, self._schema_of, self._max_event_bytes, self._counters
        )
        if after is not None:
            await after.done.wait()
            if after.failed:
                raise RuntimeError("an earlier batch in flight failed; this one is rewound too")
        with tracing.batch_span(
            self.group_id, [i.topic for i in valid], [i.headers for i in valid]
        ) as trace:
            result = (
                await handle_isolating(self._handler, valid, self._counters)
                if valid
                else HandlerResult()
            )
            # Each output carries the traceparent of the input it came from (its `cause`).
            result.produce = tracing.carry(
                [(i.envelope.event_id, i.headers) for i in valid], result.produce
            )
        dead.extend(count_rejections(result, self._counters))
        return Prepared(started, valid, dead, result, offsets, trace)

    async def _commit(self, prepared: Prepared) -> None:
        """The batch's records, dead letters and offsets in one Kafka transaction."""
        result, dead, offsets = prepared.result, prepared.dead, prepared.offsets
        with tracing.span(
            "kafka transaction",
            within=prepared.trace,
            group=self.group_id,
            records=len(result.produce),
        ):
            async with self._producer.transaction():
                await send_all(self._producer, [*result.produce, *dead])
                await self._producer.send_offsets_to_transaction(offsets, self.group_id)
        # Committed: nothing after this point may fail the batch (a retry would produce
        # its records a second time).
        try:
            for record in result.produce:
                self._counters.inc("records_produced_total", topic=record.topic)
            self._counters.observe("batch_seconds", time.perf_counter() - prepared.started)
            self._backoff.succeeded()
            self._progress.committed(offsets)
            log.info(
                "batch committed",
                extra={
                    "group": self.group_id,
                    "events": len(prepared.valid),
                    "dead_letters": len(dead),
                    "produced": len(result.produce),
                    "event_ids": [i.envelope.event_id for i in prepared.valid[:50]],
                },
            )
        except Exception:  # bookkeeping only
            log.warning("batch bookkeeping failed", exc_info=True)
