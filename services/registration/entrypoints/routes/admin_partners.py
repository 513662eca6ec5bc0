"""/v1/admin/partners: the partner directory (operator token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.registration.domain.partners import Branding
from services.registration.entrypoints.dependencies import AdminDep, ServicesDep
from services.registration.entrypoints.schemas import (
    PartnerCreate,
    PartnerCreated,
    PartnerList,
    PartnerOut,
    PartnerPatch,
)
from services.registration.service_layer.partners import NewPartner, PartnerChanges

router = APIRouter(prefix="/v1/admin/partners", tags=["admin: partners"])


@router.post("", status_code=201, response_model=PartnerCreated)
async def create_partner(body: PartnerCreate, _: AdminDep, svc: ServicesDep) -> PartnerCreated:
    """Enrol a partner. The `api_key` in the answer is shown this once."""
    partner, api_key = await svc.partners.create(
        NewPartner(
            display_name=body.display_name,
            legal_name=body.legal_name,
            type=body.type,
            tier=body.tier,
            contact_email=body.contact_email,
            parent_partner_id=body.parent_partner_id,
            branding=Branding(**body.branding.model_dump()),
            co_brand_customer_messages=body.co_brand_customer_messages,
            customer_ids=tuple(body.customer_ids),
            effective_at=body.effective_at,
            renewal_mode=body.renewal_mode,
        )
    )
    await svc.keys.adopt_creation_key_soon(partner)  # CONTRACT 6.7: it is an admin key
    out = PartnerOut.of(partner, svc.clock())
    return PartnerCreated(**out.model_dump(), api_key=api_key)


@router.get("", response_model=PartnerList)
async def list_partners(
    _: AdminDep,
    svc: ServicesDep,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PartnerList:
    """The partner directory by `partner_id`, a page at a time (the operators' console)."""
    found = await svc.partners.page(after=after, limit=limit)
    now = svc.clock()
    next_after = found[-1].partner_id if len(found) == limit else None
    return PartnerList(partners=[PartnerOut.of(p, now) for p in found], next_after=next_after)


@router.get("/{partner_id}", response_model=PartnerOut)
async def get_partner(partner_id: str, _: AdminDep, svc: ServicesDep) -> PartnerOut:
    return PartnerOut.of(await svc.partners.get(partner_id), svc.clock())


@router.patch("/{partner_id}", response_model=PartnerOut)
async def update_partner(
    partner_id: str, body: PartnerPatch, _: AdminDep, svc: ServicesDep
) -> PartnerOut:
    """Change tier, status, renewal mode, branding or contact, from `effective_at` (default now)."""
    contact_before = (await svc.partners.get(partner_id)).contact_email
    partner = await svc.partners.update(
        partner_id,
        PartnerChanges(
            tier=body.tier,
            status=body.status,
            display_name=body.display_name,
            legal_name=body.legal_name,
            contact_email=body.contact_email,
            branding=body.branding.model_dump(exclude_unset=True) if body.branding else None,
            co_brand_customer_messages=body.co_brand_customer_messages,
            customer_ids=tuple(body.customer_ids) if body.customer_ids is not None else None,
            effective_at=body.effective_at,
            renewal_mode=body.renewal_mode,
        ),
    )
    if partner.contact_email != contact_before:  # CONTRACT 6.7: in the partner's audit
        await svc.keys.record_contact_change(partner_id)
    return PartnerOut.of(partner, svc.clock())
