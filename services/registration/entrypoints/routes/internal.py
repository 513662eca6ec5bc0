"""/v1/internal/api-keys/introspect: other services resolve partner keys here (RFC 7662 style)."""

from __future__ import annotations

from fastapi import APIRouter

from services.registration.entrypoints.dependencies import AdminDep, ServicesDep
from services.registration.entrypoints.schemas import IntrospectIn, IntrospectOut

router = APIRouter(prefix="/v1/internal", tags=["internal"])


@router.post("/api-keys/introspect", response_model=IntrospectOut)
async def introspect(body: IntrospectIn, _: AdminDep, svc: ServicesDep) -> IntrospectOut:
    """`{"active": true, "partner_id"}` for an active partner's key, else `{"active": false}`."""
    partner_id = await svc.partners.resolve_api_key(body.api_key)
    return IntrospectOut(active=partner_id is not None, partner_id=partner_id)
