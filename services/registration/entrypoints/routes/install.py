"""The registration API's routers, one per resource, and the mapping of use-case errors
to the contract's error shape: what `bootstrap.build_api` installs on its app."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chassis.errors import error_body
from services.registration.entrypoints.routes import (
    admin_entitlements,
    admin_partners,
    checkout,
    customers,
    deals,
    internal,
    partner_keys,
    partner_portal,
    registrations,
    seller_codes,
    tiers,
)
from services.registration.service_layer.errors import UseCaseError

STATUS = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "unavailable": 503,
}


def install(app: FastAPI) -> None:
    for module in (
        admin_partners,
        seller_codes,
        registrations,
        partner_portal,
        partner_keys,
        admin_entitlements,
        checkout,
        internal,
        deals,
        customers,
    ):
        app.include_router(module.router)
    app.include_router(tiers.admin)
    app.include_router(tiers.partner)

    @app.exception_handler(UseCaseError)
    async def _use_case_error(_: Request, exc: UseCaseError) -> JSONResponse:
        extra = {"field": exc.field} if exc.field else {}
        headers: dict[str, str] = {}
        if exc.kind == "unauthorized":
            headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse(
            error_body(exc.code, exc.message, **extra),
            status_code=STATUS[exc.kind],
            headers=headers or None,
        )
