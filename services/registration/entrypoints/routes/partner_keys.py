"""Partner teams and keys (CONTRACT 6.7): /v1/partner/keys, /v1/partner/audit, key recovery.

Admin keys only. The secret of a new key is in the 201 answer and nowhere else;
listings show a key's id, name, role and `last_used_at`, never the key.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from chassis.auth import PartnerPrincipal
from chassis.bounds import BoundedInstant
from chassis.partner_audit import OPERATOR, AuditPage, page
from services.registration.domain.partner_keys import KeyRole, PartnerKey
from services.registration.entrypoints.dependencies import (
    AdminDep,
    ServicesDep,
    require_partner_role,
)
from services.registration.entrypoints.schemas import Strict
from services.registration.entrypoints.validation import Name

router = APIRouter(tags=["partner: keys"])

AdminKey = Annotated[PartnerPrincipal, require_partner_role("admin")]
AnyKey = Annotated[PartnerPrincipal, require_partner_role("sales", "finance")]


class KeyIn(Strict):
    name: Name = Field(description="who or what uses the key, e.g. `Finance desk`")
    role: KeyRole = Field(description="`admin` (everything, keys), `sales`, `finance`")


class RecoveryKeyIn(Strict):
    name: Name = Field("recovery", description="a name for the new admin key")


class KeyCreated(Strict):
    key_id: str
    api_key: str = Field(description="the key itself: shown this once, stored hashed")
    name: str
    role: KeyRole


class KeyOut(Strict):
    key_id: str
    name: str
    role: KeyRole
    created_at: dt.datetime
    created_by: str = Field(description="the key id that created it, or `operator`")
    last_used_at: dt.datetime | None = Field(description="to the minute")
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, key: PartnerKey) -> KeyOut:
        return cls(
            key_id=key.key_id,
            name=key.name,
            role=key.role,
            created_at=key.created_at,
            created_by=key.created_by,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class KeyList(Strict):
    keys: list[KeyOut]


class CallingKey(Strict):
    key_id: str | None
    role: KeyRole


def _actor(caller: PartnerPrincipal) -> str:
    return caller.key_id or OPERATOR


@router.get("/v1/partner/key", response_model=CallingKey)
async def calling_key(caller: AnyKey) -> CallingKey:
    """The key this request carries: its id and role (a portal shows what the role may use)."""
    return CallingKey(key_id=caller.key_id, role=caller.role)


@router.post("/v1/partner/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyIn, caller: AdminKey, svc: ServicesDep) -> KeyCreated:
    """A new key with a role; the `api_key` in the answer is shown this once."""
    key, api_key = await svc.keys.create(
        caller.partner_id, body.name, body.role, actor=_actor(caller)
    )
    return KeyCreated(key_id=key.key_id, api_key=api_key, name=key.name, role=key.role)


@router.get("/v1/partner/keys", response_model=KeyList)
async def list_keys(caller: AdminKey, svc: ServicesDep) -> KeyList:
    """The partner's keys, revoked ones included; never a key itself."""
    return KeyList(keys=[KeyOut.of(k) for k in await svc.keys.of_partner(caller.partner_id)])


@router.delete("/v1/partner/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, caller: AdminKey, svc: ServicesDep) -> Response:
    """Revoke a key: refused here at once, by the other services within 60 s.

    `409 last_admin_key` for the partner's last active admin key.
    """
    await svc.keys.revoke(caller.partner_id, key_id, actor=_actor(caller))
    return Response(status_code=204)


@router.get("/v1/partner/audit", response_model=AuditPage)
async def audit(
    caller: AdminKey,
    svc: ServicesDep,
    before: Annotated[BoundedInstant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Key, renewal-mode and contact changes made here, newest first: who (key id) and when.

    Webhook changes are on notifications' `GET /v1/partner/audit`.
    """
    entries = await svc.keys.audit_trail(caller.partner_id, before=before, limit=limit)
    return page(entries, limit)


@router.post(
    "/v1/admin/partners/{partner_id}/keys",
    status_code=201,
    response_model=KeyCreated,
    tags=["admin: partners"],
)
async def recovery_key(
    partner_id: str, _: AdminDep, svc: ServicesDep, body: RecoveryKeyIn | None = None
) -> KeyCreated:
    """Recovery: a new admin key for a partner that lost its own (operator token)."""
    key, api_key = await svc.keys.recover(partner_id, body.name if body else "recovery")
    return KeyCreated(key_id=key.key_id, api_key=api_key, name=key.name, role=key.role)
