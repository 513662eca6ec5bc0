"""Partner key roles (CONTRACT 6.7): what each partner route admits, declared on the route.

A partner has several API keys, each `admin`, `sales` or `finance`. Every
`/v1/partner/*` route declares the roles it admits in one line, as a dependency:

    caller: Annotated[PartnerPrincipal, require_partner_role("sales")]

`admin` is always admitted (it may do everything), so `require_partner_role("sales")`
admits sales and admin keys, `require_partner_role("admin")` admin keys alone, and
`require_partner_role("sales", "finance")` every key. The declaration is published
in the route's OpenAPI `security` as the roles of the partnerKey scheme
(`[{"partnerKey": ["admin", "sales"]}]`, as OpenAPI 3.1 provides for role names);
tests/unit/test_openapi_documents.py and the role matrix of
tests/reliability/test_security.py read it there and fail for a partner route
without one. At run time an undeclared route admits admin keys only
(`chassis.auth.require_partner`): forgetting the line never widens access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

from fastapi import Depends, Security

from chassis.auth import PartnerPrincipal
from chassis.errors import ApiError

PartnerRole = Literal["admin", "sales", "finance"]
ROLES: tuple[PartnerRole, ...] = get_args(PartnerRole)

PrincipalDependency = Callable[..., Awaitable[PartnerPrincipal]]


def role_requirement(principal: PrincipalDependency) -> Callable[..., Any]:
    """`require_partner_role` of a service, over its dependency resolving the caller's key."""

    def require_partner_role(*roles: PartnerRole) -> Any:
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"unknown partner role {role!r}")
        allowed = frozenset(("admin", *roles))
        needed = " or ".join(r for r in ROLES if r in allowed)

        # A default, not Annotated: the annotation is a string (postponed evaluation)
        # that FastAPI resolves in this module's globals, where `principal` is not.
        async def check_role(caller: PartnerPrincipal = Depends(principal)) -> PartnerPrincipal:  # noqa: B008
            if caller.role not in allowed:
                raise ApiError(403, "role_forbidden", f"this route needs a {needed} key")
            return caller

        check_role.partner_roles = allowed  # type: ignore[attr-defined]
        # Security scopes reach the partnerKey scheme below: the route's OpenAPI
        # `security` names the roles, as OpenAPI 3.1 provides for non-OAuth schemes.
        return Security(check_role, scopes=[r for r in ROLES if r in allowed])

    return require_partner_role
