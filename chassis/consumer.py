"""The batched, transactional consume -> handle -> produce loop every hot path runs on.

Each poll's records are validated against the topic registry; bad ones go to
`<topic>.dlq` with a reason. The good ones go to the handler as one batch; the
handler writes the database idempotently (deterministic ids, upserts) and returns
the records to produce. Those records, the dead letters and the consumer offsets
commit in one Kafka transaction, so a `read_committed` reader sees each output
once, and a crash before the commit replays the batch into idempotent writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from chassis.kafka import OutRecord, dead_letter, make_producer, send_all
from chassis.metrics import WorkerCounters
from shared.envelope import Envelope, EventValidationError, parse_event

log = logging.getLogger(__name__)

SUPPORTED_SCHEMA_VERSION = 1
"""The envelope `schema_version` this code understands; a newer one is dead-lettered."""

MAX_EVENT_BYTES = 512 * 1024
"""Larger records are dead-lettered (`payload_too_large`) before they are parsed."""

INT64_MAX = 2**63 - 1
_LONG_DIGITS = re.compile(rb"\d{19,}")


def _out_of_range(value: Any, path: str = "") -> str | None:
    """The path of the first integer that does not fit a signed 64-bit store, if any."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        fits = -INT64_MAX - 1 <= value <= INT64_MAX
        return None if fits else (path or "(event)")
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for name, item in items:
        found = _out_of_range(item, f"{path}.{name}" if path else str(name))
        if found is not None:
            return found
    return None


def check_limits(value: bytes, envelope: Envelope[Any] | None, max_bytes: int) -> None:
    """Rules every consumer applies beyond the schema; EventValidationError when broken.

    Size before parsing (`envelope` None); after parsing, the schema version and
    integers a database cannot hold (an unbounded amount would otherwise fail the
    write of the whole batch, again and again).
    """
    if envelope is None:
        if len(value) > max_bytes:
            raise EventValidationError(
                "payload_too_large", f"{len(value)} bytes, more than the limit of {max_bytes}"
            )
        return
    if envelope.schema_version > SUPPORTED_SCHEMA_VERSION:
        raise EventValidationError(
            "unsupported_schema_version",
            f"schema_version {envelope.schema_version} is newer than"
            f" {SUPPORTED_SCHEMA_VERSION}, the one this consumer understands",
        )
    if _LONG_DIGITS.search(value):
        path = _out_of_range(json.loads(value))
        if path is not None:
            raise EventValidationError(
                "schema_violation", f"{path}: integer out of range (more than 64 bits)"
            )


def _key_text(key: bytes | None) -> str:
    return key.decode("utf-8", "replace")[:200] if key else ""


@dataclass(frozen=True)
class Inbound:
    """One validated record: where it came from and its parsed envelope."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    envelope: Envelope[Any]

    def reject(self, reason: str, detail: str) -> OutRecord:
        """A rule break found by the handler: the record goes to the dead-letter topic."""
        return dead_letter(self.topic, self.key, self.value, self.headers, reason, detail)


@dataclass
class HandlerResult:
    produce: list[OutRecord] = field(default_factory=list)
    rejected: list[tuple[OutRecord, str]] = field(default_factory=list)

    def reject(self, inbound: Inbound, reason: str, detail: str) -> None:
        self.rejected.append((inbound.reject(reason, detail), reason))


BatchHandler = Callable[[list[Inbound]], Awaitable[HandlerResult]]


class TransactionalProcessor:
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
    ) -> None:
        self._max_event_bytes = max_event_bytes
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
        self._consumer = AIOKafkaConsumer(
            *self.topics,
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
        self._producer = make_producer(bootstrap, transactional_id=transactional_id)
        self._stopping = asyncio.Event()

    def assignment(self) -> list[str]:
        return sorted(f"{tp.topic}:{tp.partition}" for tp in self._consumer.assignment())

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()

    def request_stop(self) -> None:
        """`run` returns after the batch in hand (at most one poll timeout later)."""
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        await self._consumer.stop()
        await self._producer.stop()

    async def run(self) -> None:
        """Poll until stopped. A failing batch is retried from its first offset."""
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(
                timeout_ms=self._poll_timeout_ms, max_records=self._max_records
            )
            if self._stopping.is_set():
                # Not processed, not committed: the next owner of these partitions reads them.
                return
            if not batches:
                continue
            try:
                await self._process(batches)
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("batch failed; rewinding to retry", extra={"group": self.group_id})
                self._counters.inc("batch_retries_total")
                for tp, records in batches.items():
                    self._consumer.seek(tp, records[0].offset)
                await asyncio.sleep(self._retry_backoff_s)

    async def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        valid: list[Inbound] = []
        dead: list[OutRecord] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batches.items():
            for record in records:
                headers = tuple((k, bytes(v)) for k, v in (record.headers or ()))
                value = record.value if record.value is not None else b""
                self._counters.inc("records_total", topic=tp.topic)
                try:
                    check_limits(value, None, self._max_event_bytes)
                    envelope = parse_event(self._schema_of.get(tp.topic, tp.topic), value)
                    check_limits(value, envelope, self._max_event_bytes)
                except EventValidationError as error:
                    dead.append(
                        dead_letter(
                            tp.topic, record.key, value, headers, error.reason, error.detail
                        )
                    )
                    self._counters.inc("dead_letters_total", topic=tp.topic, reason=error.reason)
                    log.warning(
                        "event rejected",
                        extra={
                            "topic": tp.topic,
                            "offset": record.offset,
                            "reason": error.reason,
                            # The key is the aggregate id (order_id, license_key, partner_id):
                            # correlation without personal data.
                            "key": _key_text(record.key),
                        },
                    )
                    continue
                valid.append(
                    Inbound(
                        tp.topic, tp.partition, record.offset, record.key, value, headers, envelope
                    )
                )
            offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        result = await self._handler(valid) if valid else HandlerResult()
        for record, reason in result.rejected:
            dead.append(record)
            source = record.topic.removesuffix(".dlq")
            self._counters.inc("dead_letters_total", topic=source, reason=reason)
            log.warning(
                "event rejected",
                extra={"topic": source, "reason": reason, "key": _key_text(record.key)},
            )
        async with self._producer.transaction():
            await send_all(self._producer, [*result.produce, *dead])
            await self._producer.send_offsets_to_transaction(offsets, self.group_id)
        for record in result.produce:
            self._counters.inc("records_produced_total", topic=record.topic)
        self._counters.observe("batch_seconds", time.perf_counter() - started)
        self._record_lag(offsets)
        log.info(
            "batch committed",
            extra={
                "group": self.group_id,
                "events": len(valid),
                "dead_letters": len(dead),
                "produced": len(result.produce),
                "event_ids": [i.envelope.event_id for i in valid[:50]],
            },
        )

    def _record_lag(self, committed: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Records behind the end of each partition just handled, summed per topic."""
        lag_by_topic: dict[str, int] = {}
        for tp, offset in committed.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - offset.offset)
                lag_by_topic[tp.topic] = lag_by_topic.get(tp.topic, 0) + lag
        for topic, lag in lag_by_topic.items():
            self._counters.set_gauge(f"consumer_lag:{topic}", lag)
