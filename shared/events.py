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
from typing import Annotated, Any, ClassVar, Final, Literal, Self, cast

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
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from shared import seller_code
from shared.money import MINOR_DIGITS

__all__ = [
    "DEFAULT_RENEWAL_MODE",
    "EARLIEST_DATE",
    "EVENT_MODELS",
    "LATEST_DATE",
    "MAX_AMOUNT_MINOR",
    "MAX_NESTING",
    "MAX_RECORD_BYTES",
    "OUT_OF_BOUNDS",
    "AdvisoryPublished",
    "AppliedOrder",
    "AttributionSource",
    "Audience",
    "Branding",
    "Channel",
    "CommissionAccrued",
    "CommissionAdjusted",
    "CommissionClawedBack",
    "CommissionLine",
    "CommissionPaid",
    "CommissionPayable",
    "CommissionRole",
    "CommissionStatus",
    "ContractModel",
    "Customer",
    "CustomerSignInRequested",
    "DealApproved",
    "DealCustomer",
    "DealExpired",
    "DealRejected",
    "DealState",
    "DealStatus",
    "DealSubmitted",
    "DealWon",
    "DeliveryFailed",
    "DeliveryOutcome",
    "DeliverySent",
    "DeliverySuppressed",
    "EntitlementAttributionChanged",
    "EntitlementContactConfirmationRequested",
    "EntitlementOrderApplied",
    "EntitlementRegistered",
    "EntitlementState",
    "EntitlementUpdated",
    "EventData",
    "LineKind",
    "NoticeKind",
    "NoticePublished",
    "NotificationType",
    "OrderLine",
    "OrderPlaced",
    "ParentPartner",
    "PartnerAccess",
    "PartnerAtOrder",
    "PartnerCreated",
    "PartnerOfRecord",
    "PartnerState",
    "PartnerStatus",
    "PartnerTier",
    "PartnerType",
    "PartnerUpdated",
    "Permission",
    "RateSource",
    "RefundIssued",
    "RenewalMode",
    "SalesChannel",
    "Severity",
    "Storefront",
    "TierReason",
    "format_timestamp",
]

# --- enumerations (CONTRACT 1.3, 2.1, 3, 4) ---------------------------------

SalesChannel = Literal["direct", "partner"]
Storefront = Literal["web", "retail", "phone", "marketplace"]
LineKind = Literal["new", "renewal", "upgrade"]
Severity = Literal["low", "medium", "high", "critical"]
NoticeKind = Literal["service_pack", "end_of_life", "maintenance"]
PartnerType = Literal["var", "si", "msp", "distributor", "isv"]
PartnerTier = Literal["platinum", "gold", "silver", "bronze"]
PartnerStatus = Literal["active", "suspended", "terminated"]
TierReason = Literal["evaluation"]
# CONTRACT 6.1: whom the vendor steers a renewing customer to.
RenewalMode = Literal["partner_first", "partner_only", "vendor_direct"]
DEFAULT_RENEWAL_MODE: Final[RenewalMode] = "partner_first"
CommissionRole = Literal["partner_of_record", "distributor_override", "adjustment"]
RateSource = Literal["tier_table", "override"]
CommissionStatus = Literal["accrued", "payable", "paid"]
Channel = Literal["email", "webhook"]
Permission = Literal["view", "manage"]
"""What a partner with access (not the partner of record) may do (CONTRACT 6.2)."""
Audience = Literal["customer", "partner"]
NotificationType = Literal[
    "welcome",
    "renewal_reminder",
    "renewal_opportunity",
    "security_advisory",
    "advisory_partner_digest",
    "product_notice",
    "notice_partner_digest",
    "commission_earned",
    "commission_reversed",
    "attribution_changed",
    "deal_decided",
    # CONTRACT 6.9 (the contact in place confirms a new one) and 6.2 (a sign-in link):
    # without them every outcome after such a mail failed to publish.
    "contact_confirmation",
    "customer_sign_in",
    "tier_changed",
]
AttributionSource = Literal[
    "partner_sale",
    "partner_registration",
    "customer_registration",
    "checkout_seller_code",
    "operator",
    "deal_registration",
]
"""How a partner of record was set, strongest first (CONTRACT 2.1):

- `partner_sale`: a `sales_channel = partner` order carrying `partner_code`;
- `partner_registration`: the partner registered the licence (POST /v1/partner/registrations);
- `customer_registration`: a seller code given at or after a customer registration;
- `checkout_seller_code`: a seller code typed at a direct checkout (`order.placed.seller_code`);
- `operator`: an operator reassigned it (PUT .../partner-of-record);
- `deal_registration`: a direct `new` order line for a (customer, product) an approved
  deal of the partner protects (CONTRACT 6.3; as strong as a partner registration).
"""
DealStatus = Literal["submitted", "approved", "rejected", "won", "expired"]

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


# --- bounds (CONTRACT 6.9) ----------------------------------------------------------

EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)
"""Every date and timestamp of an event lies in EARLIEST_DATE ... LATEST_DATE (UTC)."""
EARLIEST_INSTANT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
END_OF_TIME = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""The first instant out of bounds (exclusive end of LATEST_DATE)."""
MAX_AMOUNT_MINOR = 10**15
"""Every amount is an integer with abs(amount) <= MAX_AMOUNT_MINOR minor units."""
MAX_NESTING = 32
"""JSON nests at most this many levels (objects and arrays)."""
MAX_RECORD_BYTES = 1024 * 1024
"""A record is at most 1 MiB once decompressed."""

OUT_OF_BOUNDS = "out_of_bounds"
"""The pydantic error type (and dead-letter reason) of a value outside the bounds."""


def _out_of_bounds(what: str) -> PydanticCustomError:
    return PydanticCustomError(
        OUT_OF_BOUNDS, "{what} is out of bounds (CONTRACT 6.9)", {"what": what}
    )


def _to_utc_millis(value: dt.datetime) -> dt.datetime:
    # The wire carries at most milliseconds; truncating on the way in keeps the
    # model equal to what it serialises to, so a replay compares equal.
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC instant in datetime's range
        raise _out_of_bounds("timestamp") from None
    if not EARLIEST_INSTANT <= utc < END_OF_TIME:
        raise _out_of_bounds(f"timestamp {format_timestamp(utc)}")
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def _date_in_bounds(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _out_of_bounds(f"date {value.isoformat()}")
    return value


def _amount_in_bounds(value: int) -> int:
    if not -MAX_AMOUNT_MINOR <= value <= MAX_AMOUNT_MINOR:
        raise _out_of_bounds(f"amount of {len(str(abs(value)))} digits")
    return value


def format_timestamp(value: dt.datetime) -> str:
    """RFC 3339 UTC with `Z`, the year zero-padded to 4 digits; milliseconds when non-zero."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes have no instant; attach a timezone")
    utc = value.astimezone(dt.UTC)
    # Not strftime("%Y"): glibc writes year 999 as "999", which is not RFC 3339.
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
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


Date = Annotated[dt.date, BeforeValidator(_date_input), AfterValidator(_date_in_bounds)]
"""A calendar date, `YYYY-MM-DD` on the wire, within the bounds of CONTRACT 6.9."""

Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_input),
    AfterValidator(_to_utc_millis),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""An instant: aware datetime, normalised to UTC, at most millisecond precision,
within the bounds of CONTRACT 6.9."""

Text = Annotated[str, StringConstraints(min_length=1)]
"""A required, non-empty string (ids, names)."""

Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_is_currency),
    Field(description="ISO 4217 alphabetic code, upper case (see shared.money.MINOR_DIGITS)"),
    # The published schema lists the codes _is_currency accepts, not only their shape.
    Field(json_schema_extra={"enum": list(MINOR_DIGITS)}),
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
    # What the codec can normalise; only its check symbol is beyond a schema.
    Field(json_schema_extra={"pattern": seller_code.INPUT_PATTERN}),
    AfterValidator(_is_seller_code),
    Field(description="seller code, XXXX-XXXX Crockford base32 with a check symbol"),
]
MinorAmount = Annotated[
    StrictInt,
    Field(
        description="integer minor units, never a float, at most 10^15 either way",
        json_schema_extra={"minimum": -MAX_AMOUNT_MINOR, "maximum": MAX_AMOUNT_MINOR},
    ),
    AfterValidator(_amount_in_bounds),
]
NonNegativeMinor = Annotated[
    StrictInt,
    Field(
        ge=0,
        description="integer minor units, 0..10^15, never a float",
        json_schema_extra={"maximum": MAX_AMOUNT_MINOR},
    ),
    AfterValidator(_amount_in_bounds),
]
PositiveMinor = Annotated[
    StrictInt,
    Field(
        gt=0,
        description="integer minor units, 1..10^15, never a float",
        json_schema_extra={"maximum": MAX_AMOUNT_MINOR},
    ),
    AfterValidator(_amount_in_bounds),
]


def _check_term_end(term_end: dt.date, info: ValidationInfo) -> dt.date:
    # A field validator (not a model one) so the error names data...term_end.
    term_start = info.data.get("term_start")
    if term_start is not None and term_end < term_start:
        raise PydanticCustomError("term_order", "term_end must not be before term_start")
    return term_end


_SELLER_CODE_INPUT = seller_code.INPUT_PATTERN  # in a model body, seller_code is a field


def _schema_rules(
    properties: Mapping[str, JsonDict] | None = None, conditions: JsonDict | None = None
) -> ConfigDict:
    """A model's config publishing its own cross-field validators in its JSON Schema.

    ``properties`` narrows named properties: their keywords are overridden, and a
    narrowing that fixes ``type`` or ``const`` drops the wider ``anyOf``/``enum``.
    ``conditions`` (``if``/``then``) are added to the model's schema. What a schema
    cannot say stays with the validators; shared/README.md lists it.
    """

    def extra(schema: JsonDict) -> None:
        known = cast("dict[str, JsonDict]", schema["properties"])
        for name, narrowing in (properties or {}).items():
            current = dict(known[name])
            if "type" in narrowing or "const" in narrowing:
                current.pop("anyOf", None)
                current.pop("enum", None)
            known[name] = {**current, **narrowing}
        schema.update(conditions or {})

    return ConfigDict(json_schema_extra=extra)


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

    # _partner_code_for_partner_sales, and registration's invalid_partner_code but
    # for the check symbol; the unique line_ids (_line_ids_unique) a schema cannot say.
    model_config = _schema_rules(
        conditions={
            "if": {
                "properties": {"sales_channel": {"const": "partner"}},
                "required": ["sales_channel"],
            },
            "then": {
                "properties": {"partner_code": {"type": "string", "pattern": _SELLER_CODE_INPUT}},
                "required": ["partner_code"],
            },
        }
    )

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


# --- vendor.notices.v1 ---------------------------------------------------------------


class NoticePublished(EventData):
    """`notice.published`: a product notice from the vendor (CONTRACT 6.6).

    A service pack, an end of life or a maintenance window: sent like an
    advisory to every contact with an unexpired entitlement of the products,
    but not a security matter, so unsubscribes are honoured.
    """

    notice_id: Text
    kind: NoticeKind
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

    # Additive (CONTRACT 6.4): "evaluation" when an earned-tier evaluation moved the
    # tier; absent for every other change.
    tier_reason: TierReason | None = None


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


class PartnerAccess(ContractModel):
    """A partner the customer let see (or manage) a licence without making it PoR."""

    partner_id: Text
    permission: Permission


class EntitlementUpdated(EntitlementState):
    """`entitlement.updated`: term, product, customer or partners with access changed.

    `access` (CONTRACT 6.2, additive): every partner with access, in full; absent from
    events of producers that predate it. A partner with access is never the partner
    of record: it earns nothing and is never named to the customer.
    """

    access: list[PartnerAccess] | None = None


class EntitlementAttributionChanged(EntitlementState):
    """`entitlement.attribution_changed`: the partner of record changed."""

    previous_partner_id: str | None

    # Notifications dead-letters an unchanged attribution (attribution_unchanged).
    # A schema can say "not from no partner to no partner", not "not to the same one".
    model_config = _schema_rules(
        conditions={
            "if": {
                "properties": {"partner_of_record": {"type": "null"}},
                "required": ["partner_of_record"],
            },
            "then": {"properties": {"previous_partner_id": {"type": "string"}}},
        }
    )


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


class EntitlementContactConfirmationRequested(EventData):
    """`entitlement.contact_confirmation_requested` (CONTRACT 6.9): a public registration
    gave another e-mail than the contact checkout supplied. That contact stays until it
    confirms the change: the mail with the one-time link goes to `customer` (the contact
    in place), vendor-branded. `confirmation_token` is a secret (its hash is all that
    registration keeps): never logged, never in a dead letter's headers.
    """

    license_key: Text
    product: Text
    customer: Customer
    requested_contact_name: str
    requested_email: Email
    confirmation_token: Annotated[str, StringConstraints(min_length=16, max_length=200)]
    expires_at: Timestamp


# --- registration.deals.v1 (CONTRACT 6.3) ---------------------------------------


class DealCustomer(ContractModel):
    """The customer a deal is for: matched by `customer_id` when given, else by e-mail."""

    customer_id: str | None = None
    org_name: Text
    email: Email
    country: CountryCode


class DealState(EventData):
    """A registered deal as it now stands (CONTRACT 6.3).

    `protected_until` is `approved_at + DEAL_PROTECTION_DAYS`; `reason` is the
    rejection's (`deal_conflict` names nobody); `order_id` the order that won it.
    """

    deal_id: Text
    partner_id: Text
    customer: DealCustomer
    product: Text
    expected_close: Date
    estimated_amount_minor: NonNegativeMinor
    currency: Currency
    status: DealStatus
    submitted_at: Timestamp
    approved_at: Timestamp | None = None
    protected_until: Timestamp | None = None
    reason: str | None = None
    order_id: str | None = None
    # The status each event type reports, checked so a deal cannot contradict it.
    implied_status: ClassVar[DealStatus | None] = None

    @model_validator(mode="after")
    def _status_matches_event(self) -> Self:
        if self.implied_status is not None and self.status != self.implied_status:
            raise PydanticCustomError(
                "status_mismatch",
                "status must be {expected} for this event type",
                {"expected": self.implied_status},
            )
        return self


class DealSubmitted(DealState):
    """`deal.submitted`: a partner registered a deal."""

    implied_status: ClassVar[DealStatus | None] = "submitted"
    model_config = _schema_rules({"status": {"const": "submitted"}})


class DealApproved(DealState):
    """`deal.approved`: (partner, customer, product) protected until `protected_until`."""

    implied_status: ClassVar[DealStatus | None] = "approved"
    model_config = _schema_rules({"status": {"const": "approved"}})


class DealRejected(DealState):
    """`deal.rejected`: by an operator with a reason, or at once as `deal_conflict`."""

    implied_status: ClassVar[DealStatus | None] = "rejected"
    model_config = _schema_rules({"status": {"const": "rejected"}})


class DealWon(DealState):
    """`deal.won`: a direct `new` order line (or the partner's own sale) closed it."""

    implied_status: ClassVar[DealStatus | None] = "won"
    model_config = _schema_rules({"status": {"const": "won"}})


class DealExpired(DealState):
    """`deal.expired`: protection ended unwon."""

    implied_status: ClassVar[DealStatus | None] = "expired"
    model_config = _schema_rules({"status": {"const": "expired"}})


# --- registration.customers.v1 (sensitive) -------------------------------------------


class CustomerSignInRequested(EventData):
    """`customer.sign_in_requested` (CONTRACT 6.2): mail `email` a one-time sign-in link.

    `token` is a secret (registration keeps only its hash): the topic is sensitive,
    read by notifications alone; no consumer logs it, and dead letters of the topic
    carry it redacted (`shared.topics.SENSITIVE_FIELDS`).
    """

    email: Email
    token: Annotated[str, StringConstraints(min_length=16, max_length=200)]
    expires_at: Timestamp


# --- commissions.ledger.v1 -------------------------------------------------------


class CommissionLine(EventData):
    """One ledger line (CONTRACT 3, 6.5) as it stands after the event.

    An adjustment (role `adjustment`, CONTRACT 6.5) belongs to no order: its order
    fields (`order_id`, `line_ref`, `license_key`, `kind`, `tier`,
    `rate_table_version`) are null, `base_amount_minor` and `rate_bps` are 0, and
    it carries `reason` and `reference`. Every other role has them all.
    """

    line_id: Text = Field(description="uuid5, see shared.ids")
    partner_id: Text
    role: CommissionRole
    order_id: Text | None = Field(description="null on an adjustment")
    line_ref: Text | None = Field(description="the order line's line_id; null on an adjustment")
    license_key: Text | None = Field(description="null on an adjustment")
    refund_id: str | None
    kind: LineKind | None = Field(description="null on an adjustment")
    tier: PartnerTier | None = Field(description="null on an adjustment")
    base_amount_minor: NonNegativeMinor = Field(
        description="what the rate applies to: the line's net, or the refund for a clawback"
    )
    rate_bps: Annotated[StrictInt, Field(ge=0, le=10000)]
    amount_minor: MinorAmount = Field(description="negative for a clawback")
    currency: Currency
    status: CommissionStatus
    rate_table_version: Annotated[StrictInt, Field(ge=1)] | None = Field(
        description="null on an adjustment"
    )
    occurred_at: Timestamp
    payable_at: Timestamp | None
    # CONTRACT 6.5, additive: events written before it carry none and were all rated
    # by the tier table.
    rate_source: RateSource = Field(
        "tier_table", description="where rate_bps came from: the tier table or a rate override"
    )
    reason: str | None = Field(None, description="an adjustment's reason; null otherwise")
    reference: str | None = Field(None, description="an adjustment's reference; null otherwise")

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

    @model_validator(mode="after")
    def _order_fields_match_role(self) -> Self:
        order_fields = (
            self.order_id,
            self.line_ref,
            self.license_key,
            self.kind,
            self.tier,
            self.rate_table_version,
        )
        if self.role == "adjustment":
            if any(value is not None for value in order_fields) or self.refund_id is not None:
                raise PydanticCustomError(
                    "adjustment_shape", "an adjustment has no order, refund or rate fields"
                )
        elif any(value is None for value in order_fields):
            raise PydanticCustomError(
                "order_fields_missing",
                "order_id, line_ref, license_key, kind, tier and rate_table_version"
                " are required on an order's line",
            )
        return self


class CommissionAccrued(CommissionLine):
    """`commission.accrued`: a new commission line, amount >= 0."""

    implied_status = "accrued"
    model_config = _schema_rules(
        {
            "status": {"const": "accrued"},
            "refund_id": {"type": "null"},
            "amount_minor": {"minimum": 0},
        }
    )

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
    model_config = _schema_rules(
        {
            "status": {"const": "accrued"},
            "refund_id": {"type": "string", "minLength": 1},
            "amount_minor": {"maximum": 0},
        }
    )

    @model_validator(mode="after")
    def _clawback_shape(self) -> Self:
        if not self.refund_id:
            raise PydanticCustomError("refund_missing", "refund_id is required on a clawback")
        if self.amount_minor > 0:
            raise PydanticCustomError("positive_clawback", "amount_minor must be <= 0")
        return self


class CommissionAdjusted(CommissionLine):
    """`commission.adjusted`: finance's manual line (CONTRACT 6.5), payable at once."""

    implied_status = "payable"

    @model_validator(mode="after")
    def _adjustment_shape(self) -> Self:
        if self.role != "adjustment":
            raise PydanticCustomError("role_mismatch", "role must be adjustment")
        if self.amount_minor == 0:
            raise PydanticCustomError("zero_adjustment", "amount_minor must not be 0")
        return self


class CommissionPayable(CommissionLine):
    """`commission.payable`: the hold has passed."""

    implied_status = "payable"
    model_config = _schema_rules({"status": {"const": "payable"}})


class CommissionPaid(CommissionLine):
    """`commission.paid`: finance marked the statement paid."""

    implied_status = "paid"
    model_config = _schema_rules({"status": {"const": "paid"}})


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
    error_detail: str | None = Field(
        None,
        description=(
            "why, beside the error code: for `isolation_violation` (CONTRACT 6.8) the"
            " comma-separated checks that failed, codes that name no partner"
        ),
    )


class DeliverySent(DeliveryOutcome):
    """`delivery.sent`."""


class DeliveryFailed(DeliveryOutcome):
    """`delivery.failed`: retries exhausted (or a permanent error)."""

    model_config = _schema_rules({"error": {"type": "string", "minLength": 1}})

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
        "notice.published": NoticePublished,
        "partner.created": PartnerCreated,
        "partner.updated": PartnerUpdated,
        "entitlement.registered": EntitlementRegistered,
        "entitlement.updated": EntitlementUpdated,
        "entitlement.attribution_changed": EntitlementAttributionChanged,
        "entitlement.order_applied": EntitlementOrderApplied,
        "entitlement.contact_confirmation_requested": EntitlementContactConfirmationRequested,
        "deal.submitted": DealSubmitted,
        "deal.approved": DealApproved,
        "deal.rejected": DealRejected,
        "deal.won": DealWon,
        "deal.expired": DealExpired,
        "customer.sign_in_requested": CustomerSignInRequested,
        "commission.accrued": CommissionAccrued,
        "commission.clawed_back": CommissionClawedBack,
        "commission.adjusted": CommissionAdjusted,
        "commission.payable": CommissionPayable,
        "commission.paid": CommissionPaid,
        "delivery.sent": DeliverySent,
        "delivery.failed": DeliveryFailed,
        "delivery.suppressed": DeliverySuppressed,
    }
)
"""Every event type of CONTRACT 1.3 and the model of its `data`."""
