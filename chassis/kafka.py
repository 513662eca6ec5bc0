"""Kafka plumbing: topic provisioning, producers, dead-letter records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

# Kafka error codes that mean "the topic is there already": fine for an idempotent create.
_TOPIC_EXISTS = {36}

Header = tuple[str, bytes]


@dataclass(frozen=True)
class OutRecord:
    """A record to produce: topic, key, value and headers, all bytes on the wire."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[Header] = field(default_factory=tuple)


def dead_letter(
    topic: str, key: bytes | None, value: bytes, headers: Sequence[Header], reason: str, detail: str
) -> OutRecord:
    """The record as it came, to `topic.dlq`, with the reason in headers (CONTRACT 1.4)."""
    kept = [(k, v) for k, v in headers if k not in ("error.reason", "error.detail")]
    kept.append(("error.reason", reason.encode()))
    kept.append(("error.detail", detail[:2000].encode("utf-8", "replace")))
    kept.append(("error.topic", topic.encode()))
    return OutRecord(topic=f"{topic}.dlq", key=key, value=value, headers=tuple(kept))


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
        if with_dlq and not topic.endswith(".dlq"):
            wanted.append(f"{topic}.dlq")
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
    bootstrap: str, *, transactional_id: str | None = None, max_batch_bytes: int = 16384
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all); transactional when given an id.

    `max_batch_bytes` bounds one partition's record batch: a loop that produces thousands
    of records per transaction sends fewer, larger requests with a larger one.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        transactional_id=transactional_id,
        max_request_size=max(1_000_000, max_batch_bytes + 64 * 1024),
        max_batch_size=max_batch_bytes,
    )


async def send_all(producer: AIOKafkaProducer, records: Iterable[OutRecord]) -> None:
    """Send a batch and wait for every acknowledgement (keeps order per partition)."""
    futures = [
        await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in records
    ]
    if futures:
        await asyncio.gather(*futures)
