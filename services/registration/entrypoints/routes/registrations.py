"""/v1/registrations: a customer registers a licence (public), and adds a seller code later."""

from __future__ import annotations

from fastapi import APIRouter, Request

from chassis.auth import RegistrationTokenDeclared
from chassis.errors import ApiError
from services.registration.entrypoints.dependencies import RegistrationRateDep, ServicesDep
from services.registration.entrypoints.schemas import (
    ContactConfirmationIn,
    ContactConfirmationOut,
    CustomerIn,
    LateSellerCodeIn,
    RegistrationIn,
    RegistrationOut,
    registration_out,
)
from services.registration.service_layer.registrations import CustomerDetails

router = APIRouter(prefix="/v1/registrations", tags=["public"])


def customer_details(customer: CustomerIn) -> CustomerDetails:
    return CustomerDetails(
        org_name=customer.org_name,
        contact_name=customer.contact_name,
        email=customer.email,
        country=customer.country,
        customer_id=customer.customer_id,
    )


@router.post("", status_code=201, response_model=RegistrationOut)
async def register(
    body: RegistrationIn, svc: ServicesDep, _: RegistrationRateDep
) -> RegistrationOut:
    """Register `license_key`; the `registration_token` in the answer is shown this once.

    Rate-limited per client like the seller-code lookup (`429` with `Retry-After`).
    """
    outcome = await svc.registrations.register_customer(
        body.license_key, customer_details(body.customer), body.seller_code
    )
    return registration_out(
        body.license_key,
        outcome.partner_of_record,
        token=outcome.registration_token,
        outcome=outcome.decision.outcome.value if outcome.decision else None,
        contact_pending=outcome.contact_pending,
    )


@router.post("/contact-confirmations", response_model=ContactConfirmationOut)
async def confirm_contact(
    body: ContactConfirmationIn, svc: ServicesDep, _: RegistrationRateDep
) -> ContactConfirmationOut:
    """The contact in place confirms the contact a registration asked for (CONTRACT 6.9).

    `404 unknown_confirmation_token` for a token that is unknown, used or expired.
    """
    entitlement = await svc.registrations.confirm_contact(body.token)
    return ContactConfirmationOut(license_key=entitlement.license_key)


@router.post("/{license_key}/seller-code", response_model=RegistrationOut)
async def add_seller_code(
    license_key: str,
    body: LateSellerCodeIn,
    request: Request,
    svc: ServicesDep,
    _bearer: RegistrationTokenDeclared,
) -> RegistrationOut:
    """Add a seller code within LATE_SELLER_CODE_DAYS of registering, if none was given."""
    token = body.registration_token
    if token is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token:
        raise ApiError(
            401,
            "invalid_registration_token",
            "registration_token is required",
            field="registration_token",
        )
    outcome = await svc.registrations.add_seller_code(license_key, token, body.seller_code)
    return registration_out(
        license_key,
        outcome.partner_of_record,
        outcome=outcome.decision.outcome.value if outcome.decision else None,
    )
