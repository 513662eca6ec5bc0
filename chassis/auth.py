"""Bearer-token authentication: the operator token for /v1/admin/*.

Partner API keys are resolved by a service-supplied callable; the chassis only
knows that a token is the admin's, a partner's, or nobody's.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chassis.errors import ApiError

# The OpenAPI security schemes: which bearer token a route takes. auto_error=False, so
# they only describe: the checks below keep answering with the contract's error shape
# (401 + WWW-Authenticate, 403 for the other kind of token), never FastAPI's own.
ADMIN_TOKEN_SCHEME = HTTPBearer(
    scheme_name="adminToken",
    description="The operator token (ADMIN_TOKEN): /v1/admin/* and /v1/internal/*.",
    auto_error=False,
)
PARTNER_KEY_SCHEME = HTTPBearer(
    scheme_name="partnerKey",
    description="A partner's API key, issued by registration (POST /v1/admin/partners):"
    " /v1/partner/*, that partner's own data only.",
    auto_error=False,
)
REGISTRATION_TOKEN_SCHEME = HTTPBearer(
    scheme_name="registrationToken",
    description="The customer's registration_token, returned once by POST"
    " /v1/registrations (the customer's session); also accepted in the request body.",
    auto_error=False,
)
CUSTOMER_SESSION_SCHEME = HTTPBearer(
    scheme_name="customerSession",
    description="A customer's session_token from POST /v1/customer/sessions, which takes"
    " the one-time token of an e-mailed sign-in link: /v1/customer/*, that customer's"
    " own licences only (CONTRACT 6.2).",
)
CHECKOUT_TOKEN_SCHEME = HTTPBearer(
    scheme_name="checkoutToken",
    description="The checkout system's service token (CHECKOUT_TOKEN): /v1/checkout/*;"
    " neither the operator token nor a partner key.",
    auto_error=False,
)
# Declared by a dependency to put the scheme on its routes; the value is not used.
AdminTokenDeclared = Annotated[HTTPAuthorizationCredentials | None, Security(ADMIN_TOKEN_SCHEME)]
PartnerKeyDeclared = Annotated[HTTPAuthorizationCredentials | None, Security(PARTNER_KEY_SCHEME)]
RegistrationTokenDeclared = Annotated[
    HTTPAuthorizationCredentials | None, Security(REGISTRATION_TOKEN_SCHEME)
]
CustomerSessionDeclared = Annotated[
    HTTPAuthorizationCredentials | None, Security(CUSTOMER_SESSION_SCHEME)
]
CheckoutTokenDeclared = Annotated[
    HTTPAuthorizationCredentials | None, Security(CHECKOUT_TOKEN_SCHEME)
]


@dataclass(frozen=True)
class PartnerPrincipal:
    """A partner's API key: whose, which one, and its role (CONTRACT 6.7).

    A key from before roles (or an introspection answer without one) is the key
    made at partner creation, which is `admin`.
    """

    partner_id: str
    role: str = "admin"
    key_id: str | None = None


PartnerKeyResolver = Callable[[str], Awaitable[PartnerPrincipal | None]]


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def declared_roles(route: Any) -> frozenset[str] | None:
    """The roles a route admits by declaration, or None if it declares none."""
    if not isinstance(route, APIRoute):
        return None
    cached = route.__dict__.get("_partner_roles", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    found: frozenset[str] | None = None
    for call in _calls(route.dependant):
        roles = getattr(call, "partner_roles", None)
        if roles is not None:
            found = roles if found is None else found & roles
    route.__dict__["_partner_roles"] = found
    return found


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def is_admin_token(token: str, admin_token: str) -> bool:
    return hmac.compare_digest(token.encode(), admin_token.encode())


async def require_admin(
    request: Request, admin_token: str, resolve_partner: PartnerKeyResolver | None
) -> None:
    token = bearer_token(request)
    if is_admin_token(token, admin_token):
        return
    if resolve_partner is not None and await resolve_partner(token) is not None:
        raise ApiError(403, "forbidden", "this route needs the operator token")
    raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})


async def require_partner(
    request: Request, admin_token: str, resolve_partner: PartnerKeyResolver
) -> PartnerPrincipal:
    token = bearer_token(request)
    principal = await resolve_partner(token)
    if principal is not None:
        if principal.role != "admin" and declared_roles(request.scope.get("route")) is None:
            # Fail closed: a partner route that forgot its role declaration
            # (chassis.partner_roles) admits admin keys only.
            raise ApiError(403, "role_forbidden", "this route needs an admin key")
        return principal
    if is_admin_token(token, admin_token):
        raise ApiError(403, "forbidden", "this route needs a partner API key")
    raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})


async def require_service_token(
    request: Request,
    service_token: str,
    admin_token: str,
    resolve_partner: PartnerKeyResolver,
) -> None:
    """A route for one service's own token: the operator token or a partner key is `403`.

    Decided before the route reads anything, so the answer is the same for any
    resource, known or not. An empty `service_token` (not configured) lets nobody in.
    """
    token = bearer_token(request)
    if service_token and is_admin_token(token, service_token):
        return
    if is_admin_token(token, admin_token) or await resolve_partner(token) is not None:
        raise ApiError(403, "forbidden", "this route needs the checkout service token")
    raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})
