"""Topic provisioning against the real embedded broker."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from chassis.kafka import ensure_topics
from tests.conftest import Names


async def partitions_of(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_creates_topics_and_dead_letter_topics_with_the_partition_count(
    kafka_bootstrap: str, names: Names
) -> None:
    topic = names.topic("orders")
    created = await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    assert sorted(created) == sorted([topic, f"{topic}.dlq"])
    assert await partitions_of(kafka_bootstrap, topic) == 4
    assert await partitions_of(kafka_bootstrap, f"{topic}.dlq") == 4


async def test_is_idempotent_and_safe_under_concurrent_callers(
    kafka_bootstrap: str, names: Names
) -> None:
    topics = [names.topic("a"), names.topic("b")]
    results = await asyncio.gather(
        *(ensure_topics(kafka_bootstrap, topics, partitions=6) for _ in range(3))
    )
    assert sorted(n for r in results for n in r) == sorted([*topics, *(f"{t}.dlq" for t in topics)])
    assert await ensure_topics(kafka_bootstrap, topics, partitions=6) == []
    assert await partitions_of(kafka_bootstrap, topics[0]) == 6
