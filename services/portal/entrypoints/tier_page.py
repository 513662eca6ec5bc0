"""The Tier page (CONTRACT 6.4): the partner's tier, the tier it qualifies for, and what the
next one needs, from registration's `GET /v1/partner/tier`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.entrypoints.web import PortalDep, SessionDep, render

router = APIRouter(include_in_schema=False)

TIER_NAMES = {"bronze": "Bronze", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"}


@router.get("/tier")
async def tier(request: Request, p: PortalDep, session: SessionDep) -> Response:
    standing = await p.api_for(session).tier()
    return render(request, "tier.html", session, standing=standing, tier_names=TIER_NAMES)
