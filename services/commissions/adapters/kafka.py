"""Kafka side of the outbox: the relay's publisher and the worker's published horizon.

The publisher is transactional with one fixed transactional id, so starting a new
relay fences any older one still running. It keeps its checkpoint (the last outbox
sequence number published) as the committed offset of a consumer group that never
consumes, written with `send_offsets_to_transaction` in the same transaction as the
messages: Kafka commits both or neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from chassis.kafka import TRANSACTION_TIMEOUT_MS, make_producer, send_all
from chassis.records import OutRecord
from services.commissions.domain.order_line import Source
from services.commissions.service_layer.ports import HorizonUnavailableError, OutboxMessage

log = logging.getLogger(__name__)


async def committed_offsets(
    bootstrap: str, group_id: str
) -> dict[tuple[str, int], OffsetAndMetadata]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {
        (tp.topic, tp.partition): meta
        for tp, meta in offsets.items()
        if meta is not None and meta.offset >= 0
    }


class KafkaLedgerPublisher:
    def __init__(
        self,
        bootstrap: str,
        *,
        transactional_id: str,
        checkpoint_group: str,
        checkpoint_topic: str,
        epoch: str,
        fallback_checkpoint: int = 0,
        transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    ) -> None:
        self._bootstrap = bootstrap
        self._transactional_id = transactional_id
        self._group = checkpoint_group
        self._tp = TopicPartition(checkpoint_topic, 0)
        self._epoch = epoch
        self._fallback = fallback_checkpoint
        self._transaction_timeout_ms = transaction_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._checkpoint = 0

    async def start(self) -> None:
        producer = make_producer(
            self._bootstrap,
            transactional_id=self._transactional_id,
            transaction_timeout_ms=self._transaction_timeout_ms,
        )
        # Starting initialises the transactional id: any older relay is fenced from here on,
        # and its unfinished transaction is aborted before we read the checkpoint.
        await producer.start()
        self._producer = producer
        stored = (await committed_offsets(self._bootstrap, self._group)).get(
            (self._tp.topic, self._tp.partition)
        )
        if stored is not None and stored.metadata == self._epoch:
            self._checkpoint = stored.offset
            return
        # No checkpoint for this outbox (first start, a new database, or retention expired
        # it): fall back on the database's published mark, which trails the truth.
        if self._fallback:
            log.warning(
                "outbox checkpoint not in Kafka; using the database's published mark",
                extra={"seq": self._fallback},
            )
        self._checkpoint = self._fallback

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def checkpoint(self) -> int:
        return self._checkpoint

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        await self._commit(messages, messages[-1].seq)

    async def keep_alive(self) -> None:
        """Re-commit the checkpoint so offset retention never expires it on a quiet ledger."""
        await self._commit([], self._checkpoint)

    async def _commit(self, messages: Sequence[OutboxMessage], seq: int) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("publisher not started")
        async with producer.transaction():
            await send_all(
                producer,
                [
                    OutRecord(m.topic, m.key, m.value, headers=(("event_id", m.event_id.encode()),))
                    for m in messages
                ],
            )
            await producer.send_offsets_to_transaction(
                {self._tp: OffsetAndMetadata(seq, self._epoch)}, self._group
            )
        self._checkpoint = seq


class KafkaPublishedHorizon:
    """Which input records' ledger events are committed: offsets below the group's commit."""

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self._bootstrap = bootstrap
        self._group = group_id

    async def snapshot(self) -> Callable[[Source], bool]:
        try:
            offsets = await committed_offsets(self._bootstrap, self._group)
        except (KafkaError, OSError, TimeoutError) as error:
            raise HorizonUnavailableError(f"broker unreachable: {type(error).__name__}") from error
        committed = {position: int(meta.offset) for position, meta in offsets.items()}

        def published(source: Source) -> bool:
            return source.offset < committed.get((source.topic, source.partition), 0)

        return published
