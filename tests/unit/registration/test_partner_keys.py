"""Partner keys' use cases on in-memory fakes (CONTRACT 6.7): roles, revocation, last use."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from chassis.partner_audit import AuditEntry
from services.registration.domain.partner_keys import (
    MAX_ACTIVE_KEYS,
    KeyRole,
    PartnerKey,
    creation_key_id,
)
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.partner_keys import PartnerKeyService, PartnerKeyStore
from services.registration.service_layer.partners import PartnerService
from tests.unit.registration.builders import at, enrol
from tests.unit.registration.fakes import Clock, Store, factory

pytestmark = pytest.mark.unit


class FakeKeys(PartnerKeyStore):
    def __init__(self) -> None:
        self.keys: dict[str, PartnerKey] = {}
        self.touches = 0

    async def add(self, key: PartnerKey) -> None:
        self.keys[key.key_id] = dataclasses.replace(key)

    async def adopt(self, key: PartnerKey) -> None:
        self.keys.setdefault(key.key_id, dataclasses.replace(key))

    async def by_hash(self, key_hash: str) -> PartnerKey | None:
        found = [k for k in self.keys.values() if k.key_hash == key_hash]
        return dataclasses.replace(found[0]) if found else None

    async def for_partner(self, partner_id: str) -> list[PartnerKey]:
        return [dataclasses.replace(k) for k in self.keys.values() if k.partner_id == partner_id]

    async def revoke(self, partner_id: str, key_id: str, at: dt.datetime, by: str) -> bool:
        key = self.keys.get(key_id)
        if key is None or key.partner_id != partner_id or not key.active:
            return False
        key.revoked_at, key.revoked_by = at, by
        return True

    async def unrevoke(self, partner_id: str, key_id: str) -> None:
        self.keys[key_id].revoked_at = None

    async def count_active(self, partner_id: str, role: KeyRole | None = None) -> int:
        return sum(
            1
            for k in self.keys.values()
            if k.partner_id == partner_id and k.active and role in (None, k.role)
        )

    async def touch(self, key_id: str, at: dt.datetime, stale_before: dt.datetime) -> None:
        key = self.keys[key_id]
        if key.last_used_at is None or key.last_used_at < stale_before:
            key.last_used_at = at
            self.touches += 1


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def for_partner(
        self, partner_id: str, *, before: dt.datetime | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        return [e for e in reversed(self.entries) if e.partner_id == partner_id][:limit]


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-01T12:00:00Z"))


async def _world(clock: Clock) -> tuple[PartnerKeyService, FakeKeys, FakeAudit, str, str]:
    store = Store()
    keys, audit = FakeKeys(), FakeAudit()
    service = PartnerKeyService(factory(store), keys, audit, clock)
    partner_id, _, api_key = await enrol(PartnerService(factory(store), clock))
    await service.adopt_creation_key(store.partners[partner_id])
    return service, keys, audit, partner_id, api_key


async def test_the_creation_key_resolves_as_admin_and_new_keys_by_their_role(
    clock: Clock,
) -> None:
    service, keys, audit, partner_id, api_key = await _world(clock)
    resolved = await service.resolve(api_key)
    assert resolved is not None and resolved.role == "admin"
    assert resolved.key_id == creation_key_id(partner_id)
    made, secret = await service.create(partner_id, "Finance", "finance", actor=resolved.key_id)
    assert secret.startswith("ckp_") and secret not in repr(keys.keys)
    finance = await service.resolve(secret)
    assert finance is not None and (finance.role, finance.key_id) == ("finance", made.key_id)
    assert [e.action for e in audit.entries] == ["key.created"]
    assert audit.entries[0].actor_key_id == resolved.key_id


async def test_last_used_is_written_at_most_once_a_minute(clock: Clock) -> None:
    service, keys, _, _, api_key = await _world(clock)
    for _ in range(5):
        await service.resolve(api_key)
    assert keys.touches == 1
    clock.advance(seconds=61)
    await service.resolve(api_key)
    assert keys.touches == 2


async def test_revocation_and_the_last_admin_key(clock: Clock) -> None:
    service, keys, audit, partner_id, _ = await _world(clock)
    creation = creation_key_id(partner_id)
    with pytest.raises(UseCaseError) as last:
        await service.revoke(partner_id, creation, actor=creation)
    assert (last.value.kind, last.value.code) == ("conflict", "last_admin_key")
    assert keys.keys[creation].active  # put back
    _, sales = await service.create(partner_id, "Sales", "sales", actor=creation)
    sales_id = (await service.resolve(sales)).key_id  # type: ignore[union-attr]
    await service.revoke(partner_id, sales_id, actor=creation)
    assert await service.resolve(sales) is None
    with pytest.raises(UseCaseError) as again:
        await service.revoke(partner_id, sales_id, actor=creation)
    assert again.value.kind == "not_found"
    with pytest.raises(UseCaseError) as theirs:
        await service.revoke("P-OTHER", creation, actor=creation)
    assert theirs.value.kind == "not_found"
    assert [e.action for e in audit.entries] == ["key.created", "key.revoked"]


async def test_a_partner_has_a_bounded_number_of_keys(clock: Clock) -> None:
    service, _, _, partner_id, _ = await _world(clock)
    for n in range(MAX_ACTIVE_KEYS - 1):
        await service.create(partner_id, f"k{n}", "sales", actor="K-1")
    with pytest.raises(UseCaseError) as full:
        await service.create(partner_id, "one more", "sales", actor="K-1")
    assert full.value.code == "too_many_keys"


async def test_keys_of_a_suspended_partner_or_of_nobody_resolve_to_nothing(
    clock: Clock,
) -> None:
    service, _, _, _, _ = await _world(clock)
    assert await service.resolve("ckp_unknown") is None
    assert await service.resolve("not-a-key") is None
    assert await service.resolve("ckp_" + "x" * 300) is None
