"""The ports the use cases need; MongoDB and Kafka adapters implement them, tests use fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.commissions.domain.order_line import OrderLineCommission, OrderLineKey, Source
from services.commissions.domain.rates import RateBook, RateOverride, RateTable

Clock = Callable[[], dt.datetime]


class Counters(Protocol):
    def inc(self, name: str, value: int = 1, **labels: str) -> None: ...


class NullCounters:
    def inc(self, name: str, value: int = 1, **labels: str) -> None:
        return None


class OrderLineRepository(Protocol):
    """Order-line aggregates, written idempotently with an optimistic version check."""

    async def get_many(
        self, keys: Collection[OrderLineKey]
    ) -> dict[OrderLineKey, OrderLineCommission]: ...

    async def add(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        """Store new aggregates (version 0); returns the keys that already existed (not written)."""
        ...

    async def update(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        """Replace stored aggregates if unchanged since read; returns the keys that had changed."""
        ...

    async def for_partner(
        self, partner_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[OrderLineCommission]:
        """Aggregates holding lines of `partner_id` that may fall in [start, end), by key."""
        ...

    async def search(
        self, *, order_id: str | None, partner_id: str | None, limit: int
    ) -> list[OrderLineCommission]: ...

    async def due(
        self, as_of: dt.datetime, after: OrderLineKey | None, limit: int
    ) -> list[OrderLineCommission]:
        """Aggregates a payables run at `as_of` may change, by key, after `after`."""
        ...


class RefundRegistry(Protocol):
    async def claim(self, claims: Mapping[str, OrderLineKey]) -> dict[str, OrderLineKey]:
        """Register refund_id -> order line where new; returns the owner of every refund_id."""
        ...


class RateTableRepository(Protocol):
    async def book(self) -> RateBook: ...

    async def add(self, table: RateTable) -> bool:
        """False when that version number exists already."""
        ...

    async def add_overrides(self, entries: Sequence[RateOverride]) -> bool:
        """Store one PUT's entries (one version); False when that version exists already."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A ledger event waiting to be published; `seq` is gapless, given at commit."""

    event_id: str
    topic: str
    key: bytes
    value: bytes
    seq: int = 0


class TransitionStore(Protocol):
    async def commit(
        self, lines: Sequence[OrderLineCommission], messages: Sequence[OutboxMessage]
    ) -> bool:
        """Atomically replace `lines` (version-checked) and append `messages` to the outbox.

        A line of version 0 is new (an adjustment) and is inserted. False, with
        nothing written, when a line changed since it was read or a new one exists.
        """
        ...


class OutboxStore(Protocol):
    async def after(self, seq: int, limit: int) -> list[OutboxMessage]: ...

    async def mark_published(self, up_to_seq: int) -> None: ...

    async def identity(self) -> tuple[str, int] | None:
        """The outbox's epoch and highest seq marked published; None before its first message.

        The epoch is minted with the outbox: a checkpoint in Kafka counts only for the
        outbox of the same epoch (a wiped database starts a new one).
        """
        ...


class LedgerPublisher(Protocol):
    async def checkpoint(self) -> int:
        """The seq of the last outbox message committed to Kafka (0 = none)."""
        ...

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Produce `messages` and move the checkpoint to the last one, atomically."""
        ...


class RelayPublisher(LedgerPublisher, Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def keep_alive(self) -> None: ...


class HorizonUnavailableError(RuntimeError):
    """What the ledger topic holds cannot be told right now (the broker is unreachable)."""

    retryable = True  # the broker's failure: a consumer retries, never dead-letters


class PublishedHorizon(Protocol):
    async def snapshot(self) -> Callable[[Source], bool]:
        """A test of whether a source record's output is committed to the ledger topic."""
        ...
