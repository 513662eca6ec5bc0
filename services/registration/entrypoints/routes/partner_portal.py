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
from chassis.partner_audit import AuditEntry
from services.registration.entrypoints.customer_dependencies import CustomerSelfServiceDep
from services.registration.entrypoints.customer_schemas import ContactIn, partner_entitlement_out
from services.registration.entrypoints.dependencies import ServicesDep, require_partner_role
from services.registration.entrypoints.routes.registrations import customer_details
from services.registration.entrypoints.schemas import (
    EntitlementOut,
    EntitlementPage,
    PartnerOut,
    PartnerRegistrationIn,
    RenewalModeIn,
    RenewalModeOut,
)
from services.registration.service_layer.customers import PartnerEntitlement
from services.registration.service_layer.errors import UseCaseError
from shared.events import format_timestamp

router = APIRouter(prefix="/v1/partner", tags=["partner"])

SalesKey = Annotated[PartnerPrincipal, require_partner_role("sales")]
AnyKey = Annotated[PartnerPrincipal, require_partner_role("sales", "finance")]
# The renewal mode is a programme setting, not day-to-day sales work (CONTRACT 6.7).
AdminKey = Annotated[PartnerPrincipal, require_partner_role("admin")]


@router.get("/me", response_model=PartnerOut)
async def me(caller: AnyKey, svc: ServicesDep) -> PartnerOut:
    """The caller's own partner record (name, branding, seller code), never its key."""
    return PartnerOut.of(await svc.partners.get(caller.partner_id), svc.clock())


@router.put("/renewal-mode", response_model=RenewalModeOut)
async def set_renewal_mode(
    body: RenewalModeIn, caller: AdminKey, svc: ServicesDep
) -> RenewalModeOut:
    """Choose whom customer renewal reminders steer to, effective now (CONTRACT 6.1).

    In the partner's audit (`GET /v1/partner/audit`) with the calling key's id and the time.
    """
    actor = caller.key_id or "operator"
    before = (await svc.partners.get(caller.partner_id)).renewal_mode_at(svc.clock())
    partner = await svc.partners.set_renewal_mode(caller.partner_id, body.renewal_mode, actor=actor)
    now = svc.clock()
    if before != body.renewal_mode:
        await svc.keys.record(
            AuditEntry(
                partner_id=caller.partner_id,
                actor_key_id=actor,
                action="renewal_mode.changed",
                at=now,
                detail={"from": before, "to": body.renewal_mode},
            )
        )
    in_force = [c for c in partner.renewal_mode_history if c.effective_at <= now]
    since = in_force[-1].effective_at if in_force else partner.created_at
    return RenewalModeOut(
        partner_id=partner.partner_id,
        renewal_mode=partner.renewal_mode_at(now),
        effective_at=format_timestamp(since),
    )


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
    own: CustomerSelfServiceDep,
    term_end_before: Annotated[BoundedDate | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntitlementPage:
    """The caller's entitlements by licence key; `term_end_before=YYYY-MM-DD` filters.

    Those the caller is partner of record of (`relationship: "partner_of_record"`) and
    those a customer gave it access to (`"access"`, CONTRACT 6.2), merged by licence key.
    """
    found = await svc.entitlements.list_for_partner(
        caller.partner_id, term_end_before=term_end_before, after=after, limit=limit
    )
    shared = await own.customers.with_access(
        caller.partner_id, term_end_before=term_end_before, after=after, limit=limit
    )
    merged = sorted(
        [*(PartnerEntitlement(e, "partner_of_record") for e in found), *shared],
        key=lambda p: p.entitlement.license_key,
    )[:limit]
    return EntitlementPage(
        entitlements=[partner_entitlement_out(p) for p in merged],
        next_after=merged[-1].entitlement.license_key if len(merged) == limit else None,
    )


@router.get("/entitlements/{license_key}", response_model=EntitlementOut)
async def get_entitlement(
    license_key: str, caller: SalesKey, svc: ServicesDep, own: CustomerSelfServiceDep
) -> EntitlementOut:
    try:
        return EntitlementOut.of(await svc.entitlements.for_partner(caller.partner_id, license_key))
    except UseCaseError as error:
        if error.kind != "not_found":
            raise
    return partner_entitlement_out(
        await own.customers.one_with_access(caller.partner_id, license_key)
    )


@router.put("/entitlements/{license_key}/contact", response_model=EntitlementOut)
async def update_contact(
    license_key: str,
    body: ContactIn,
    caller: SalesKey,
    svc: ServicesDep,
    own: CustomerSelfServiceDep,
) -> EntitlementOut:
    """A partner with `manage` access (or the PoR) keeps the customer's contact (CONTRACT
    6.2); `403` with `view` access, `404` for a licence the caller has nothing to do with."""
    found = await own.customers.update_contact(
        caller.partner_id, license_key, body.contact_name, body.email
    )
    # CONTRACT 6.7: contact changes are in the partner's audit (who, when; not the address).
    await svc.keys.record(
        AuditEntry(
            partner_id=caller.partner_id,
            actor_key_id=caller.key_id or "operator",
            action="entitlement.contact_changed",
            at=svc.clock(),
            target=license_key,
        )
    )
    return partner_entitlement_out(found)
