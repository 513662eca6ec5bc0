"""The records a handler sees and returns: plain data, no client library.

`Inbound` is one validated record given to a batch handler, `HandlerResult` what the
handler returns (records to produce, records it rejects), `OutRecord` one record to
produce, and `dead_letter` the record a rejected input becomes on `<topic>.dlq`
(CONTRACT 1.4). Service layers build these; the consume loop (`chassis.consumer`) and
the Kafka plumbing (`chassis.kafka`) send them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.envelope import Envelope
from shared.topics import dlq_name, redact_sensitive

Header = tuple[str, bytes]


@dataclass(frozen=True)
class OutRecord:
    """A record to produce: topic, key, value and headers, all bytes on the wire.

    `cause` is not sent: it names the `event_id` of the input record this one was derived
    from, and the consume loop gives the record that input's `traceparent` header
    (`chassis.tracing.carry`).
    """

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[Header] = field(default_factory=tuple)
    cause: str | None = field(default=None, compare=False)


PRODUCER_MAX_REQUEST_BYTES = 1_000_000
"""The smallest `max_request_size` of our producers (`chassis.kafka.make_producer`)."""

DEAD_LETTER_MAX_BYTES = PRODUCER_MAX_REQUEST_BYTES - 64 * 1024
"""A dead letter larger than this (key, value and headers) is forwarded as a stub."""

_STUB_KEY_MAX_BYTES = 4096


def record_bytes(key: bytes | None, value: bytes, headers: Sequence[Header]) -> int:
    """What a record weighs in a produce request, give or take its fixed overhead."""
    return len(key or b"") + len(value) + sum(len(k.encode()) + len(v) for k, v in headers)


def dead_letter(
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: Sequence[Header],
    reason: str,
    detail: str,
    *,
    partition: int | None = None,
    offset: int | None = None,
) -> OutRecord:
    """The record as it came, to `topic.dlq`, with the reason in headers (CONTRACT 1.4).

    A record our producer cannot send unchanged (a 2.1 MB gzip-compressed order is
    2.1 MB once read) goes as a stub instead (CONTRACT 6.9): without it the
    transaction failed with MessageSizeTooLargeError on every retry of the batch.
    A sensitive topic's secrets (CONTRACT 6.2: the sign-in token) are taken out of
    the value and the detail first: a dead letter is read by operators and tools.
    """
    value, detail = redact_sensitive(topic, value, detail)
    kept = [
        (k, bytes(v or b""))
        for k, v in headers
        if k not in ("error.reason", "error.detail", "error.topic")
    ]
    kept.append(("error.reason", reason.encode()))
    kept.append(("error.detail", detail[:2000].encode("utf-8", "replace")))
    kept.append(("error.topic", topic.encode()))
    if record_bytes(key, value, kept) <= DEAD_LETTER_MAX_BYTES:
        return OutRecord(topic=dlq_name(topic), key=key, value=value, headers=tuple(kept))
    return dead_letter_stub(
        topic, key, reason, detail, partition=partition, offset=offset, value_bytes=len(value)
    )


def dead_letter_stub(
    topic: str,
    key: bytes | None,
    reason: str,
    detail: str,
    *,
    partition: int | None,
    offset: int | None,
    value_bytes: int,
) -> OutRecord:
    """Where the record is (topic, partition, offset), its key and why it was refused."""
    key_text = (key or b"")[:_STUB_KEY_MAX_BYTES].decode("utf-8", "replace")
    stub = {
        "stub": True,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key_text if key is not None else None,
        "reason": reason,
        "detail": detail[:2000],
        "value_bytes": value_bytes,
    }
    why = f"forwarded as a stub: {value_bytes} bytes are more than the producer can send"
    headers: list[Header] = [
        ("error.reason", reason.encode()),
        ("error.detail", f"{detail[:1800]}; {why}".encode("utf-8", "replace")),
        ("error.topic", topic.encode()),
        ("error.stub", b"true"),
    ]
    if partition is not None:
        headers.append(("error.partition", str(partition).encode()))
    if offset is not None:
        headers.append(("error.offset", str(offset).encode()))
    small_key = key if key is not None and len(key) <= _STUB_KEY_MAX_BYTES else None
    value = json.dumps(stub, ensure_ascii=True, separators=(",", ":")).encode()
    return OutRecord(topic=dlq_name(topic), key=small_key, value=value, headers=tuple(headers))


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
        return dead_letter(
            self.topic,
            self.key,
            self.value,
            self.headers,
            reason,
            detail,
            partition=self.partition,
            offset=self.offset,
        )


@dataclass
class HandlerResult:
    produce: list[OutRecord] = field(default_factory=list)
    rejected: list[tuple[OutRecord, str]] = field(default_factory=list)

    def reject(self, inbound: Inbound, reason: str, detail: str) -> None:
        self.rejected.append((inbound.reject(reason, detail), reason))

    def extend(self, other: HandlerResult) -> None:
        self.produce.extend(other.produce)
        self.rejected.extend(other.rejected)


BatchHandler = Callable[[list[Inbound]], Awaitable[HandlerResult]]
