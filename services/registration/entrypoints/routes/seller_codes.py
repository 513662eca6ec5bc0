"""/v1/seller-codes/{code}: the public, rate-limited seller-code lookup."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.registration.entrypoints.dependencies import ServicesDep, rate_limited
from services.registration.entrypoints.schemas import SellerCodeOut

router = APIRouter(prefix="/v1/seller-codes", tags=["public"])


@router.get("/{code}", response_model=SellerCodeOut)
async def lookup_seller_code(code: str, request: Request, svc: ServicesDep) -> SellerCodeOut:
    """`200` with the display name; `422 invalid_seller_code`; `404 unknown_seller_code`."""
    rate_limited(svc.seller_code_limiter, request, svc, "seller-code lookups")
    canonical, partner = await svc.partners.lookup_seller_code(code[:64])
    return SellerCodeOut(seller_code=canonical, display_name=partner.display_name)
