"""What the notifications routes need, typed: one container built once per app by
bootstrap (`build_api`), and the authentication dependencies over it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chassis.auth import (
    AdminTokenDeclared,
    PartnerKeyDeclared,
    PartnerKeyResolver,
    PartnerPrincipal,
    require_admin,
    require_partner,
)
from chassis.errors import ApiError
from chassis.partner_audit import AuditLog
from chassis.partner_roles import role_requirement
from services.notifications.service_layer.ports import (
    Clock,
    DeliveryLog,
    HostResolver,
    Preferences,
    SecretBox,
    Webhooks,
    WebhookSender,
)
from services.notifications.service_layer.reminders import ReminderPass


@dataclass
class ApiServices:
    """What the routers need, built once per app by bootstrap."""

    deliveries: DeliveryLog
    webhooks: Webhooks
    preferences: Preferences
    reminders: ReminderPass
    webhook_sender: WebhookSender
    """One per process, closed at shutdown; it sends the test event."""
    resolve_host: HostResolver
    new_signing_secret: Callable[[], str]
    secret_box: SecretBox
    partner_audit: AuditLog
    resolve_partner: PartnerKeyResolver
    admin_token: str
    unsubscribe_secret: bytes
    webhook_allow_loopback: bool
    clock: Clock


def services(request: Request) -> ApiServices:
    found: ApiServices | None = getattr(request.app.state, "notifications", None)
    if found is None:
        raise ApiError(503, "starting", "the service is starting")
    return found


Services = Annotated[ApiServices, Depends(services)]


async def admin(request: Request, svc: Services, _: AdminTokenDeclared) -> None:
    await require_admin(request, svc.admin_token, svc.resolve_partner)


async def partner(request: Request, svc: Services, _: PartnerKeyDeclared) -> PartnerPrincipal:
    return await require_partner(request, svc.admin_token, svc.resolve_partner)


Admin = Annotated[None, Depends(admin)]
require_partner_role = role_requirement(partner)
"""CONTRACT 6.7: `caller: Annotated[PartnerPrincipal, require_partner_role("admin")]`."""

# Webhook settings and the delivery log are the partner's integration: admin keys only.
Partner = Annotated[PartnerPrincipal, require_partner_role("admin")]
