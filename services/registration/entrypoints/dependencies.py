"""FastAPI dependencies: the service container, the clock, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chassis.auth import (
    AdminTokenDeclared,
    CheckoutTokenDeclared,
    PartnerKeyDeclared,
    PartnerPrincipal,
    require_admin,
    require_partner,
    require_service_token,
)
from services.registration.service_layer.entitlements import EntitlementService
from services.registration.service_layer.partners import PartnerService
from services.registration.service_layer.rate_limit import TokenBucketLimiter
from services.registration.service_layer.registrations import RegistrationService
from services.registration.service_layer.unit_of_work import Clock


@dataclass
class Services:
    """What the routes need, built once per app in bootstrap."""

    partners: PartnerService
    registrations: RegistrationService
    entitlements: EntitlementService
    seller_code_limiter: TokenBucketLimiter
    clock: Clock
    admin_token: str
    checkout_token: str = ""

    async def resolve_partner(self, api_key: str) -> PartnerPrincipal | None:
        partner_id = await self.partners.resolve_api_key(api_key)
        return PartnerPrincipal(partner_id) if partner_id is not None else None


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # hop per request for a dictionary lookup.
    found: Services = request.app.state.registration
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def admin(request: Request, svc: ServicesDep, _: AdminTokenDeclared) -> None:
    await require_admin(request, svc.admin_token, svc.resolve_partner)


async def partner(request: Request, svc: ServicesDep, _: PartnerKeyDeclared) -> PartnerPrincipal:
    return await require_partner(request, svc.admin_token, svc.resolve_partner)


async def checkout(request: Request, svc: ServicesDep, _: CheckoutTokenDeclared) -> None:
    await require_service_token(request, svc.checkout_token, svc.admin_token, svc.resolve_partner)


AdminDep = Annotated[None, Depends(admin)]
CheckoutDep = Annotated[None, Depends(checkout)]
PartnerDep = Annotated[PartnerPrincipal, Depends(partner)]


def client_address(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers so this is the caller's address.
    return request.client.host if request.client is not None else "unknown"
