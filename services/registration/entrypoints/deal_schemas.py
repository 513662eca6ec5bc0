"""Request and response bodies of deal registration (CONTRACT 6.3), and their mapping."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from chassis.bounds import AmountMinor, BoundedDate
from services.registration.domain.deals import Deal, DealCustomer
from services.registration.entrypoints.schemas import Strict
from services.registration.entrypoints.validation import Country, Email, Identifier, Name, Reason
from services.registration.service_layer.deals import DealSubmission
from shared.events import DealStatus, format_timestamp
from shared.money import is_currency


def _currency(code: str) -> str:
    if not is_currency(code):
        raise PydanticCustomError(
            "currency", "{code} is not an ISO 4217 currency code", {"code": code}
        )
    return code


CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    Field(description="ISO 4217, upper case", examples=["EUR"]),
]
Product = Annotated[
    str,
    StringConstraints(pattern=r"^[\x21-\x7e]{1,100}$"),
    Field(description="a product the vendor sells", examples=["secure-pro"]),
]


class DealCustomerIn(Strict):
    customer_id: Identifier | None = Field(
        None, description="the vendor's customer id, if known; else the e-mail identifies"
    )
    org_name: Name
    email: Email
    country: Country


class DealIn(Strict):
    customer: DealCustomerIn
    product: Product
    expected_close: BoundedDate = Field(description="YYYY-MM-DD, today or later")
    estimated_amount_minor: AmountMinor
    currency: CurrencyCode

    def submission(self) -> DealSubmission:
        c = self.customer
        return DealSubmission(
            customer=DealCustomer(c.customer_id, c.org_name, str(c.email), c.country),
            product=self.product,
            expected_close=self.expected_close,
            estimated_amount_minor=self.estimated_amount_minor,
            currency=self.currency,
        )


class DealRejectIn(Strict):
    reason: Reason


class DealSubmitted(BaseModel):
    deal_id: str
    status: DealStatus


class DealCustomerOut(BaseModel):
    customer_id: str | None
    org_name: str
    email: str
    country: str


class DealOut(BaseModel):
    deal_id: str
    partner_id: str
    customer: DealCustomerOut
    product: str
    expected_close: str
    estimated_amount_minor: int
    currency: str
    status: DealStatus
    submitted_at: str
    approved_at: str | None
    protected_until: str | None
    decided_at: str | None
    reason: str | None
    order_id: str | None

    @classmethod
    def of(cls, d: Deal) -> DealOut:
        def ts(value: object) -> str | None:
            return format_timestamp(value) if value is not None else None  # type: ignore[arg-type]

        c = d.customer
        return cls(
            deal_id=d.deal_id,
            partner_id=d.partner_id,
            customer=DealCustomerOut(
                customer_id=c.customer_id, org_name=c.org_name, email=c.email, country=c.country
            ),
            product=d.product,
            expected_close=d.expected_close.isoformat(),
            estimated_amount_minor=d.estimated_amount_minor,
            currency=d.currency,
            status=d.status,
            submitted_at=format_timestamp(d.submitted_at),
            approved_at=ts(d.approved_at),
            protected_until=ts(d.protected_until),
            decided_at=ts(d.decided_at),
            reason=d.reason,
            order_id=d.order_id,
        )


class DealList(BaseModel):
    deals: list[DealOut]
    next_after: str | None


class DealExpiryOut(BaseModel):
    as_of: str
    cutoff: str
    expired: int
    deal_ids: list[str]
