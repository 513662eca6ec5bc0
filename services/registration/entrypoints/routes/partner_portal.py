"""/v1/partner/*: a partner's own registrations and entitlements (partner API key).

Another partner's entitlement answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from chassis.auth import bearer_token
from services.registration.entrypoints.dependencies import PartnerDep, ServicesDep
from services.registration.entrypoints.routes.registrations import customer_details
from services.registration.entrypoints.schemas import (
    EntitlementOut,
    EntitlementPage,
    PartnerOut,
    PartnerRegistrationIn,
    RenewalModeIn,
    RenewalModeOut,
)
from services.registration.service_layer.secrets import key_id
from shared.events import format_timestamp

router = APIRouter(prefix="/v1/partner", tags=["partner"])


@router.get("/me", response_model=PartnerOut)
async def me(caller: PartnerDep, svc: ServicesDep) -> PartnerOut:
    """The caller's own partner record (name, branding, seller code), never its key."""
    return PartnerOut.of(await svc.partners.get(caller.partner_id), svc.clock())


@router.put("/renewal-mode", response_model=RenewalModeOut)
async def set_renewal_mode(
    body: RenewalModeIn, caller: PartnerDep, svc: ServicesDep, request: Request
) -> RenewalModeOut:
    """Choose whom customer renewal reminders steer to, effective now (CONTRACT 6.1).

    Audited on the partner with the calling key's id and the time.
    """
    actor = f"partner_key:{key_id(bearer_token(request))}"
    partner = await svc.partners.set_renewal_mode(caller.partner_id, body.renewal_mode, actor=actor)
    now = svc.clock()
    in_force = [c for c in partner.renewal_mode_history if c.effective_at <= now]
    since = in_force[-1].effective_at if in_force else partner.created_at
    return RenewalModeOut(
        partner_id=partner.partner_id,
        renewal_mode=partner.renewal_mode_at(now),
        effective_at=format_timestamp(since),
    )


@router.post("/registrations", status_code=201, response_model=EntitlementOut)
async def register_for_customer(
    body: PartnerRegistrationIn, caller: PartnerDep, svc: ServicesDep, response: Response
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
    caller: PartnerDep,
    svc: ServicesDep,
    term_end_before: Annotated[dt.date | None, Query()] = None,
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
async def get_entitlement(license_key: str, caller: PartnerDep, svc: ServicesDep) -> EntitlementOut:
    return EntitlementOut.of(await svc.entitlements.for_partner(caller.partner_id, license_key))
