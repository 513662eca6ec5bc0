"""The ports the use cases talk to: repositories with an identity map, and the unit of work.

A use case loads aggregates through the repositories, changes them in memory,
emits events and commits once. The unit of work writes every new or changed
aggregate (with an optimistic version check) and the emitted events in one
database transaction: either the outbox (API writes) or, for the order
consumer, handed back to the caller, which produces them in its Kafka
transaction. Adapters implement the `_fetch*` / `_commit` hooks; the identity
map, change tracking and event collection live here so fakes and MongoDB
behave alike.
"""

from __future__ import annotations

import abc
import copy
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from services.registration.domain.deals import Deal, DealStatus
from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Partner
from shared.envelope import Envelope, encode

Clock = Callable[[], dt.datetime]

EntityT = TypeVar("EntityT")


class ConcurrentUpdate(Exception):
    """Another writer changed an aggregate since it was loaded: run the use case again.

    Never the input's fault: a write conflict (another writer, or the open transaction
    of a worker that was killed, holding the document until the database expires it)
    or a race to insert the same new aggregate. So the stream worker retries the batch
    with backoff (`chassis.batch.is_infrastructure`), and never dead-letters the
    record: the long fault run lost 15-51 valid orders to `handler_error` that way.
    """

    retryable = True


class DuplicateKey(Exception):
    """An insert hit a unique index; `field` names it (e.g. `seller_code`)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"duplicate {field}")
        self.field = field


@dataclass(frozen=True)
class OutboundEvent:
    """An event to publish: its topic, record key and envelope."""

    topic: str
    key: str
    envelope: Envelope[Any]
    aggregate_version: int = 0

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    def value(self) -> bytes:
        return encode(self.envelope)


@dataclass(frozen=True)
class StoredRecord:
    """A produced record kept with a processed order, to re-emit it on a replay."""

    topic: str
    key: bytes
    value: bytes


@dataclass
class ProcessedOrder:
    """Idempotency record of one applied `order.placed` (by `order_id` and `event_id`)."""

    order_id: str
    event_id: str
    data_hash: str
    position: str
    occurred_at: dt.datetime
    processed_at: dt.datetime
    license_keys: list[str]
    outputs: list[StoredRecord]
    seller_code_outcome: str | None = None
    lines: list[dict[str, str]] = field(default_factory=list)


class TrackingRepository(Generic[EntityT]):
    """Identity map with change tracking: `get` twice gives the same object."""

    def __init__(self) -> None:
        self._seen: dict[str, EntityT] = {}
        self._snapshots: dict[str, Any] = {}
        self._new: dict[str, EntityT] = {}
        # Keys looked up and not found: asking again within one unit of work would
        # only repeat the round trip (a batch of new sales asks for many of them).
        self._absent: set[str] = set()

    def _unknown(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in self._seen and k not in self._absent]

    def _note_absent(self, asked: list[str]) -> None:
        self._absent.update(k for k in asked if k not in self._seen)

    def _track(self, key: str, entity: EntityT) -> EntityT:
        if key in self._seen:
            return self._seen[key]
        self._seen[key] = entity
        self._snapshots[key] = self._snapshot(entity)
        return entity

    def _snapshot(self, entity: EntityT) -> Any:
        """What `_changed` compares against; adapters may use their document form."""
        return copy.deepcopy(entity)

    def _changed(self, entity: EntityT, snapshot: Any) -> bool:
        return bool(entity != snapshot)

    def _cached(self, key: str) -> EntityT | None:
        return self._seen.get(key)

    def _register_new(self, key: str, entity: EntityT) -> None:
        self._seen[key] = entity
        self._new[key] = entity
        self._absent.discard(key)

    def pending(self) -> tuple[list[EntityT], list[EntityT]]:
        """(new, changed) aggregates, in the order they were first seen."""
        new = list(self._new.values())
        changed = [
            entity
            for key, entity in self._seen.items()
            if key not in self._new and self._changed(entity, self._snapshots[key])
        ]
        return new, changed


class PartnerRepository(TrackingRepository[Partner], abc.ABC):
    def __init__(self) -> None:
        super().__init__()
        self._absent_codes: set[str] = set()

    async def get(self, partner_id: str) -> Partner | None:
        return (await self.get_many([partner_id])).get(partner_id)

    async def get_many(self, partner_ids: Iterable[str]) -> dict[str, Partner]:
        wanted = set(partner_ids)
        missing = self._unknown(wanted)
        if missing:
            for partner in await self._fetch(missing):
                self._track(partner.partner_id, partner)
            self._note_absent(missing)
        return {p: self._seen[p] for p in wanted if p in self._seen}

    async def get_by_seller_code(self, code: str) -> Partner | None:
        return (await self.get_many_by_seller_code([code])).get(code)

    async def get_many_by_seller_code(self, codes: Iterable[str]) -> dict[str, Partner]:
        wanted = set(codes)
        by_code = {p.seller_code: p for p in self._seen.values()}
        missing = [c for c in wanted if c not in by_code and c not in self._absent_codes]
        if missing:
            for partner in await self._fetch_by_seller_codes(missing):
                tracked = self._track(partner.partner_id, partner)
                by_code[tracked.seller_code] = tracked
            self._absent_codes.update(c for c in missing if c not in by_code)
        return {c: by_code[c] for c in wanted if c in by_code}

    async def get_by_api_key_hash(self, key_hash: str) -> Partner | None:
        partner = await self._fetch_by_api_key_hash(key_hash)
        return self._track(partner.partner_id, partner) if partner is not None else None

    def add(self, partner: Partner) -> None:
        self._register_new(partner.partner_id, partner)

    @abc.abstractmethod
    async def _fetch(self, partner_ids: list[str]) -> list[Partner]: ...

    @abc.abstractmethod
    async def _fetch_by_seller_codes(self, codes: list[str]) -> list[Partner]: ...

    @abc.abstractmethod
    async def _fetch_by_api_key_hash(self, key_hash: str) -> Partner | None: ...

    @abc.abstractmethod
    async def page(self, *, after: str | None, limit: int) -> list[Partner]:
        """Partners by id after `after` (the directory for operators); read-only, untracked."""


class EntitlementRepository(TrackingRepository[Entitlement], abc.ABC):
    async def get(self, license_key: str) -> Entitlement | None:
        return (await self.get_many([license_key])).get(license_key)

    async def get_many(self, license_keys: Iterable[str]) -> dict[str, Entitlement]:
        wanted = set(license_keys)
        missing = self._unknown(wanted)
        if missing:
            for entitlement in await self._fetch(missing):
                self._track(entitlement.license_key, entitlement)
            self._note_absent(missing)
        return {k: self._seen[k] for k in wanted if k in self._seen}

    def add(self, entitlement: Entitlement) -> None:
        self._register_new(entitlement.license_key, entitlement)

    async def get_by_contact_token_hash(self, token_hash: str) -> Entitlement | None:
        """The entitlement whose pending contact waits for this confirmation token."""
        found = await self._fetch_by_contact_token_hash(token_hash)
        return self._track(found.license_key, found) if found is not None else None

    @abc.abstractmethod
    async def _fetch(self, license_keys: list[str]) -> list[Entitlement]: ...

    @abc.abstractmethod
    async def _fetch_by_contact_token_hash(self, token_hash: str) -> Entitlement | None: ...

    @abc.abstractmethod
    async def list_for_partner(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[Entitlement]:
        """Read-only query: entitlements whose partner of record is `partner_id`."""


class ConflictRepository(abc.ABC):
    def __init__(self) -> None:
        self.added: list[AttributionConflict] = []
        self.known_new: set[str] = set()

    def add(self, conflict: AttributionConflict, *, known_new: bool = False) -> None:
        """Record a conflict; ids are deterministic, so recording one again replaces it.

        `known_new`: the caller guarantees the id was never recorded (an order's
        line is applied once), so it may be inserted rather than upserted.
        """
        self.added.append(conflict)
        if known_new:
            self.known_new.add(conflict.conflict_id)

    @abc.abstractmethod
    async def query(
        self,
        *,
        license_key: str | None = None,
        partner_id: str | None = None,
        limit: int = 100,
    ) -> list[AttributionConflict]: ...


class ProcessedOrderRepository(abc.ABC):
    def __init__(self) -> None:
        self.added: list[ProcessedOrder] = []

    def add(self, record: ProcessedOrder) -> None:
        self.added.append(record)

    @abc.abstractmethod
    async def find(
        self, order_ids: Iterable[str], event_ids: Iterable[str]
    ) -> list[ProcessedOrder]: ...

    @abc.abstractmethod
    async def for_license_key(self, license_key: str, limit: int = 50) -> list[ProcessedOrder]: ...


class DealRepository(TrackingRepository[Deal], abc.ABC):
    """Registered deals (CONTRACT 6.3); written with the unit of work like the others."""

    async def get(self, deal_id: str) -> Deal | None:
        missing = self._unknown([deal_id])
        if missing:
            for deal in await self._fetch(missing):
                self._track(deal.deal_id, deal)
            self._note_absent(missing)
        return self._cached(deal_id)

    def add(self, deal: Deal) -> None:
        self._register_new(deal.deal_id, deal)

    async def approved_for(self, products: Iterable[str]) -> list[Deal]:
        """Approved deals of these products (the ones that may protect an order line)."""
        wanted = sorted(set(products))
        if not wanted:
            return []
        return [self._track(d.deal_id, d) for d in await self._fetch_approved(wanted)]

    async def due_for_expiry(self, cutoff: dt.datetime, limit: int) -> list[Deal]:
        """Approved deals whose protection ended by `cutoff`, oldest first."""
        return [self._track(d.deal_id, d) for d in await self._fetch_due(cutoff, limit)]

    @abc.abstractmethod
    async def _fetch(self, deal_ids: list[str]) -> list[Deal]: ...

    @abc.abstractmethod
    async def _fetch_approved(self, products: list[str]) -> list[Deal]: ...

    @abc.abstractmethod
    async def _fetch_due(self, cutoff: dt.datetime, limit: int) -> list[Deal]: ...

    @abc.abstractmethod
    async def query(
        self,
        *,
        partner_id: str | None,
        status: DealStatus | None,
        after: str | None,
        limit: int,
    ) -> list[Deal]:
        """Read-only: deals by id, of one partner and/or in one status."""

    @abc.abstractmethod
    async def product_seen(self, product: str) -> bool:
        """Has any entitlement of `product` been sold (checkout is the catalogue's record)?"""


class UnitOfWork(abc.ABC):
    """One use case's transaction. `async with factory() as uow: ...; await uow.commit()`."""

    partners: PartnerRepository
    entitlements: EntitlementRepository
    conflicts: ConflictRepository
    processed_orders: ProcessedOrderRepository
    deals: DealRepository

    def __init__(self) -> None:
        self.events: list[OutboundEvent] = []
        self.committed = False

    def emit(self, event: OutboundEvent) -> None:
        self.events.append(event)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        """Write everything in one transaction; ConcurrentUpdate / DuplicateKey on a clash."""
        await self._commit()
        self.committed = True

    @abc.abstractmethod
    async def _commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
