"""In-memory fakes of the commissions ports: same contracts as the MongoDB/Kafka adapters."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence

from services.commissions.domain.order_line import OrderLineCommission, OrderLineKey, Source
from services.commissions.domain.rates import DEFAULT_RATE_TABLE, RateBook, RateOverride, RateTable
from services.commissions.service_layer.ports import OutboxMessage


class FakeOrderLines:
    def __init__(self) -> None:
        self.stored: dict[OrderLineKey, OrderLineCommission] = {}
        self.before_update: Callable[[], None] | None = None
        """Runs once before the next update: another writer racing us."""

    def _copy(self, line: OrderLineCommission) -> OrderLineCommission:
        duplicate = copy.deepcopy(line)
        duplicate.dirty = False
        return duplicate

    async def get_many(
        self, keys: Collection[OrderLineKey]
    ) -> dict[OrderLineKey, OrderLineCommission]:
        return {key: self._copy(self.stored[key]) for key in keys if key in self.stored}

    async def add(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        conflicts = set()
        for line in lines:
            if line.key in self.stored:
                conflicts.add(line.key)
                continue
            line.version, line.dirty = 1, False
            self.stored[line.key] = self._copy(line)
        return conflicts

    async def update(self, lines: Sequence[OrderLineCommission]) -> set[OrderLineKey]:
        if self.before_update is not None:
            race, self.before_update = self.before_update, None
            race()
        conflicts = set()
        for line in lines:
            current = self.stored.get(line.key)
            if current is None or current.version != line.version:
                conflicts.add(line.key)
                continue
            line.version, line.dirty = line.version + 1, False
            self.stored[line.key] = self._copy(line)
        return conflicts

    async def for_partner(
        self, partner_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> list[OrderLineCommission]:
        return [
            self._copy(line)
            for _, line in sorted(self.stored.items())
            if partner_id in line.partner_ids
        ]

    async def search(
        self, *, order_id: str | None, partner_id: str | None, limit: int
    ) -> list[OrderLineCommission]:
        found = [
            self._copy(line)
            for key, line in sorted(self.stored.items())
            if (order_id is None or key.order_id == order_id)
            and (partner_id is None or partner_id in line.partner_ids)
        ]
        return found[:limit]

    async def due(
        self, as_of: dt.datetime, after: OrderLineKey | None, limit: int
    ) -> list[OrderLineCommission]:
        found = [
            self._copy(line)
            for key, line in sorted(self.stored.items(), key=lambda kv: kv[0].text)
            if line.due_at is not None
            and line.due_at <= as_of
            and (after is None or key.text > after.text)
        ]
        return found[:limit]

    def ledger(self) -> dict[str, tuple[object, ...]]:
        """Every line by id, with the fields that make it what it is."""
        return {
            line.line_id: (
                line.partner_id,
                line.role,
                line.amount_minor,
                line.base_amount_minor,
                line.rate_bps,
                line.currency,
                line.status,
                line.occurred_at,
            )
            for aggregate in self.stored.values()
            for line in aggregate.lines
        }


class FakeRefundRegistry:
    def __init__(self) -> None:
        self.owners: dict[str, OrderLineKey] = {}

    async def claim(self, claims: Mapping[str, OrderLineKey]) -> dict[str, OrderLineKey]:
        for refund_id, key in claims.items():
            self.owners.setdefault(refund_id, key)
        return {refund_id: self.owners[refund_id] for refund_id in claims}


class FakeRateTables:
    def __init__(self, *tables: RateTable) -> None:
        self.tables = list(tables or [DEFAULT_RATE_TABLE])
        self.overrides: list[RateOverride] = []

    async def book(self) -> RateBook:
        return RateBook(self.tables, self.overrides)

    async def add_overrides(self, entries: Sequence[RateOverride]) -> bool:
        if any(o.version == entries[0].version for o in self.overrides):
            return False
        self.overrides.extend(entries)
        return True

    async def add(self, table: RateTable) -> bool:
        if any(t.version == table.version for t in self.tables):
            return False
        self.tables.append(table)
        return True


class FakeTransitions:
    """Order lines and outbox in one 'transaction': all or nothing."""

    def __init__(self, order_lines: FakeOrderLines, outbox: FakeOutbox) -> None:
        self._order_lines = order_lines
        self._outbox = outbox
        self.fail_next: int = 0

    async def commit(
        self, lines: Sequence[OrderLineCommission], messages: Sequence[OutboxMessage]
    ) -> bool:
        if self.fail_next:
            self.fail_next -= 1
            return False
        for line in lines:
            current = self._order_lines.stored.get(line.key)
            if line.version == 0 and current is None:
                continue  # a new aggregate (an adjustment): inserted
            if current is None or current.version != line.version:
                return False
        for line in lines:
            line.version, line.dirty = line.version + 1, False
            self._order_lines.stored[line.key] = copy.deepcopy(line)
        self._outbox.append(messages)
        return True


class FakeOutbox:
    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []
        self.published_up_to = 0
        self.epoch = uuid.uuid4().hex

    def append(self, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            seq = len(self.messages) + 1
            self.messages.append(
                OutboxMessage(message.event_id, message.topic, message.key, message.value, seq)
            )

    async def after(self, seq: int, limit: int) -> list[OutboxMessage]:
        return [m for m in self.messages if m.seq > seq][:limit]

    async def mark_published(self, up_to_seq: int) -> None:
        self.published_up_to = max(self.published_up_to, up_to_seq)

    async def identity(self) -> tuple[str, int] | None:
        return (self.epoch, self.published_up_to) if self.messages else None


class FakePublisher:
    """A 'Kafka' that commits messages and checkpoint together."""

    def __init__(self) -> None:
        self.topic: list[OutboxMessage] = []
        self.committed_checkpoint = 0
        self.crash_after_send = False

    async def checkpoint(self) -> int:
        return self.committed_checkpoint

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if self.crash_after_send:
            # The transaction is aborted: neither the messages nor the checkpoint are visible.
            self.crash_after_send = False
            raise ConnectionError("broker went away mid-transaction")
        self.topic.extend(messages)
        self.committed_checkpoint = messages[-1].seq


class FakeRelayPublisher(FakePublisher):
    """A publisher the relay loop can start and stop; its 'Kafka' outlives it."""

    def __init__(self, kafka: FakePublisher) -> None:
        super().__init__()
        self.kafka = kafka
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def keep_alive(self) -> None:
        return None

    async def checkpoint(self) -> int:
        return await self.kafka.checkpoint()

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        await self.kafka.publish(messages)


class FakeLease:
    name = "relay"
    ttl = dt.timedelta(seconds=15)

    def __init__(self, owner: str = "me") -> None:
        self.owner = owner
        self.holder: str | None = None

    async def renew(self) -> bool:
        return self.holder == self.owner

    async def acquire(self) -> bool:
        if self.holder in (None, self.owner):
            self.holder = self.owner
            return True
        return False

    async def release(self) -> None:
        if self.holder == self.owner:
            self.holder = None


class FakeHorizon:
    def __init__(self) -> None:
        self.unpublished: set[Source] = set()

    async def snapshot(self) -> Callable[[Source], bool]:
        unpublished = set(self.unpublished)
        return lambda source: source not in unpublished


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now
