"""/v1/partner/*: a partner's own registrations and entitlements (partner API key).

Another partner's entitlement answers 404 exactly like one that does not exist.
Roles (CONTRACT 6.7): entitlements and registrations are sales' (and admin's);
the partner's own record is every key's (the portal signs in with it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chassis.auth import PartnerPrincipal
from chassis.bounds import BoundedDate
from services.registration.entrypoints.dependencies import ServicesDep, require_partner_role
from services.registration.entrypoints.routes.registrations import customer_details
from services.registration.entrypoints.schemas import (
    EntitlementOut,
    EntitlementPage,
    PartnerOut,
    PartnerRegistrationIn,
)

router = APIRouter(prefix="/v1/partner", tags=["partner"])

SalesKey = Annotated[PartnerPrincipal, require_partner_role("sales")]
AnyKey = Annotated[PartnerPrincipal, require_partner_role("sales", "finance")]


@router.get("/me", response_model=PartnerOut)
async def me(caller: AnyKey, svc: ServicesDep) -> PartnerOut:
    """The caller's own partner record (name, branding, seller code), never its key."""
    return PartnerOut.of(await svc.partners.get(caller.partner_id), svc.clock())


@router.post("/registrations", status_code=201, response_model=EntitlementOut)
async def register_for_customer(
    body: PartnerRegistrationIn, caller: SalesKey, svc: ServicesDep, response: Response
) -> EntitlementOut:
    """Become partner of record of a customer's licence; `409 attributed_elsewhere` if held."""
    outcome = await svc.registrations.register_by_partner(
        caller.partner_id,
        body.license_key,
        customer_details(body.customer) if body.customer is not None else None,
    )
    if not outcome.first_time:
        response.status_code = 200
    return EntitlementOut.of(outcome.entitlement)


@router.get("/entitlements", response_model=EntitlementPage)
async def list_entitlements(
    caller: SalesKey,
    svc: ServicesDep,
    term_end_before: Annotated[BoundedDate | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntitlementPage:
    """The caller's entitlements by licence key; `term_end_before=YYYY-MM-DD` filters."""
    found = await svc.entitlements.list_for_partner(
        caller.partner_id, term_end_before=term_end_before, after=after, limit=limit
    )
    return EntitlementPage(
        entitlements=[EntitlementOut.of(e) for e in found],
        next_after=found[-1].license_key if len(found) == limit else None,
    )


@router.get("/entitlements/{license_key}", response_model=EntitlementOut)
async def get_entitlement(license_key: str, caller: SalesKey, svc: ServicesDep) -> EntitlementOut:
    return EntitlementOut.of(await svc.entitlements.for_partner(caller.partner_id, license_key))
