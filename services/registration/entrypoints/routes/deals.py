"""Deal registration (CONTRACT 6.3): /v1/partner/deals (partner key) and /v1/admin/deals.

A partner sees its own deals alone: another partner's deal answers 404 exactly
like one that does not exist. A deal another partner's approved deal already
protects is recorded as rejected (`deal_conflict`) and answered `409
deal_conflict` with its `deal_id`, naming nobody.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from chassis.auth import PartnerPrincipal
from chassis.bounds import BoundedDate
from chassis.errors import error_body
from services.registration.domain.deals import DEAL_CONFLICT, Deal, expiry_cutoff
from services.registration.entrypoints.deal_schemas import (
    DealExpiryOut,
    DealIn,
    DealList,
    DealOut,
    DealRejectIn,
    DealSubmitted,
)
from services.registration.entrypoints.dependencies import (
    AdminDep,
    Services,
    ServicesDep,
    require_partner_role,
)
from services.registration.service_layer.deals import DealService
from shared.events import DealStatus, format_timestamp

# Deals are sales work (CONTRACT 6.7): sales and admin keys; finance keys get 403.
SalesKey = Annotated[PartnerPrincipal, require_partner_role("sales")]

router = APIRouter()

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "`deal_conflict`: another partner's approved deal protects this customer"
        " and product; the deal is recorded as rejected (`error.deal_id`), naming nobody"
    }
}


def _deals(svc: Services) -> DealService:
    assert svc.deals is not None, "bootstrap wires the deal service"
    return svc.deals


def _page(found: list[Deal], limit: int) -> DealList:
    return DealList(
        deals=[DealOut.of(d) for d in found],
        next_after=found[-1].deal_id if len(found) == limit else None,
    )


@router.post(
    "/v1/partner/deals",
    status_code=201,
    response_model=DealSubmitted,
    responses=_CONFLICT,
    tags=["partner: deals"],
)
async def submit_deal(
    body: DealIn, caller: SalesKey, svc: ServicesDep
) -> DealSubmitted | JSONResponse:
    """Register a deal: `201 {"deal_id", "status": "submitted"}` for an operator to decide."""
    deal = await _deals(svc).submit(caller.partner_id, body.submission())
    if deal.status == "rejected" and deal.reason == DEAL_CONFLICT:
        return JSONResponse(
            error_body(
                DEAL_CONFLICT,
                "another partner's deal already protects this customer and product",
                deal_id=deal.deal_id,
            ),
            status_code=409,
        )
    return DealSubmitted(deal_id=deal.deal_id, status=deal.status)


@router.get("/v1/partner/deals", response_model=DealList, tags=["partner: deals"])
async def list_own_deals(
    caller: SalesKey,
    svc: ServicesDep,
    status: Annotated[DealStatus | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DealList:
    """The caller's deals by id (`?status=` filters)."""
    found = await _deals(svc).list(
        partner_id=caller.partner_id, status=status, after=after, limit=limit
    )
    return _page(found, limit)


@router.get("/v1/partner/deals/{deal_id}", response_model=DealOut, tags=["partner: deals"])
async def get_own_deal(deal_id: str, caller: SalesKey, svc: ServicesDep) -> DealOut:
    """One of the caller's deals, or `404 unknown_deal`."""
    return DealOut.of(await _deals(svc).for_partner(caller.partner_id, deal_id))


@router.get("/v1/admin/deals", response_model=DealList, tags=["admin: deals"])
async def list_deals(
    _: AdminDep,
    svc: ServicesDep,
    status: Annotated[DealStatus | None, Query()] = None,
    partner_id: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DealList:
    """All deals (`?status=submitted` is the approval queue)."""
    found = await _deals(svc).list(partner_id=partner_id, status=status, after=after, limit=limit)
    return _page(found, limit)


@router.post("/v1/admin/deals/expire", response_model=DealExpiryOut, tags=["admin: deals"])
async def expire_deals(
    _: AdminDep,
    svc: ServicesDep,
    as_of: Annotated[BoundedDate | None, Query(description="YYYY-MM-DD; default now")] = None,
) -> DealExpiryOut:
    """Approved, unwon deals whose protection ended by the end of `as_of` become `expired`.

    Idempotent; the API's scheduler runs the same pass as of now.
    """
    now = svc.clock()
    cutoff = expiry_cutoff(as_of) if as_of is not None else now
    summary = await _deals(svc).expire(cutoff)
    return DealExpiryOut(
        as_of=(as_of or now.date()).isoformat(),
        cutoff=format_timestamp(cutoff),
        expired=len(summary.expired),
        deal_ids=summary.expired,
    )


@router.get("/v1/admin/deals/{deal_id}", response_model=DealOut, tags=["admin: deals"])
async def get_deal(deal_id: str, _: AdminDep, svc: ServicesDep) -> DealOut:
    return DealOut.of(await _deals(svc).get(deal_id))


@router.post(
    "/v1/admin/deals/{deal_id}/approve",
    response_model=DealOut,
    responses=_CONFLICT,
    tags=["admin: deals"],
)
async def approve_deal(deal_id: str, _: AdminDep, svc: ServicesDep) -> DealOut:
    """Protect (partner, customer, product) for DEAL_PROTECTION_DAYS from now.

    `409 deal_not_pending` unless submitted; `409 deal_conflict` while another
    partner's approved deal protects the same customer and product.
    """
    return DealOut.of(await _deals(svc).approve(deal_id))


@router.post("/v1/admin/deals/{deal_id}/reject", response_model=DealOut, tags=["admin: deals"])
async def reject_deal(deal_id: str, body: DealRejectIn, _: AdminDep, svc: ServicesDep) -> DealOut:
    """Reject a submitted deal with a reason (told to the partner)."""
    return DealOut.of(await _deals(svc).reject(deal_id, body.reason))
