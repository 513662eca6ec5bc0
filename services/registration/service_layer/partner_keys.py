"""Partner API keys (CONTRACT 6.7): create, list, revoke, recover, and resolve a key.

Keys live in their own store beside the partners: a key is found by its SHA-256
(one indexed read) and carries its role. The key made at partner creation is
still written on the partner (`api_key_hash`, as before roles) and adopted into
the store as an `admin` key: at start-up for every partner (migration), after
each creation, and, should both have been missed, on its first use.
Every change is written to the partner's audit trail with the acting key's id.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from chassis.partner_audit import OPERATOR, AuditEntry, AuditLog
from services.registration.domain.partner_keys import (
    CREATION_KEY_NAME,
    LAST_USED_GRANULARITY,
    MAX_ACTIVE_KEYS,
    KeyRole,
    PartnerKey,
    creation_key_id,
)
from services.registration.domain.partners import Partner
from services.registration.service_layer import secrets
from services.registration.service_layer.errors import conflict, not_found
from services.registration.service_layer.unit_of_work import Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)


class PartnerKeyStore(abc.ABC):
    """Port: the partner_keys collection."""

    @abc.abstractmethod
    async def add(self, key: PartnerKey) -> None: ...

    @abc.abstractmethod
    async def adopt(self, key: PartnerKey) -> None:
        """Insert unless a key of that id exists (idempotent)."""

    @abc.abstractmethod
    async def by_hash(self, key_hash: str) -> PartnerKey | None: ...

    @abc.abstractmethod
    async def for_partner(self, partner_id: str) -> list[PartnerKey]:
        """Active and revoked keys, oldest first."""

    @abc.abstractmethod
    async def revoke(self, partner_id: str, key_id: str, at: dt.datetime, by: str) -> bool:
        """Mark an active key revoked; False if the partner has no such active key."""

    @abc.abstractmethod
    async def unrevoke(self, partner_id: str, key_id: str) -> None: ...

    @abc.abstractmethod
    async def count_active(self, partner_id: str, role: KeyRole | None = None) -> int: ...

    @abc.abstractmethod
    async def touch(self, key_id: str, at: dt.datetime, stale_before: dt.datetime) -> None:
        """Set `last_used_at` if it is older than `stale_before` (or unset)."""


@dataclass(frozen=True)
class ResolvedKey:
    partner_id: str
    key_id: str
    role: KeyRole


class PartnerKeyService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: PartnerKeyStore,
        audit: AuditLog,
        clock: Clock,
        *,
        new_api_key: Callable[[], str] = secrets.new_api_key,
        new_key_id: Callable[[], str] = secrets.new_key_id,
    ) -> None:
        self._uow = uow
        self._store = store
        self._audit = audit
        self._clock = clock
        self._new_api_key = new_api_key
        self._new_key_id = new_key_id

    async def adopt_creation_key(self, partner: Partner) -> None:
        """The partner's creation key, as an admin key in the store; idempotent."""
        await self._store.adopt(
            PartnerKey(
                key_id=creation_key_id(partner.partner_id),
                partner_id=partner.partner_id,
                name=CREATION_KEY_NAME,
                role="admin",
                key_hash=partner.api_key_hash,
                created_at=partner.created_at,
                created_by=OPERATOR,
            )
        )

    async def adopt_creation_key_soon(self, partner: Partner) -> None:
        """After a partner's creation: a failure here must not lose the answer with its
        key, and is harmless (start-up migration and first use adopt it too)."""
        try:
            await self.adopt_creation_key(partner)
        except Exception as error:
            log.warning(
                "creation key not adopted yet",
                extra={"partner_id": partner.partner_id, "error": type(error).__name__},
            )

    async def create(
        self, partner_id: str, name: str, role: KeyRole, *, actor: str
    ) -> tuple[PartnerKey, str]:
        """A new key; returns it with the secret, which exists only in this answer."""
        if await self._store.count_active(partner_id) >= MAX_ACTIVE_KEYS:
            raise conflict(
                "too_many_keys", f"a partner has at most {MAX_ACTIVE_KEYS} active keys; revoke one"
            )
        api_key = self._new_api_key()
        now = self._clock()
        key = PartnerKey(
            key_id=self._new_key_id(),
            partner_id=partner_id,
            name=name,
            role=role,
            key_hash=secrets.hash_secret(api_key),
            created_at=now,
            created_by=actor,
        )
        await self._store.add(key)
        await self._audit.record(
            AuditEntry(
                partner_id=partner_id,
                actor_key_id=actor,
                action="key.created",
                at=now,
                target=key.key_id,
                detail={"name": name, "role": role},
            )
        )
        log.info("partner key created", extra={"partner_id": partner_id, "key_id": key.key_id})
        return key, api_key

    async def recover(self, partner_id: str, name: str) -> tuple[PartnerKey, str]:
        """The operator's way back in for a partner: a new admin key (404 for no partner)."""
        async with self._uow() as uow:
            if await uow.partners.get(partner_id) is None:
                raise not_found("partner_not_found", "no such partner")
        return await self.create(partner_id, name, "admin", actor=OPERATOR)

    async def of_partner(self, partner_id: str) -> list[PartnerKey]:
        return await self._store.for_partner(partner_id)

    async def revoke(self, partner_id: str, key_id: str, *, actor: str) -> None:
        """Revoke a key of the partner's; never its last active admin key (409)."""
        now = self._clock()
        if not await self._store.revoke(partner_id, key_id, now, actor):
            raise not_found("key_not_found", "no such active key")
        # Checked after the write: two admins revoking each other at once both see
        # none left and both put theirs back, so no interleaving leaves zero.
        if await self._store.count_active(partner_id, "admin") == 0:
            await self._store.unrevoke(partner_id, key_id)
            raise conflict(
                "last_admin_key",
                "this is the partner's last admin key; create another admin key first",
            )
        await self._audit.record(
            AuditEntry(
                partner_id=partner_id,
                actor_key_id=actor,
                action="key.revoked",
                at=now,
                target=key_id,
            )
        )
        log.info("partner key revoked", extra={"partner_id": partner_id, "key_id": key_id})

    async def resolve(self, api_key: str) -> ResolvedKey | None:
        """The active key of an active partner, else None; notes `last_used_at`."""
        if not api_key.startswith(secrets.API_KEY_PREFIX) or len(api_key) > 200:
            return None
        key_hash = secrets.hash_secret(api_key)
        key = await self._store.by_hash(key_hash)
        async with self._uow() as uow:
            if key is not None:
                if not key.active or not secrets.matches(api_key, key.key_hash):
                    return None
                partner = await uow.partners.get(key.partner_id)
            else:
                # A creation key not adopted yet (start-up migration still running).
                partner = await uow.partners.get_by_api_key_hash(key_hash)
                if partner is None or not secrets.matches(api_key, partner.api_key_hash):
                    return None
        now = self._clock()
        if partner is None or not partner.is_active_at(now):
            return None
        if key is None:
            await self.adopt_creation_key(partner)
            return ResolvedKey(partner.partner_id, creation_key_id(partner.partner_id), "admin")
        if not key.used_recently(now):
            await self._store.touch(key.key_id, now, now - LAST_USED_GRANULARITY)
        return ResolvedKey(key.partner_id, key.key_id, key.role)

    async def audit_trail(
        self, partner_id: str, *, before: dt.datetime | None, limit: int
    ) -> list[AuditEntry]:
        return await self._audit.for_partner(partner_id, before=before, limit=limit)

    async def record(self, entry: AuditEntry) -> None:
        """For other use cases of this service: renewal mode, contact changes."""
        await self._audit.record(entry)

    async def record_contact_change(self, partner_id: str, actor: str = OPERATOR) -> None:
        """The partner's contact changed (the address itself stays out of the trail)."""
        await self._audit.record(
            AuditEntry(
                partner_id=partner_id,
                actor_key_id=actor,
                action="contact.changed",
                at=self._clock(),
                target="contact_email",
            )
        )
