"""The data models of every event the suite produces or consumes (CONTRACT 1.3).

One pydantic model per event type, plus the value types they share. Every
model ignores unknown fields (a newer producer may add some) but validates
the ones it knows: money is an exact int of minor units, currencies are ISO
4217, dates are YYYY-MM-DD and timestamps are timezone-aware UTC instants.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared import seller_code
from shared.money import MINOR_DIGITS

__all__ = [
    "DEFAULT_RENEWAL_MODE",
    "EVENT_MODELS",
    "AdvisoryPublished",
    "AppliedOrder",
    "AttributionSource",
    "Audience",
    "Branding",
    "Channel",
    "CommissionAccrued",
    "CommissionClawedBack",
    "CommissionLine",
    "CommissionPaid",
    "CommissionPayable",
    "CommissionRole",
    "CommissionStatus",
    "ContractModel",
    "Customer",
    "DeliveryFailed",
    "DeliveryOutcome",
    "DeliverySent",
    "DeliverySuppressed",
    "EntitlementAttributionChanged",
    "EntitlementOrderApplied",
    "EntitlementRegistered",
    "EntitlementState",
    "EntitlementUpdated",
    "EventData",
    "LineKind",
    "NotificationType",
    "OrderLine",
    "OrderPlaced",
    "ParentPartner",
    "PartnerAtOrder",
    "PartnerCreated",
    "PartnerOfRecord",
    "PartnerState",
    "PartnerStatus",
    "PartnerTier",
    "PartnerType",
    "PartnerUpdated",
    "RefundIssued",
    "RenewalMode",
    "SalesChannel",
    "Severity",
    "Storefront",
    "format_timestamp",
]

# --- enumerations (CONTRACT 1.3, 2.1, 3, 4) ---------------------------------

SalesChannel = Literal["direct", "partner"]
Storefront = Literal["web", "retail", "phone", "marketplace"]
LineKind = Literal["new", "renewal", "upgrade"]
Severity = Literal["low", "medium", "high", "critical"]
PartnerType = Literal["var", "si", "msp", "distributor", "isv"]
PartnerTier = Literal["platinum", "gold", "silver", "bronze"]
PartnerStatus = Literal["active", "suspended", "terminated"]
# CONTRACT 6.1: whom the vendor steers a renewing customer to.
RenewalMode = Literal["partner_first", "partner_only", "vendor_direct"]
DEFAULT_RENEWAL_MODE: Final[RenewalMode] = "partner_first"
CommissionRole = Literal["partner_of_record", "distributor_override"]
CommissionStatus = Literal["accrued", "payable", "paid"]
Channel = Literal["email", "webhook"]
Audience = Literal["customer", "partner"]
NotificationType = Literal[
    "welcome",
    "renewal_reminder",
    "renewal_opportunity",
    "security_advisory",
    "advisory_partner_digest",
    "commission_earned",
    "commission_reversed",
    "attribution_changed",
]
AttributionSource = Literal[
    "partner_sale",
    "partner_registration",
    "customer_registration",
    "checkout_seller_code",
    "operator",
]
"""How a partner of record was set, strongest first (CONTRACT 2.1):

- `partner_sale`: a `sales_channel = partner` order carrying `partner_code`;
- `partner_registration`: the partner registered the licence (POST /v1/partner/registrations);
- `customer_registration`: a seller code given at or after a customer registration;
- `checkout_seller_code`: a seller code typed at a direct checkout (`order.placed.seller_code`);
- `operator`: an operator reassigned it (PUT .../partner-of-record).
"""

# --- value types --------------------------------------------------------------

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_input(value: Any) -> Any:
    # pydantic's lax date would take unix timestamps and "...T00:00:00";
    # the contract says YYYY-MM-DD and nothing else.
    if isinstance(value, dt.datetime):
        raise PydanticCustomError("date_type", "Input should be a date, not a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        return value
    raise PydanticCustomError("date_format", "Input should be a date in the format YYYY-MM-DD")


def _timestamp_input(value: Any) -> Any:
    # Lax datetimes accept numbers as unix time; the contract says RFC 3339 text.
    if isinstance(value, dt.datetime | str):
        return value
    raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 timestamp string")


def _to_utc_millis(value: dt.datetime) -> dt.datetime:
    # The wire carries at most milliseconds; truncating on the way in keeps the
    # model equal to what it serialises to, so a replay compares equal.
    utc = value.astimezone(dt.UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def format_timestamp(value: dt.datetime) -> str:
    """RFC 3339 UTC with `Z`; milliseconds only when they are non-zero."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes have no instant; attach a timezone")
    utc = value.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _is_currency(code: str) -> str:
    if code not in MINOR_DIGITS:
        raise PydanticCustomError(
            "currency", "{code} is not an ISO 4217 currency code", {"code": code}
        )
    return code


def _is_seller_code(code: str) -> str:
    try:
        return seller_code.validate(code)
    except seller_code.InvalidSellerCode as exc:
        raise PydanticCustomError("seller_code", "{reason}", {"reason": str(exc)}) from None


Date = Annotated[dt.date, BeforeValidator(_date_input)]
"""A calendar date, `YYYY-MM-DD` on the wire."""

Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_input),
    AfterValidator(_to_utc_millis),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""An instant: aware datetime, normalised to UTC, at most millisecond precision."""

Text = Annotated[str, StringConstraints(min_length=1)]
"""A required, non-empty string (ids, names)."""

Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_is_currency),
    Field(description="ISO 4217 alphabetic code, upper case (see shared.money.MINOR_DIGITS)"),
]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(description="ISO 3166-1 alpha-2 code, upper case"),
]
Email = Annotated[
    str,
    # Deliberately loose: a strict RFC 5322 check here would dead-letter a
    # real sale over an address the mail server may well accept.
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320),
]
SellerCode = Annotated[
    str,
    AfterValidator(_is_seller_code),
    Field(description="seller code, XXXX-XXXX Crockford base32 with a check symbol"),
]
MinorAmount = Annotated[StrictInt, Field(description="integer minor units, never a float")]
NonNegativeMinor = Annotated[
    StrictInt, Field(ge=0, description="integer minor units, >= 0, never a float")
]
PositiveMinor = Annotated[
    StrictInt, Field(gt=0, description="integer minor units, > 0, never a float")
]


def _check_term_end(term_end: dt.date, info: ValidationInfo) -> dt.date:
    # A field validator (not a model one) so the error names data...term_end.
    term_start = info.data.get("term_start")
    if term_start is not None and term_end < term_start:
        raise PydanticCustomError("term_order", "term_end must not be before term_start")
    return term_end


class ContractModel(BaseModel):
    """Base of everything on the wire: unknown fields ignored, values immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class EventData(ContractModel):
    """Base of the `data` of an envelope; one subclass per event type."""


# --- checkout.orders.v1 ---------------------------------------------------------


class Customer(ContractModel):
    customer_id: Text
    org_name: Text
    contact_name: str
    email: Email
    country: CountryCode


class OrderLine(ContractModel):
    line_id: Text
    kind: LineKind
    license_key: Text
    sku: Text
    product: Text
    quantity: Annotated[StrictInt, Field(ge=1)]
    term_start: Date
    term_end: Date
    net_amount_minor: NonNegativeMinor = Field(description="net of tax, >= 0")

    @field_validator("term_end")
    @classmethod
    def _term_end_not_before_start(cls, term_end: dt.date, info: ValidationInfo) -> dt.date:
        return _check_term_end(term_end, info)


class OrderPlaced(EventData):
    """`order.placed`: one checkout order (system of record: checkout)."""

    order_id: Text
    sales_channel: SalesChannel
    storefront: Storefront
    # validate_default so the "required for partner sales" rule also fires
    # when the field is absent, with the error located at the field itself.
    partner_code: str | None = Field(
        default=None,
        validate_default=True,
        description="the selling reseller's seller code; required when sales_channel=partner",
    )
    seller_code: str | None = Field(
        default=None,
        description=(
            "code the customer typed at a direct checkout, as typed; its check symbol"
            " is judged by registration, so a typo never blocks the order"
        ),
    )
    currency: Currency
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1)

    @field_validator("partner_code")
    @classmethod
    def _partner_code_for_partner_sales(
        cls, partner_code: str | None, info: ValidationInfo
    ) -> str | None:
        if info.data.get("sales_channel") == "partner" and not (partner_code or "").strip():
            raise PydanticCustomError(
                "partner_code_required", "partner_code is required when sales_channel is partner"
            )
        return partner_code

    @field_validator("lines")
    @classmethod
    def _line_ids_unique(cls, lines: list[OrderLine]) -> list[OrderLine]:
        seen: set[str] = set()
        for line in lines:
            if line.line_id in seen:
                raise PydanticCustomError(
                    "duplicate_line_id",
                    "line_id {line_id} appears more than once",
                    {"line_id": line.line_id},
                )
            seen.add(line.line_id)
        return lines


# --- checkout.refunds.v1 ----------------------------------------------------------


class RefundIssued(EventData):
    """`refund.issued`: a (partial) refund of one order line."""

    refund_id: Text
    order_id: Text
    line_id: Text
    amount_minor: PositiveMinor
    currency: Currency
    reason: str


# --- vendor.advisories.v1 -----------------------------------------------------------


class AdvisoryPublished(EventData):
    """`advisory.published`: a security advisory from the vendor."""

    advisory_id: Text
    severity: Severity
    title: Text
    summary: str
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    products: list[Text] = Field(min_length=1)


# --- registration.partners.v1 -----------------------------------------------------


class Branding(ContractModel):
    logo_url: str | None = None
    color: str | None = None
    phone: str | None = None
    website: str | None = None


class PartnerState(EventData):
    """A partner as it now stands (CONTRACT 2.1), never its secrets (API key)."""

    partner_id: Text
    display_name: Text
    legal_name: Text
    type: PartnerType
    tier: PartnerTier
    status: PartnerStatus
    parent_partner_id: str | None = None
    contact_email: Email
    branding: Branding = Field(default_factory=Branding)
    co_brand_customer_messages: StrictBool
    customer_ids: list[Text] = Field(default_factory=list)
    seller_code: SellerCode
    # Additive (CONTRACT 6.1): events from before it existed parse as the default.
    renewal_mode: RenewalMode = DEFAULT_RENEWAL_MODE
    effective_at: Timestamp


class PartnerCreated(PartnerState):
    """`partner.created`."""


class PartnerUpdated(PartnerState):
    """`partner.updated`: tier, status, branding or contact changed at `effective_at`."""


# --- registration.entitlements.v1 -------------------------------------------------


class PartnerOfRecord(ContractModel):
    partner_id: Text
    since: Timestamp
    source: AttributionSource


class EntitlementState(EventData):
    """An entitlement as it now stands."""

    license_key: Text
    product: Text
    sku: Text
    term_start: Date
    term_end: Date
    customer: Customer
    partner_of_record: PartnerOfRecord | None

    @field_validator("term_end")
    @classmethod
    def _term_end_not_before_start(cls, term_end: dt.date, info: ValidationInfo) -> dt.date:
        return _check_term_end(term_end, info)


class EntitlementRegistered(EntitlementState):
    """`entitlement.registered`: a customer or partner registered the licence."""


class EntitlementUpdated(EntitlementState):
    """`entitlement.updated`: term, product or customer changed."""


class EntitlementAttributionChanged(EntitlementState):
    """`entitlement.attribution_changed`: the partner of record changed."""

    previous_partner_id: str | None


class AppliedOrder(ContractModel):
    order_id: Text
    line_id: Text
    kind: LineKind
    sales_channel: SalesChannel
    customer_id: Text
    net_amount_minor: NonNegativeMinor
    currency: Currency
    occurred_at: Timestamp


class ParentPartner(ContractModel):
    partner_id: Text
    status: PartnerStatus


class PartnerAtOrder(ContractModel):
    """The partner of record as it stood at the order's `occurred_at`."""

    partner_id: Text
    tier: PartnerTier
    status: PartnerStatus
    customer_ids: list[Text]
    since: Timestamp
    source: AttributionSource
    parent: ParentPartner | None


class EntitlementOrderApplied(EntitlementState):
    """`entitlement.order_applied`: one order line applied; all commissions needs."""

    order: AppliedOrder
    partner: PartnerAtOrder | None


# --- commissions.ledger.v1 -------------------------------------------------------


class CommissionLine(EventData):
    """One ledger line (CONTRACT 3) as it stands after the event."""

    line_id: Text = Field(description="uuid5, see shared.ids")
    partner_id: Text
    role: CommissionRole
    order_id: Text
    line_ref: Text = Field(description="the order line's line_id")
    license_key: Text
    refund_id: str | None
    kind: LineKind
    tier: PartnerTier
    base_amount_minor: NonNegativeMinor = Field(
        description="what the rate applies to: the line's net, or the refund for a clawback"
    )
    rate_bps: Annotated[StrictInt, Field(ge=0, le=10000)]
    amount_minor: MinorAmount = Field(description="negative for a clawback")
    currency: Currency
    status: CommissionStatus
    rate_table_version: Annotated[StrictInt, Field(ge=1)]
    occurred_at: Timestamp
    payable_at: Timestamp | None

    # The status this event type reports, checked so a line cannot contradict
    # the event it rides on; None leaves it open.
    implied_status: ClassVar[CommissionStatus | None] = None

    @model_validator(mode="after")
    def _status_matches_event(self) -> Self:
        if self.implied_status is not None and self.status != self.implied_status:
            raise PydanticCustomError(
                "status_mismatch",
                "status must be {expected} for this event type",
                {"expected": self.implied_status},
            )
        return self


class CommissionAccrued(CommissionLine):
    """`commission.accrued`: a new commission line, amount >= 0."""

    implied_status = "accrued"

    @model_validator(mode="after")
    def _accrual_shape(self) -> Self:
        if self.refund_id is not None:
            raise PydanticCustomError("refund_on_accrual", "refund_id must be null on an accrual")
        if self.amount_minor < 0:
            raise PydanticCustomError("negative_accrual", "amount_minor must be >= 0")
        return self


class CommissionClawedBack(CommissionLine):
    """`commission.clawed_back`: a clawback line for a refund, amount <= 0."""

    implied_status = "accrued"

    @model_validator(mode="after")
    def _clawback_shape(self) -> Self:
        if not self.refund_id:
            raise PydanticCustomError("refund_missing", "refund_id is required on a clawback")
        if self.amount_minor > 0:
            raise PydanticCustomError("positive_clawback", "amount_minor must be <= 0")
        return self


class CommissionPayable(CommissionLine):
    """`commission.payable`: the hold has passed."""

    implied_status = "payable"


class CommissionPaid(CommissionLine):
    """`commission.paid`: finance marked the statement paid."""

    implied_status = "paid"


# --- notifications.deliveries.v1 -------------------------------------------------


class DeliveryOutcome(EventData):
    """The outcome of one notification delivery; never the message body."""

    notification_id: Text
    notification_type: NotificationType
    channel: Channel
    audience: Audience
    partner_scope: str | None = Field(description="the partner the message is scoped to")
    license_keys: list[Text]
    attempts: Annotated[StrictInt, Field(ge=0)]
    error: str | None


class DeliverySent(DeliveryOutcome):
    """`delivery.sent`."""


class DeliveryFailed(DeliveryOutcome):
    """`delivery.failed`: retries exhausted (or a permanent error)."""

    @model_validator(mode="after")
    def _error_given(self) -> Self:
        if not self.error:
            raise PydanticCustomError("error_missing", "error is required on a failed delivery")
        return self


class DeliverySuppressed(DeliveryOutcome):
    """`delivery.suppressed`: not sent on purpose (unsubscribed, no address, ...)."""


EVENT_MODELS: Mapping[str, type[EventData]] = MappingProxyType(
    {
        "order.placed": OrderPlaced,
        "refund.issued": RefundIssued,
        "advisory.published": AdvisoryPublished,
        "partner.created": PartnerCreated,
        "partner.updated": PartnerUpdated,
        "entitlement.registered": EntitlementRegistered,
        "entitlement.updated": EntitlementUpdated,
        "entitlement.attribution_changed": EntitlementAttributionChanged,
        "entitlement.order_applied": EntitlementOrderApplied,
        "commission.accrued": CommissionAccrued,
        "commission.clawed_back": CommissionClawedBack,
        "commission.payable": CommissionPayable,
        "commission.paid": CommissionPaid,
        "delivery.sent": DeliverySent,
        "delivery.failed": DeliveryFailed,
        "delivery.suppressed": DeliverySuppressed,
    }
)
"""Every event type of CONTRACT 1.3 and the model of its `data`."""
