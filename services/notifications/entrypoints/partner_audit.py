"""GET /v1/partner/audit on notifications: the partner's webhook changes (CONTRACT 6.7).

Each service serves the audit entries of the changes it makes (chassis.partner_audit):
registration's endpoint has key, renewal-mode and contact changes, this one the webhook.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from chassis.bounds import BoundedInstant
from chassis.partner_audit import AuditPage, page
from services.notifications.entrypoints.dependencies import Partner, Services

router = APIRouter(tags=["partner"])


@router.get("/v1/partner/audit", response_model=AuditPage)
async def audit(
    caller: Partner,
    s: Services,
    before: Annotated[BoundedInstant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Webhook changes, newest first: who (key id) and when; keys are on registration's."""
    return page(
        await s.partner_audit.for_partner(caller.partner_id, before=before, limit=limit), limit
    )
