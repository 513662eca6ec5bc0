"""FastAPI dependencies of customer self-service (CONTRACT 6.2): its services and the
customer a session token names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chassis.auth import CustomerSessionDeclared, bearer_token, is_admin_token
from chassis.errors import ApiError
from services.registration.domain.customers import CustomerSession
from services.registration.entrypoints.dependencies import ServicesDep
from services.registration.service_layer.customers import CustomerService
from services.registration.service_layer.rate_limit import TokenBucketLimiter


@dataclass
class CustomerSelfService:
    """What the customer routes need, built once per app in bootstrap."""

    customers: CustomerService
    sign_in_limiter: TokenBucketLimiter
    address_limiter: TokenBucketLimiter


async def customer_self_service(request: Request) -> CustomerSelfService:
    found: CustomerSelfService = request.app.state.customer_self_service
    return found


CustomerSelfServiceDep = Annotated[CustomerSelfService, Depends(customer_self_service)]


async def customer(
    request: Request,
    own: CustomerSelfServiceDep,
    svc: ServicesDep,
    _: CustomerSessionDeclared,
) -> CustomerSession:
    """The signed-in customer; 401 without a live session, 403 for another kind of token."""
    token = bearer_token(request)
    session = await own.customers.authenticate(token)
    if session is not None:
        return session
    if is_admin_token(token, svc.admin_token) or await svc.resolve_partner(token) is not None:
        raise ApiError(403, "forbidden", "this route needs a customer session")
    raise ApiError(
        401,
        "unauthorized",
        "unknown or expired customer session",
        headers={"WWW-Authenticate": "Bearer"},
    )


CustomerDep = Annotated[CustomerSession, Depends(customer)]
