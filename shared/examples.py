"""One realistic, deterministic example of every event type, keyed by its topic.

Built from CONTRACT 1.3 and the first worked example of CONTRACT 3 (a gold
partner under a distributor, a direct renewal of 123457 EUR minor). Tests,
the integration round trip through a real broker and the AsyncAPI document
all use these, so they are checked against the models on every run.
"""

from __future__ import annotations

import datetime as dt

from shared import topics
from shared.envelope import Envelope, new_envelope
from shared.events import (
    AdvisoryPublished,
    AppliedOrder,
    Branding,
    CommissionAccrued,
    CommissionAdjusted,
    CommissionClawedBack,
    CommissionPaid,
    CommissionPayable,
    Customer,
    CustomerSignInRequested,
    DealApproved,
    DealCustomer,
    DealExpired,
    DealRejected,
    DealSubmitted,
    DealWon,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
    EntitlementAttributionChanged,
    EntitlementContactConfirmationRequested,
    EntitlementOrderApplied,
    EntitlementRegistered,
    EntitlementUpdated,
    EventData,
    NoticePublished,
    OrderLine,
    OrderPlaced,
    ParentPartner,
    PartnerAccess,
    PartnerAtOrder,
    PartnerCreated,
    PartnerOfRecord,
    PartnerUpdated,
    RefundIssued,
)
from shared.ids import adjustment_line_id, clawback_line_id, commission_line_id, derive_id
from shared.money import round_half_even

__all__ = ["example_events"]

PARTNER_ID = "P-GOLD01"
DISTRIBUTOR_ID = "P-DIST01"
ORDER_ID = "WEB-100017"
LICENSE_KEY = "LK-5F2A-0001"
NET = 123457
RATE_BPS = 1500
OVERRIDE_BPS = 200


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _customer() -> Customer:
    return Customer(
        customer_id="C-881",
        org_name="Müller Logistik GmbH",
        contact_name="Jana Müller",
        email="jana@mueller-logistik.example",
        country="DE",
    )


def _entitlement_fields() -> dict[str, object]:
    return {
        "license_key": LICENSE_KEY,
        "product": "secure-pro",
        "sku": "SECURE-PRO-1Y",
        "term_start": dt.date(2027, 1, 10),
        "term_end": dt.date(2028, 1, 9),
        "customer": _customer(),
        "partner_of_record": PartnerOfRecord(
            partner_id=PARTNER_ID, since=_at("2026-01-10T09:00:00Z"), source="partner_sale"
        ),
    }


def _partner_fields() -> dict[str, object]:
    return {
        "partner_id": PARTNER_ID,
        "display_name": "Nordlicht IT",
        "legal_name": "Nordlicht IT-Systemhaus GmbH",
        "type": "var",
        "tier": "gold",
        "status": "active",
        "parent_partner_id": DISTRIBUTOR_ID,
        "contact_email": "partners@nordlicht-it.example",
        "branding": Branding(
            logo_url="https://nordlicht-it.example/logo.png",
            color="#0B3D91",
            phone="+49 30 1234567",
            website="https://nordlicht-it.example",
        ),
        "co_brand_customer_messages": True,
        "customer_ids": ["C-17"],
        "seller_code": "7K3M-9QXF",
    }


DEAL_ID = "D-0001"


def _deal_fields(status: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "deal_id": DEAL_ID,
        "partner_id": PARTNER_ID,
        "customer": DealCustomer(
            customer_id="C-881",
            org_name="Müller Logistik GmbH",
            email="jana@mueller-logistik.example",
            country="DE",
        ),
        "product": "secure-pro",
        "expected_close": dt.date(2027, 2, 15),
        "estimated_amount_minor": NET,
        "currency": "EUR",
        "status": status,
        "submitted_at": _at("2026-12-01T09:00:00Z"),
    }
    if status in ("approved", "won", "expired"):
        fields["approved_at"] = _at("2026-12-02T10:00:00Z")
        fields["protected_until"] = _at("2027-03-02T10:00:00Z")
    return {**fields, **changes}


def _commission_fields(role: str, partner_id: str, rate_bps: int) -> dict[str, object]:
    return {
        "line_id": commission_line_id(ORDER_ID, "1", partner_id, role),
        "partner_id": partner_id,
        "role": role,
        "order_id": ORDER_ID,
        "line_ref": "1",
        "license_key": LICENSE_KEY,
        "refund_id": None,
        "kind": "renewal",
        "tier": "gold",
        "base_amount_minor": NET,
        "rate_bps": rate_bps,
        "amount_minor": round_half_even(NET * rate_bps, 10000),
        "currency": "EUR",
        "status": "accrued",
        "rate_table_version": 1,
        "occurred_at": _at("2027-01-05T10:00:00Z"),
        "payable_at": _at("2027-02-04T10:00:00Z"),
    }


def _examples() -> list[tuple[str, str, EventData, str, str]]:
    """(topic, event_type, data, occurred_at, producer) for every event type."""
    ordered = _at("2027-01-05T10:00:00Z")
    partner_commission = round_half_even(NET * RATE_BPS, 10000)
    first_refund = 61728
    clawback = -round_half_even(partner_commission * first_refund, NET)
    return [
        (
            topics.CHECKOUT_ORDERS,
            "order.placed",
            OrderPlaced(
                order_id=ORDER_ID,
                sales_channel="direct",
                storefront="web",
                partner_code=None,
                seller_code="7K3M-9QXF",
                currency="EUR",
                customer=_customer(),
                lines=[
                    OrderLine(
                        line_id="1",
                        kind="renewal",
                        license_key=LICENSE_KEY,
                        sku="SECURE-PRO-1Y",
                        product="secure-pro",
                        quantity=1,
                        term_start=dt.date(2027, 1, 10),
                        term_end=dt.date(2028, 1, 9),
                        net_amount_minor=NET,
                    )
                ],
            ),
            "2027-01-05T10:00:00Z",
            "webshop-eu",
        ),
        (
            topics.CHECKOUT_REFUNDS,
            "refund.issued",
            RefundIssued(
                refund_id="RF-5001",
                order_id=ORDER_ID,
                line_id="1",
                amount_minor=first_refund,
                currency="EUR",
                reason="customer downsized",
            ),
            "2027-01-20T14:30:00.250Z",
            "webshop-eu",
        ),
        (
            topics.VENDOR_ADVISORIES,
            "advisory.published",
            AdvisoryPublished(
                advisory_id="ADV-2027-0007",
                severity="high",
                title="Privilege escalation in the secure-pro agent",
                summary="Update the agent to 9.4.2; no workaround exists.",
                url="https://security.vendor.example/advisories/ADV-2027-0007",
                products=["secure-pro"],
            ),
            "2027-02-01T08:00:00Z",
            "vendor-psirt",
        ),
        (
            topics.VENDOR_NOTICES,
            "notice.published",
            NoticePublished(
                notice_id="NTC-2027-0003",
                kind="service_pack",
                title="Service Pack 2 for secure-pro 9.4",
                summary="Faster scans and a new reporting view; install it within 90 days.",
                url="https://vendor.example/notices/NTC-2027-0003",
                products=["secure-pro"],
            ),
            "2027-03-01T08:00:00Z",
            "vendor-product",
        ),
        (
            topics.REGISTRATION_PARTNERS,
            "partner.created",
            PartnerCreated(**_partner_fields(), effective_at=_at("2025-11-03T09:00:00Z")),
            "2025-11-03T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_PARTNERS,
            "partner.updated",
            PartnerUpdated(**_partner_fields(), effective_at=_at("2026-07-01T00:00:00Z")),
            "2026-06-28T16:12:45.120Z",
            "registration",
        ),
        (
            topics.REGISTRATION_ENTITLEMENTS,
            "entitlement.registered",
            EntitlementRegistered(**_entitlement_fields()),
            "2026-01-10T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_ENTITLEMENTS,
            "entitlement.updated",
            EntitlementUpdated(
                **_entitlement_fields(),
                # CONTRACT 6.2: a partner the customer let see the licence, not its PoR.
                access=[PartnerAccess(partner_id="P-5D2E7A19C4B0", permission="view")],
            ),
            "2027-01-05T10:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_ENTITLEMENTS,
            "entitlement.attribution_changed",
            EntitlementAttributionChanged(
                **_entitlement_fields(),
                previous_partner_id=None,
            ),
            "2026-01-10T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_ENTITLEMENTS,
            "entitlement.contact_confirmation_requested",
            EntitlementContactConfirmationRequested(
                license_key=str(_entitlement_fields()["license_key"]),
                product=str(_entitlement_fields()["product"]),
                customer=_customer(),
                requested_contact_name="Sam Registrant",
                requested_email="sam@registrant.example",
                confirmation_token="ckc_" + "x" * 43,
                expires_at=_at("2026-01-17T09:00:00Z"),
            ),
            "2026-01-10T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_CUSTOMERS,
            "customer.sign_in_requested",
            CustomerSignInRequested(
                email="jana@mueller-logistik.example",
                token="cks_" + "x" * 43,
                expires_at=_at("2026-01-10T09:15:00Z"),
            ),
            "2026-01-10T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_ENTITLEMENTS,
            "entitlement.order_applied",
            EntitlementOrderApplied(
                **_entitlement_fields(),
                order=AppliedOrder(
                    order_id=ORDER_ID,
                    line_id="1",
                    kind="renewal",
                    sales_channel="direct",
                    customer_id="C-881",
                    net_amount_minor=NET,
                    currency="EUR",
                    occurred_at=ordered,
                ),
                partner=PartnerAtOrder(
                    partner_id=PARTNER_ID,
                    tier="gold",
                    status="active",
                    customer_ids=["C-17"],
                    since=_at("2026-01-10T09:00:00Z"),
                    source="partner_sale",
                    parent=ParentPartner(partner_id=DISTRIBUTOR_ID, status="active"),
                ),
            ),
            "2027-01-05T10:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_DEALS,
            "deal.submitted",
            DealSubmitted(**_deal_fields("submitted")),
            "2026-12-01T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_DEALS,
            "deal.approved",
            DealApproved(**_deal_fields("approved")),
            "2026-12-02T10:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_DEALS,
            "deal.rejected",
            DealRejected(**_deal_fields("rejected", reason="deal_conflict")),
            "2026-12-01T09:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_DEALS,
            "deal.won",
            DealWon(**_deal_fields("won", order_id="WEB-100021")),
            "2027-01-12T11:00:00Z",
            "registration",
        ),
        (
            topics.REGISTRATION_DEALS,
            "deal.expired",
            DealExpired(**_deal_fields("expired")),
            "2027-03-02T10:00:00Z",
            "registration",
        ),
        (
            topics.COMMISSIONS_LEDGER,
            "commission.accrued",
            CommissionAccrued(**_commission_fields("partner_of_record", PARTNER_ID, RATE_BPS)),
            "2027-01-05T10:00:00Z",
            "commissions",
        ),
        (
            topics.COMMISSIONS_LEDGER,
            "commission.clawed_back",
            CommissionClawedBack(
                **{
                    **_commission_fields("partner_of_record", PARTNER_ID, RATE_BPS),
                    "line_id": clawback_line_id("RF-5001", PARTNER_ID, "partner_of_record"),
                    "refund_id": "RF-5001",
                    "base_amount_minor": first_refund,
                    "amount_minor": clawback,
                    "occurred_at": _at("2027-01-20T14:30:00.250Z"),
                    "payable_at": None,
                },
            ),
            "2027-01-20T14:30:00.250Z",
            "commissions",
        ),
        (
            topics.COMMISSIONS_LEDGER,
            "commission.payable",
            CommissionPayable(
                **{
                    **_commission_fields("distributor_override", DISTRIBUTOR_ID, OVERRIDE_BPS),
                    "status": "payable",
                },
            ),
            "2027-02-04T10:00:00Z",
            "commissions",
        ),
        (
            topics.COMMISSIONS_LEDGER,
            "commission.paid",
            CommissionPaid(
                **{
                    **_commission_fields("distributor_override", DISTRIBUTOR_ID, OVERRIDE_BPS),
                    "status": "paid",
                },
            ),
            "2027-03-03T12:00:00Z",
            "commissions",
        ),
        (
            topics.COMMISSIONS_LEDGER,
            "commission.adjusted",
            CommissionAdjusted(
                line_id=adjustment_line_id("FIN-2027-0042"),
                partner_id=PARTNER_ID,
                role="adjustment",
                order_id=None,
                line_ref=None,
                license_key=None,
                refund_id=None,
                kind=None,
                tier=None,
                base_amount_minor=0,
                rate_bps=0,
                amount_minor=25000,
                currency="EUR",
                status="payable",
                rate_table_version=None,
                occurred_at=_at("2027-02-10T09:00:00Z"),
                payable_at=_at("2027-02-10T09:00:00Z"),
                reason="Q1 launch bonus",
                reference="FIN-2027-0042",
            ),
            "2027-02-10T09:00:00Z",
            "commissions",
        ),
        (
            topics.NOTIFICATIONS_DELIVERIES,
            "delivery.sent",
            DeliverySent(
                notification_id=derive_id("commission_earned", "example", PARTNER_ID, "email"),
                notification_type="commission_earned",
                channel="email",
                audience="partner",
                partner_scope=PARTNER_ID,
                license_keys=[LICENSE_KEY],
                attempts=1,
                error=None,
            ),
            "2027-01-05T10:00:02Z",
            "notifications",
        ),
        (
            topics.NOTIFICATIONS_DELIVERIES,
            "delivery.failed",
            DeliveryFailed(
                notification_id=derive_id("commission_earned", "example", PARTNER_ID, "webhook"),
                notification_type="commission_earned",
                channel="webhook",
                audience="partner",
                partner_scope=PARTNER_ID,
                license_keys=[LICENSE_KEY],
                attempts=8,
                error="HTTP 503 from webhook endpoint",
            ),
            "2027-01-05T14:15:00Z",
            "notifications",
        ),
        (
            topics.NOTIFICATIONS_DELIVERIES,
            "delivery.suppressed",
            DeliverySuppressed(
                notification_id=derive_id("renewal_reminder", LICENSE_KEY, "90", "C-881"),
                notification_type="renewal_reminder",
                channel="email",
                audience="customer",
                partner_scope=PARTNER_ID,
                license_keys=[LICENSE_KEY],
                attempts=0,
                error=None,
            ),
            "2027-10-11T06:00:00Z",
            "notifications",
        ),
    ]


def example_events() -> list[tuple[str, Envelope[EventData]]]:
    """(topic, envelope) for one example of every event type, in registry order.

    Event ids are derived from the event type, so repeated calls give equal
    envelopes; give them fresh ids if a consumer must treat them as new.
    """
    return [
        (
            topic_name,
            new_envelope(
                event_type,
                data,
                occurred_at=_at(occurred_at),
                producer=producer,
                event_id=derive_id("example", event_type),
            ),
        )
        for topic_name, event_type, data, occurred_at, producer in _examples()
    ]
