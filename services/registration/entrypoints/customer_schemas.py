"""Request and response bodies of customer self-service (CONTRACT 6.2)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from services.registration.entrypoints.schemas import EntitlementOut, Strict
from services.registration.entrypoints.validation import Email, Name, SellerCodeText
from services.registration.service_layer.customers import (
    CustomerEntitlementView,
    PartnerEntitlement,
    PartnerRef,
)
from shared.events import format_timestamp


class SignInIn(Strict):
    email: Email


class SignInOut(BaseModel):
    accepted: bool = True
    message: str = "If this address holds licences, a sign-in link is on its way."


class SessionIn(Strict):
    token: str = Field(
        min_length=1, max_length=200, description="the one-time token of the e-mailed link"
    )


class SessionOut(BaseModel):
    session_token: str = Field(description="Authorization: Bearer for /v1/customer/*")
    expires_at: str


class PartnerOfRecordIn(Strict):
    seller_code: SellerCodeText


class AccessIn(Strict):
    permission: Literal["view", "manage"]


class PartnerRefOut(BaseModel):
    display_name: str
    seller_code: str

    @classmethod
    def of(cls, ref: PartnerRef | None) -> PartnerRefOut | None:
        return cls(display_name=ref.display_name, seller_code=ref.seller_code) if ref else None


class AccessOut(BaseModel):
    display_name: str
    seller_code: str
    permission: Literal["view", "manage"]


class CustomerEntitlementOut(BaseModel):
    license_key: str
    product: str
    sku: str
    term_start: dt.date
    term_end: dt.date
    partner_of_record: PartnerRefOut | None
    partners_with_access: list[AccessOut]

    @classmethod
    def of(cls, view: CustomerEntitlementView) -> CustomerEntitlementOut:
        e = view.entitlement
        return cls(
            license_key=e.license_key,
            product=e.product,
            sku=e.sku,
            term_start=e.term_start,
            term_end=e.term_end,
            partner_of_record=PartnerRefOut.of(view.partner_of_record),
            partners_with_access=[
                AccessOut(
                    display_name=a.partner.display_name,
                    seller_code=a.partner.seller_code,
                    permission=a.permission,
                )
                for a in view.partners_with_access
            ],
        )


class CustomerEntitlementList(BaseModel):
    entitlements: list[CustomerEntitlementOut]


class ContactIn(Strict):
    contact_name: Name
    email: Email


def partner_entitlement_out(found: PartnerEntitlement) -> EntitlementOut:
    """A partner's view: a partner with access learns nothing of the PoR (CONTRACT 6.2)."""
    out = EntitlementOut.of(found.entitlement)
    if found.relationship == "access":
        return out.model_copy(
            update={
                "partner_of_record": None,
                "relationship": "access",
                "permission": found.permission,
            }
        )
    return out


def session_out(token: str, expires_at: dt.datetime) -> SessionOut:
    return SessionOut(session_token=token, expires_at=format_timestamp(expires_at))
