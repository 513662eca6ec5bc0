"""/v1/internal/api-keys/introspect: other services resolve partner keys here (RFC 7662 style)."""

from __future__ import annotations

from fastapi import APIRouter

from services.registration.entrypoints.dependencies import AdminDep, ServicesDep
from services.registration.entrypoints.schemas import IntrospectIn, IntrospectOut

router = APIRouter(prefix="/v1/internal", tags=["internal"])


@router.post("/api-keys/introspect", response_model=IntrospectOut)
async def introspect(body: IntrospectIn, _: AdminDep, svc: ServicesDep) -> IntrospectOut:
    """`{"active": true, "partner_id", "key_id", "role"}` for an active key of an active
    partner, else `{"active": false}` (a revoked key included: CONTRACT 6.7)."""
    key = await svc.keys.resolve(body.api_key)
    if key is None:
        return IntrospectOut(active=False)
    return IntrospectOut(active=True, partner_id=key.partner_id, key_id=key.key_id, role=key.role)
