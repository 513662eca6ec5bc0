"""GET /v1/partner/audit on notifications: the partner's webhook changes (CONTRACT 6.7).

Each service serves the audit entries of the changes it makes (chassis.partner_audit):
registration's endpoint has key, renewal-mode and contact changes, this one the webhook.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from chassis.bounds import BoundedInstant
from chassis.partner_audit import AuditPage, page
from chassis.partner_audit_store import MongoPartnerAudit
from services.notifications.entrypoints.routes import Partner

router = APIRouter(tags=["partner"])


@router.get("/v1/partner/audit", response_model=AuditPage)
async def audit(
    request: Request,
    caller: Partner,
    before: Annotated[BoundedInstant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Webhook changes, newest first: who (key id) and when; keys are on registration's."""
    log: MongoPartnerAudit = request.app.state.partner_audit
    return page(await log.for_partner(caller.partner_id, before=before, limit=limit), limit)
