"""/v1/admin/entitlements and /v1/admin/attribution-conflicts (operator token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registration.entrypoints.dependencies import AdminDep, ServicesDep
from services.registration.entrypoints.schemas import (
    AdminEntitlementOut,
    ConflictList,
    ConflictOut,
    EntitlementOut,
    ReassignIn,
)

router = APIRouter(prefix="/v1/admin", tags=["admin: entitlements"])


@router.get("/entitlements/{license_key}", response_model=AdminEntitlementOut)
async def get_entitlement(license_key: str, _: AdminDep, svc: ServicesDep) -> AdminEntitlementOut:
    """The entitlement with its full attribution history, conflicts and applied orders."""
    view = await svc.entitlements.for_admin(license_key)
    return AdminEntitlementOut.build(view.entitlement, view.conflicts, view.orders)


@router.get("/attribution-conflicts", response_model=ConflictList)
async def list_conflicts(
    _: AdminDep,
    svc: ServicesDep,
    license_key: Annotated[str | None, Query(max_length=100)] = None,
    partner_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ConflictList:
    """Claims that were not applied (newest first); `partner_id` matches either side."""
    found = await svc.entitlements.conflicts(
        license_key=license_key, partner_id=partner_id, limit=limit
    )
    return ConflictList(conflicts=[ConflictOut.of(c) for c in found])


@router.put("/entitlements/{license_key}/partner-of-record", response_model=EntitlementOut)
async def reassign(
    license_key: str, body: ReassignIn, _: AdminDep, svc: ServicesDep
) -> EntitlementOut:
    """Set (or clear, with null) the partner of record; `reason` is required and kept."""
    entitlement = await svc.entitlements.reassign(license_key, body.partner_id, body.reason)
    return EntitlementOut.of(entitlement)
