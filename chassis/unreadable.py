"""Records the client cannot even read: found, stubbed on the DLQ, skipped.

aiokafka decodes header keys as UTF-8 while it reads a fetched batch; a record whose
header key is not UTF-8 (any client may write one) makes `getmany` raise
UnicodeDecodeError, again at every poll, since the position never moves past it. Such
a record has no envelope to dead-letter, so its stub (topic, partition, offset, reason
`unreadable`) goes to the DLQ and the partition is committed and sought past it
(CONTRACT 6.9: no input stops a worker).

The failing `getmany` has also consumed whatever it read of other partitions before the
bad record and never returned it: every partition goes back to its committed offset
first, so nothing is skipped but the unreadable record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from chassis.batch import failure_name, is_infrastructure
from chassis.kafka import send_all
from chassis.metrics import WorkerCounters
from chassis.records import dead_letter_stub

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"


async def rewind_to_committed(consumer: AIOKafkaConsumer) -> None:
    """Every assigned partition back to the group's committed offset (its start if none)."""
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


async def first_record_unreadable(
    consumer: AIOKafkaConsumer, tp: TopicPartition, timeout_ms: int
) -> bool:
    """Whether the record at `tp`'s position cannot be read; consumes nothing."""
    position = await consumer.position(tp)
    others = [p for p in consumer.assignment() if p != tp]
    consumer.pause(*others)
    try:
        await consumer.getmany(tp, timeout_ms=timeout_ms, max_records=1)
        unreadable = False
    except Exception as error:
        if is_infrastructure(error):
            raise
        unreadable = True
    finally:
        consumer.resume(*others)
        consumer.seek(tp, position)
    return unreadable


async def skip_unreadable(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    *,
    group_id: str,
    counters: WorkerCounters,
    error: BaseException,
    timeout_ms: int,
    committed: Callable[[dict[TopicPartition, Any]], None],
) -> int:
    """Stubs and skips every assigned partition's first record that cannot be read.

    Returns how many it skipped: none means the unreadable record lies further on,
    and the caller polls one record at a time until it comes first.
    """
    await rewind_to_committed(consumer)
    skipped = 0
    assigned = sorted(consumer.assignment())
    # Only a partition with a record waiting can start with an unreadable one: probing
    # an empty partition costs a whole fetch timeout (seconds over dozens of partitions).
    ends = await consumer.end_offsets(assigned) if assigned else {}
    for tp in assigned:
        if tp in ends and await consumer.position(tp) >= ends[tp]:
            continue
        if not await first_record_unreadable(consumer, tp, timeout_ms):
            continue
        offset = await consumer.position(tp)
        stub = dead_letter_stub(
            tp.topic,
            None,
            UNREADABLE,
            f"{failure_name(error)} while the client read the record",
            partition=tp.partition,
            offset=offset,
            value_bytes=0,
        )
        offsets = {tp: OffsetAndMetadata(offset + 1, "")}
        async with producer.transaction():
            await send_all(producer, [stub])
            await producer.send_offsets_to_transaction(offsets, group_id)
        consumer.seek(tp, offset + 1)
        committed(offsets)
        counters.inc("dead_letters_total", topic=tp.topic, reason=UNREADABLE)
        log.warning(
            "unreadable record skipped",
            extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
        )
        skipped += 1
    return skipped


class UnreadableGuard:
    """`getmany` for the loop, past records the client cannot read.

    A `getmany` that raises on a record (not the broker's error) is remembered; the next
    poll with no batch in flight rewinds, stubs and skips it (`skip_unreadable`). When
    the record was not first on any partition, polls take one record at a time until
    it is.
    """

    def __init__(self, max_records: int) -> None:
        self._max_records = max_records
        self.pending: BaseException | None = None
        self._careful_polls = 0

    async def skip_pending(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        group_id: str,
        counters: WorkerCounters,
        timeout_ms: int,
        committed: Callable[[dict[TopicPartition, Any]], None],
    ) -> None:
        """Skips the pending unreadable record; on failure it stays pending (and raises)."""
        error, self.pending = self.pending, None
        if error is None:
            return
        try:
            skipped = await skip_unreadable(
                consumer,
                producer,
                group_id=group_id,
                counters=counters,
                error=error,
                timeout_ms=timeout_ms,
                committed=committed,
            )
        except Exception:
            self.pending = error
            raise
        self._careful_polls = 0 if skipped else self._max_records

    async def getmany(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> Any:
        """The consumer's `getmany`; {} (and the record pending) when a record is unreadable."""
        max_records = 1 if self._careful_polls else self._max_records
        try:
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except Exception as error:
            if is_infrastructure(error):
                raise
            log.warning("a fetched record cannot be read", extra={"error": failure_name(error)})
            self.pending = error
            return {}
        if batches and self._careful_polls:
            self._careful_polls -= 1
        return batches
