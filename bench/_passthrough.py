"""The baseline every stream benchmark divides by: a raw aiokafka transactional passthrough.

Consume a batch (read_committed), produce each record to `out` and commit the
offsets in the same transaction: the least a exactly-once consume→produce loop
can do on this broker. The clock starts at the first batch, so the group join
is not counted (the same holds for the loops measured against it).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from chassis.kafka import make_producer


async def raw_transactional_passthrough(
    bootstrap: str, source: str, out: str, events: int, batch: int = 500
) -> float:
    """Events per second moved from `source` to `out`, exactly once."""
    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch,
    )
    producer = make_producer(bootstrap, transactional_id=f"{group}-tx")
    await consumer.start()
    await producer.start()
    done, started = 0, None
    try:
        while done < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=batch)
            if not batches:
                continue
            started = started or time.perf_counter()
            async with producer.transaction():
                futures = []
                offsets = {}
                for tp, records in batches.items():
                    for record in records:
                        futures.append(await producer.send(out, record.value, key=record.key))
                    offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
                    done += len(records)
                await asyncio.gather(*futures)
                await producer.send_offsets_to_transaction(offsets, group)
        return events / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()
