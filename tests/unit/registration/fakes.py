"""In-memory fakes of the registration service's own ports (no mock.patch, no I/O)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.registration.domain.customers import CustomerSession, SignInGrant, email_key
from services.registration.domain.deals import Deal, DealStatus
from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Partner
from services.registration.service_layer.customers import CustomerStore
from services.registration.service_layer.unit_of_work import (
    ConcurrentUpdate,
    ConflictRepository,
    DealRepository,
    DuplicateKey,
    EntitlementRepository,
    OutboundEvent,
    PartnerRepository,
    ProcessedOrder,
    ProcessedOrderRepository,
    UnitOfWork,
)


@dataclass
class Store:
    """What the database would hold; shared by every unit of work of a test."""

    partners: dict[str, Partner] = field(default_factory=dict)
    entitlements: dict[str, Entitlement] = field(default_factory=dict)
    conflicts: dict[str, AttributionConflict] = field(default_factory=dict)
    processed: dict[str, ProcessedOrder] = field(default_factory=dict)
    outbox: list[OutboundEvent] = field(default_factory=list)
    deals: dict[str, Deal] = field(default_factory=dict)
    commits: int = 0
    fail_next_commits: int = 0

    def events(self, event_type: str | None = None) -> list[OutboundEvent]:
        return [e for e in self.outbox if event_type is None or e.envelope.event_type == event_type]


class FakePartners(PartnerRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def _fetch(self, partner_ids: list[str]) -> list[Partner]:
        return [
            copy.deepcopy(self._store.partners[p]) for p in partner_ids if p in self._store.partners
        ]

    async def _fetch_by_seller_codes(self, codes: list[str]) -> list[Partner]:
        return [copy.deepcopy(p) for p in self._store.partners.values() if p.seller_code in codes]

    async def _fetch_by_api_key_hash(self, key_hash: str) -> Partner | None:
        for p in self._store.partners.values():
            if p.api_key_hash == key_hash:
                return copy.deepcopy(p)
        return None

    async def page(self, *, after: str | None, limit: int) -> list[Partner]:
        ids = sorted(p for p in self._store.partners if after is None or p > after)
        return [copy.deepcopy(self._store.partners[p]) for p in ids[:limit]]


class FakeEntitlements(EntitlementRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def _fetch(self, license_keys: list[str]) -> list[Entitlement]:
        return [
            copy.deepcopy(self._store.entitlements[k])
            for k in license_keys
            if k in self._store.entitlements
        ]

    async def _fetch_by_contact_token_hash(self, token_hash: str) -> Entitlement | None:
        for e in self._store.entitlements.values():
            if e.pending_contact is not None and e.pending_contact.token_hash == token_hash:
                return copy.deepcopy(e)
        return None

    async def list_for_partner(
        self, partner_id: str, *, term_end_before: dt.date | None, after: str | None, limit: int
    ) -> list[Entitlement]:
        found = [
            copy.deepcopy(e)
            for k, e in sorted(self._store.entitlements.items())
            if e.partner_of_record is not None
            and e.partner_of_record.partner_id == partner_id
            and (term_end_before is None or e.term_end < term_end_before)
            and (after is None or k > after)
        ]
        return found[:limit]


class FakeConflicts(ConflictRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def query(
        self, *, license_key: str | None = None, partner_id: str | None = None, limit: int = 100
    ) -> list[AttributionConflict]:
        found = [
            c
            for c in self._store.conflicts.values()
            if (license_key is None or c.license_key == license_key)
            and (
                partner_id is None
                or partner_id in (c.claimant_partner_id, c.partner_of_record.partner_id)
            )
        ]
        return sorted(found, key=lambda c: c.recorded_at, reverse=True)[:limit]


class FakeProcessed(ProcessedOrderRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def find(
        self, order_ids: Iterable[str], event_ids: Iterable[str]
    ) -> list[ProcessedOrder]:
        orders, events = set(order_ids), set(event_ids)
        return [
            copy.deepcopy(p)
            for p in self._store.processed.values()
            if p.order_id in orders or p.event_id in events
        ]

    async def for_license_key(self, license_key: str, limit: int = 50) -> list[ProcessedOrder]:
        return [p for p in self._store.processed.values() if license_key in p.license_keys][:limit]


class FakeDeals(DealRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    async def _fetch(self, deal_ids: list[str]) -> list[Deal]:
        return [copy.deepcopy(self._store.deals[d]) for d in deal_ids if d in self._store.deals]

    async def _fetch_approved(self, products: list[str]) -> list[Deal]:
        return [
            copy.deepcopy(d)
            for d in self._store.deals.values()
            if d.status == "approved" and d.product in products
        ]

    async def _fetch_due(self, cutoff: dt.datetime, limit: int) -> list[Deal]:
        due = [
            d
            for d in self._store.deals.values()
            if d.status == "approved" and d.protected_until and d.protected_until <= cutoff
        ]
        due.sort(key=lambda d: (d.protected_until, d.deal_id))
        return [copy.deepcopy(d) for d in due[:limit]]

    async def query(
        self,
        *,
        partner_id: str | None,
        status: DealStatus | None,
        after: str | None,
        limit: int,
    ) -> list[Deal]:
        found = [
            copy.deepcopy(d)
            for k, d in sorted(self._store.deals.items())
            if (partner_id is None or d.partner_id == partner_id)
            and (status is None or d.status == status)
            and (after is None or k > after)
        ]
        return found[:limit]

    async def product_seen(self, product: str) -> bool:
        return any(e.product == product for e in self._store.entitlements.values())


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store
        self.partners = FakePartners(store)
        self.entitlements = FakeEntitlements(store)
        self.conflicts = FakeConflicts(store)
        self.processed_orders = FakeProcessed(store)
        self.deals = FakeDeals(store)

    async def _commit(self) -> None:
        store = self._store
        if store.fail_next_commits:
            store.fail_next_commits -= 1
            raise ConcurrentUpdate("injected")
        new_p, changed_p = self.partners.pending()
        new_e, changed_e = self.entitlements.pending()
        new_d, changed_d = self.deals.pending()
        # Check everything first: a transaction writes all or nothing.
        codes = {p.seller_code for p in store.partners.values()}
        for p in new_p:
            if p.seller_code in codes:
                raise DuplicateKey("seller_code")
            if p.partner_id in store.partners:
                raise DuplicateKey("_id")
        for p in changed_p:
            if store.partners[p.partner_id].version != p.version:
                raise ConcurrentUpdate(p.partner_id)
        for e in new_e:
            if e.license_key in store.entitlements:
                raise ConcurrentUpdate(e.license_key)
        for e in changed_e:
            if store.entitlements[e.license_key].version != e.version:
                raise ConcurrentUpdate(e.license_key)
        for d in new_d:
            if d.deal_id in store.deals:
                raise ConcurrentUpdate(d.deal_id)
        for d in changed_d:
            if store.deals[d.deal_id].version != d.version:
                raise ConcurrentUpdate(d.deal_id)
        for c in self.conflicts.added:
            # Inserted, not upserted, by the database: an id recorded before fails.
            if c.conflict_id in self.conflicts.known_new and c.conflict_id in store.conflicts:
                raise ConcurrentUpdate(f"duplicate conflict {c.conflict_id}")
        for p in (*new_p, *changed_p):
            p.version = 1 if p in new_p else p.version + 1
            store.partners[p.partner_id] = copy.deepcopy(p)
        for e in (*new_e, *changed_e):
            e.version = 1 if e in new_e else e.version + 1
            store.entitlements[e.license_key] = copy.deepcopy(e)
        for d in (*new_d, *changed_d):
            d.version = 1 if d in new_d else d.version + 1
            store.deals[d.deal_id] = copy.deepcopy(d)
        for c in self.conflicts.added:
            store.conflicts[c.conflict_id] = c
        for record in self.processed_orders.added:
            store.processed[record.order_id] = copy.deepcopy(record)
        store.outbox.extend(self.events)
        store.commits += 1


def factory(store: Store):  # type: ignore[no-untyped-def]
    return lambda: FakeUnitOfWork(store)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class FakeCustomerStore(CustomerStore):
    """Sign-in tokens, sessions and the customer / access indexes over a `Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.sign_ins: dict[str, tuple[SignInGrant, dt.datetime | None]] = {}
        self.sessions: dict[str, CustomerSession] = {}

    async def add_sign_in(self, token_hash: str, grant: SignInGrant, now: dt.datetime) -> None:
        self.sign_ins[token_hash] = (grant, None)

    async def use_sign_in(self, token_hash: str, now: dt.datetime) -> SignInGrant | None:
        found = self.sign_ins.get(token_hash)
        if found is None or found[1] is not None or found[0].expires_at <= now:
            return None
        self.sign_ins[token_hash] = (found[0], now)
        return found[0]

    async def add_session(
        self, session_hash: str, session: CustomerSession, now: dt.datetime
    ) -> None:
        self.sessions[session_hash] = session

    async def session(self, session_hash: str, now: dt.datetime) -> CustomerSession | None:
        found = self.sessions.get(session_hash)
        return found if found is not None and found.expires_at > now else None

    async def license_keys_of_customer(self, customer_key: str, limit: int) -> list[str]:
        return [
            k
            for k, e in sorted(self._store.entitlements.items())
            if email_key(e.customer.email) == customer_key
        ][:limit]

    async def license_keys_with_access(
        self, partner_id: str, *, term_end_before: dt.date | None, after: str | None, limit: int
    ) -> list[str]:
        return [
            k
            for k, e in sorted(self._store.entitlements.items())
            if any(a.partner_id == partner_id for a in e.access)
            and (term_end_before is None or e.term_end < term_end_before)
            and (after is None or k > after)
        ][:limit]
