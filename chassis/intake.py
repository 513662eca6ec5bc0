"""One poll's records in: validated envelopes for the handler, dead letters for the rest.

Whatever reading one record raises (a schema, a bound of CONTRACT 6.9, a null header
value, a parser's own error) makes that record a dead letter with a reason; nothing a
record holds fails the poll.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from chassis.batch import failure_name
from chassis.consumer_limits import check_limits
from chassis.metrics import WorkerCounters
from chassis.records import HandlerResult, Inbound, OutRecord, dead_letter
from shared.envelope import EventValidationError, parse_event
from shared.topics import DLQ_SUFFIX

log = logging.getLogger(__name__)


def key_text(key: bytes | None) -> str:
    # The key is the aggregate id (order_id, license_key, partner_id): correlation
    # without personal data.
    return key.decode("utf-8", "replace")[:200] if key else ""


def header_pairs(raw: Any) -> tuple[tuple[str, bytes], ...]:
    """Headers as (str, bytes); a null header value (Kafka allows one) reads as empty."""
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in (raw or ()))


def read_poll(
    batches: Mapping[TopicPartition, list[Any]],
    schema_of: Mapping[str, str],
    max_event_bytes: int,
    counters: WorkerCounters,
) -> tuple[list[Inbound], list[OutRecord], dict[TopicPartition, OffsetAndMetadata]]:
    """The poll's valid records, its dead letters, and the offsets to commit after it."""
    valid: list[Inbound] = []
    dead: list[OutRecord] = []
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, records in batches.items():
        for record in records:
            value = record.value if record.value is not None else b""
            counters.inc("records_total", topic=tp.topic)
            headers: tuple[tuple[str, bytes], ...] = ()
            try:
                headers = header_pairs(record.headers)
                check_limits(value, None, max_event_bytes)
                envelope = parse_event(schema_of.get(tp.topic, tp.topic), value)
                check_limits(value, envelope, max_event_bytes)
            except Exception as caught:
                error = (
                    caught
                    if isinstance(caught, EventValidationError)
                    else EventValidationError("unparsable", failure_name(caught))
                )
                dead.append(
                    dead_letter(
                        tp.topic,
                        record.key,
                        value,
                        headers,
                        error.reason,
                        error.detail,
                        partition=tp.partition,
                        offset=record.offset,
                    )
                )
                counters.inc("dead_letters_total", topic=tp.topic, reason=error.reason)
                log.warning(
                    "event rejected",
                    extra={
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": record.offset,
                        "reason": error.reason,
                        "key": key_text(record.key),
                    },
                )
                continue
            valid.append(
                Inbound(tp.topic, tp.partition, record.offset, record.key, value, headers, envelope)
            )
        offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
    return valid, dead, offsets


def count_rejections(result: HandlerResult, counters: WorkerCounters) -> list[OutRecord]:
    """The handler's dead letters, counted and logged like the ones found on reading."""
    dead: list[OutRecord] = []
    for record, reason in result.rejected:
        dead.append(record)
        source = record.topic.removesuffix(DLQ_SUFFIX)
        counters.inc("dead_letters_total", topic=source, reason=reason)
        log.warning(
            "event rejected",
            extra={"topic": source, "reason": reason, "key": key_text(record.key)},
        )
    return dead
