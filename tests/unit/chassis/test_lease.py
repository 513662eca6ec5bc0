"""chassis.lease: one holder at a time, renewal, takeover after lapse, epochs, release.

The scenarios run here on a small in-memory collection (the few operators the
lease uses) and, in tests/integration/test_lease.py, on the embedded database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from chassis.lease import MongoLease

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=10)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, want in query.items():
        if key == "$or":
            if not any(_matches(doc, alternative) for alternative in want):
                return False
        elif isinstance(want, dict):
            for op, value in want.items():
                if op == "$lt" and not (key in doc and doc[key] < value):
                    return False
                if op == "$exists" and (key in doc) != value:
                    return False
        elif doc.get(key) != want:
            return False
    return True


class FakeCollection:
    """The lease's operators over dicts: find_one_and_update, insert_one, delete_one."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def find_one_and_update(
        self, query: dict[str, Any], update: dict[str, Any], return_document: Any
    ) -> dict[str, Any] | None:
        assert return_document is ReturnDocument.AFTER
        doc = next((d for d in self.docs.values() if _matches(d, query)), None)
        if doc is None:
            return None
        doc.update(update.get("$set", {}))
        for key, step in update.get("$inc", {}).items():
            doc[key] = doc.get(key, 0) + step
        return dict(doc)

    async def insert_one(self, doc: dict[str, Any]) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[doc["_id"]] = dict(doc)

    async def delete_one(self, query: dict[str, Any]) -> None:
        for key, doc in list(self.docs.items()):
            if _matches(doc, query):
                del self.docs[key]
                return


class FakeDb:
    def __init__(self) -> None:
        self.collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name: str) -> FakeCollection:
        return self.collections.setdefault(name, FakeCollection())


def leases(db: Any, clock: FakeClock, *owners: str, name: str = "job") -> list[MongoLease]:
    return [
        MongoLease(db, name, owner=o, ttl=TTL, clock=clock, collection="t_leases") for o in owners
    ]


async def scenario_one_holder_then_takeover(db: Any) -> None:
    clock = FakeClock()
    a, b = leases(db, clock, "a", "b")
    assert await a.acquire() and a.epoch == 1 and a.held_until == T0 + TTL
    assert not await b.acquire() and b.epoch is None
    clock.advance(5)
    assert await a.acquire() and a.epoch == 1  # renewal keeps the epoch
    assert await a.renew() and a.held_until == clock.now + TTL
    clock.advance(9)
    assert not await b.acquire()  # renewed: not lapsed yet
    clock.advance(2)  # a stopped renewing: lapsed
    assert await b.acquire() and b.epoch == 2  # a new holder, a new epoch
    assert not await a.renew() and a.epoch is None  # a learns it lost the lease
    assert not await a.acquire()
    await a.release()  # not a's: changes nothing
    assert not await a.acquire()
    await b.release()
    assert b.epoch is None
    assert await a.acquire() and a.epoch == 1  # released: a fresh lease


async def scenario_names_and_restarts(db: Any) -> None:
    clock = FakeClock()
    a_relay, b_relay = leases(db, clock, "a", "b", name="relay")
    (b_expiry,) = leases(db, clock, "b", name="expiry")
    assert await a_relay.acquire() and await b_expiry.acquire()  # independent names
    assert not await b_relay.acquire()
    (a_again,) = leases(db, clock, "a", name="relay")  # a restarted with the same id
    assert await a_again.acquire() and a_again.epoch == 1


async def scenario_a_legacy_document_counts_as_lapsed(db: Any) -> None:
    # commissions' relay lease before chassis.lease: {holder, until}.
    await db["t_leases"].insert_one({"_id": "relay", "holder": "old", "until": T0 + TTL})
    (lease,) = leases(db, FakeClock(), "new", name="relay")
    assert await lease.acquire() and lease.epoch == 1


SCENARIOS = [
    scenario_one_holder_then_takeover,
    scenario_names_and_restarts,
    scenario_a_legacy_document_counts_as_lapsed,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_lease_on_an_in_memory_collection(scenario: Any) -> None:
    await scenario(FakeDb())


def test_a_lease_needs_a_positive_ttl() -> None:
    with pytest.raises(ValueError, match="positive ttl"):
        MongoLease(FakeDb(), "x", owner="a", ttl=dt.timedelta(0), clock=FakeClock())  # type: ignore[arg-type]
