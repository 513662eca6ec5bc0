"""FastAPI dependencies: the service container, the clock, and who is calling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
from chassis.clients import Network, request_client
from chassis.errors import ApiError
from chassis.partner_roles import role_requirement
from services.registration.service_layer.deals import DealService
from services.registration.service_layer.entitlements import EntitlementService
from services.registration.service_layer.partner_keys import PartnerKeyService
from services.registration.service_layer.partners import PartnerService
from services.registration.service_layer.rate_limit import TokenBucketLimiter
from services.registration.service_layer.registrations import RegistrationService
from services.registration.service_layer.tiers import TierService
from services.registration.service_layer.unit_of_work import Clock


@dataclass
class Services:
    """What the routes need, built once per app in bootstrap."""

    partners: PartnerService
    registrations: RegistrationService
    entitlements: EntitlementService
    keys: PartnerKeyService
    seller_code_limiter: TokenBucketLimiter
    registration_limiter: TokenBucketLimiter
    clock: Clock
    admin_token: str
    trusted_proxies: Sequence[Network] = field(default_factory=tuple)
    deals: DealService | None = None
    tiers: TierService | None = None
    checkout_token: str = ""

    async def resolve_partner(self, api_key: str) -> PartnerPrincipal | None:
        key = await self.keys.resolve(api_key)
        if key is None:
            return None
        return PartnerPrincipal(key.partner_id, role=key.role, key_id=key.key_id)


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


async def registration_rate(request: Request, svc: ServicesDep) -> None:
    # A dependency, so a client over its share is refused before its body is validated.
    rate_limited(svc.registration_limiter, request, svc, "registrations")


async def checkout(request: Request, svc: ServicesDep, _: CheckoutTokenDeclared) -> None:
    await require_service_token(request, svc.checkout_token, svc.admin_token, svc.resolve_partner)


AdminDep = Annotated[None, Depends(admin)]
CheckoutDep = Annotated[None, Depends(checkout)]
RegistrationRateDep = Annotated[None, Depends(registration_rate)]
PartnerDep = Annotated[PartnerPrincipal, Depends(partner)]
"""Any valid key of the partner: a route using it alone admits admin keys only."""

require_partner_role = role_requirement(partner)
"""CONTRACT 6.7: `caller: Annotated[PartnerPrincipal, require_partner_role("sales")]`."""


def client_address(request: Request, svc: Services) -> str:
    """The peer, or what a proxy in TRUSTED_PROXIES says it is (CONTRACT 6.9)."""
    return request_client(request, svc.trusted_proxies)


def rate_limited(limiter: TokenBucketLimiter, request: Request, svc: Services, what: str) -> None:
    """429 with Retry-After when the calling client has used its share of `limiter`."""
    wait = limiter.acquire(client_address(request, svc))
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many {what}; slow down",
            headers={"Retry-After": limiter.retry_after_header(wait)},
        )
