"""Kafka plumbing: topic provisioning, producers, sending (the records: `chassis.records`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from chassis.records import PRODUCER_MAX_REQUEST_BYTES, OutRecord
from shared.topics import DLQ_SUFFIX, dlq_name

log = logging.getLogger(__name__)

# Kafka error codes that mean "the topic is there already": fine for an idempotent create.
_TOPIC_EXISTS = {36}

TRANSACTION_TIMEOUT_MS = 60_000
"""The default `KAFKA_TRANSACTION_TIMEOUT_MS` (Kafka's own client default)."""


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    with_dlq: bool = True,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the missing topics (and their `.dlq`); returns the names it created.

    Idempotent and safe when several processes race to create the same topic.
    """
    wanted: list[str] = []
    for topic in topics:
        wanted.append(topic)
        if with_dlq and not topic.endswith(DLQ_SUFFIX):
            wanted.append(dlq_name(topic))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(wanted) if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication_factor) for t in missing]
        )
        created = []
        for topic_error in getattr(response, "topic_errors", []):
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
            elif code not in _TOPIC_EXISTS:
                raise KafkaError(f"creating topic {name} failed with error code {code}")
        if created:
            log.info("topics created", extra={"topics": created, "partitions": partitions})
        return created
    finally:
        await admin.close()


def make_producer(
    bootstrap: str,
    *,
    transactional_id: str | None = None,
    max_batch_bytes: int = 16384,
    transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all); transactional when given an id.

    `max_batch_bytes` bounds one partition's record batch: a loop that produces thousands
    of records per transaction sends fewer, larger requests with a larger one.
    `transaction_timeout_ms` bounds how long a transaction this producer leaves open (it
    is killed mid-batch and no successor takes its transactional id over) holds back the
    last stable offset: Kafka aborts it after that long. Starting a producer with the
    same transactional id aborts it at once (KIP-98 fencing).
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        transactional_id=transactional_id,
        transaction_timeout_ms=transaction_timeout_ms,
        max_request_size=max(PRODUCER_MAX_REQUEST_BYTES, max_batch_bytes + 64 * 1024),
        max_batch_size=max_batch_bytes,
    )


def clip_aborted_transactions() -> None:
    """Embedded-broker workaround (`KAFKA_CLIP_ABORTED_TRANSACTIONS`, off in production):
    read_committed consumers of this process ignore the aborted transactions a fetch
    response lists that start before the fetch offset.

    The defect: noida-db 0.2.3 lists in every read_committed fetch response every aborted
    transaction of the partition below the last stable offset, where Kafka lists only those
    that overlap the fetched range; and, as Kafka does, it keeps a transactional id's
    producer id across restarts (only the epoch moves). The client (aiokafka, like the Java
    one) marks a listed producer id aborted from the transaction's first offset until it
    meets that transaction's abort marker in the same response. A consumer that keeps up
    fetches after the marker, so it never meets it, and skips every later committed batch
    of that producer id as aborted: a worker SIGKILLed mid-transaction and restarted under
    the same transactional id has its output silently skipped by such readers
    (`python -m devkit.txn_probe --case reader`: 30 of 330 committed records read).

    Ignoring what starts before the fetch offset is exact on this broker: a fetch offset
    never falls inside an aborted transaction, because the last stable offset stays at a
    transaction's first offset until its marker is written and a fetch response then
    carries every batch up to the last stable offset, marker included. Process-wide (the
    record parser is aiokafka's module-level class); installing it twice is harmless.
    """
    from aiokafka.consumer import fetcher

    parser = fetcher.PartitionRecords
    if getattr(parser, "clips_aborted_transactions", False):
        return

    class ClippedPartitionRecords(parser):  # type: ignore[misc,valid-type]
        clips_aborted_transactions = True

        def __init__(
            self,
            tp: Any,
            records: Any,
            aborted_transactions: Any,
            fetch_offset: int,
            *args: Any,
            **kwargs: Any,
        ) -> None:
            within = [t for t in aborted_transactions or () if t[1] >= fetch_offset]
            super().__init__(tp, records, within, fetch_offset, *args, **kwargs)

    fetcher.PartitionRecords = ClippedPartitionRecords


async def send_all(producer: AIOKafkaProducer, records: Iterable[OutRecord]) -> None:
    """Send a batch and wait for every acknowledgement (keeps order per partition)."""
    futures = [
        await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in records
    ]
    if futures:
        await asyncio.gather(*futures)
