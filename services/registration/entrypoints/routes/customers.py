"""/v1/customer/*: customer self-service (CONTRACT 6.2).

Sign-in by an e-mailed one-time link (public, always 202), sessions, and the
signed-in customer's own licences: their partner of record and the partners
with access. Another customer's licence answers 404 exactly as one that does
not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from chassis.errors import ApiError
from services.registration.domain.customers import email_key
from services.registration.entrypoints.customer_dependencies import (
    CustomerDep,
    CustomerSelfServiceDep,
)
from services.registration.entrypoints.customer_schemas import (
    AccessIn,
    CustomerEntitlementList,
    CustomerEntitlementOut,
    PartnerOfRecordIn,
    SessionIn,
    SessionOut,
    SignInIn,
    SignInOut,
    session_out,
)
from services.registration.entrypoints.dependencies import ServicesDep, client_address
from services.registration.entrypoints.validation import SellerCodeText
from services.registration.service_layer.rate_limit import TokenBucketLimiter

router = APIRouter(prefix="/v1/customer", tags=["customer"])


def _limited(limiter: TokenBucketLimiter, who: str) -> None:
    wait = limiter.acquire(who)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            "too many sign-in requests; slow down",
            headers={"Retry-After": limiter.retry_after_header(wait)},
        )


async def _client_rate(request: Request, own: CustomerSelfServiceDep, svc: ServicesDep) -> None:
    # Before the body is read: a client over its share learns nothing else.
    _limited(own.sign_in_limiter, client_address(request, svc))


@router.post(
    "/sign-in",
    status_code=202,
    response_model=SignInOut,
    dependencies=[Depends(_client_rate)],
)
async def sign_in(body: SignInIn, own: CustomerSelfServiceDep) -> SignInOut:
    """Mail a one-time sign-in link to a known address; `202` whether or not it is known.

    Rate-limited per client and per address (`429` with `Retry-After`).
    """
    _limited(own.address_limiter, email_key(body.email))
    await own.customers.request_sign_in(body.email)
    return SignInOut()


@router.post("/sessions", status_code=201, response_model=SessionOut)
async def start_session(
    body: SessionIn, own: CustomerSelfServiceDep, _: None = Depends(_client_rate)
) -> SessionOut:
    """Exchange a sign-in token for a session; `401` for a used, expired or unknown one."""
    issued = await own.customers.start_session(body.token)
    return session_out(issued.session_token, issued.expires_at)


@router.get("/entitlements", response_model=CustomerEntitlementList)
async def entitlements(caller: CustomerDep, own: CustomerSelfServiceDep) -> CustomerEntitlementList:
    """The signed-in customer's licences across all its resellers."""
    views = await own.customers.entitlements(caller.email_key)
    return CustomerEntitlementList(entitlements=[CustomerEntitlementOut.of(v) for v in views])


@router.put("/entitlements/{license_key}/partner-of-record", response_model=CustomerEntitlementOut)
async def set_partner_of_record(
    license_key: str, body: PartnerOfRecordIn, caller: CustomerDep, own: CustomerSelfServiceDep
) -> CustomerEntitlementOut:
    """Set a partner of record where none is set; `409 partner_of_record_set` otherwise."""
    view = await own.customers.set_partner_of_record(
        caller.email_key, license_key, body.seller_code
    )
    return CustomerEntitlementOut.of(view)


@router.delete(
    "/entitlements/{license_key}/partner-of-record", response_model=CustomerEntitlementOut
)
async def end_partner_of_record(
    license_key: str, caller: CustomerDep, own: CustomerSelfServiceDep
) -> CustomerEntitlementOut:
    """End the partner of record; later direct orders earn nobody until a new claim."""
    view = await own.customers.end_partner_of_record(caller.email_key, license_key)
    return CustomerEntitlementOut.of(view)


@router.put(
    "/entitlements/{license_key}/access/{seller_code}", response_model=CustomerEntitlementOut
)
async def grant_access(
    license_key: str,
    seller_code: SellerCodeText,
    body: AccessIn,
    caller: CustomerDep,
    own: CustomerSelfServiceDep,
) -> CustomerEntitlementOut:
    """Let a partner see (`view`) or also keep the contact of (`manage`) the licence."""
    view = await own.customers.grant_access(
        caller.email_key, license_key, seller_code, body.permission
    )
    return CustomerEntitlementOut.of(view)


@router.delete(
    "/entitlements/{license_key}/access/{seller_code}", response_model=CustomerEntitlementOut
)
async def revoke_access(
    license_key: str,
    seller_code: SellerCodeText,
    caller: CustomerDep,
    own: CustomerSelfServiceDep,
) -> CustomerEntitlementOut:
    """Take a partner's access away; `404 no_access` if it had none."""
    view = await own.customers.revoke_access(caller.email_key, license_key, seller_code)
    return CustomerEntitlementOut.of(view)
