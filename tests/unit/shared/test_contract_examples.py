"""Every JSON example in CONTRACT.md validates, pasted verbatim."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from shared.envelope import Envelope, encode, parse_event
from shared.events import (
    AdvisoryPublished,
    CommissionAccrued,
    EntitlementOrderApplied,
    EventData,
    OrderPlaced,
    RefundIssued,
)
from shared.topics import (
    CHECKOUT_ORDERS,
    CHECKOUT_REFUNDS,
    COMMISSIONS_LEDGER,
    REGISTRATION_ENTITLEMENTS,
    VENDOR_ADVISORIES,
)

pytestmark = pytest.mark.unit

# CONTRACT 1.1, verbatim.
ENVELOPE = """
{
  "event_id": "0b4f6c1e-3f57-4a54-9d5e-2f3c8a1d9e10",
  "event_type": "order.placed",
  "schema_version": 1,
  "occurred_at": "2027-01-05T10:00:00Z",
  "producer": "webshop-eu",
  "data": { }
}
"""

# CONTRACT 1.3 order.placed, verbatim.
ORDER_PLACED = """
{
  "order_id": "WEB-100017",
  "sales_channel": "direct",
  "storefront": "web",
  "partner_code": null,
  "seller_code": "7K3M-9QXF",
  "currency": "EUR",
  "customer": {"customer_id": "C-881", "org_name": "Müller Logistik GmbH",
               "contact_name": "Jana Müller", "email": "jana@mueller-logistik.example",
               "country": "DE"},
  "lines": [
    {"line_id": "1", "kind": "renewal", "license_key": "LK-5F2A-0001",
     "sku": "SECURE-PRO-1Y", "product": "secure-pro", "quantity": 1,
     "term_start": "2027-01-10", "term_end": "2028-01-09",
     "net_amount_minor": 123457}
  ]
}
"""

# CONTRACT 1.3 entitlement.order_applied additions, verbatim.
ORDER_APPLIED_ADDITIONS = """
{
  "order": {"order_id": "WEB-100017", "line_id": "1", "kind": "renewal",
            "sales_channel": "direct", "customer_id": "C-881",
            "net_amount_minor": 123457, "currency": "EUR",
            "occurred_at": "2027-01-05T10:00:00Z"},
  "partner": {"partner_id": "P-...", "tier": "gold", "status": "active",
              "customer_ids": ["C-17"], "since": "2026-01-10T09:00:00Z",
              "source": "partner_sale",
              "parent": {"partner_id": "P-...", "status": "active"}}
}
"""

# CONTRACT 1.3 commission.*, verbatim.
COMMISSION = """
{
  "line_id": "uuid5", "partner_id": "P-...", "role": "partner_of_record",
  "order_id": "WEB-100017", "line_ref": "1", "license_key": "LK-5F2A-0001",
  "refund_id": null, "kind": "renewal", "tier": "gold",
  "base_amount_minor": 123457, "rate_bps": 1500, "amount_minor": 18519,
  "currency": "EUR", "status": "accrued", "rate_table_version": 1,
  "occurred_at": "2027-01-05T10:00:00Z", "payable_at": "2027-02-04T10:00:00Z"
}
"""

# The entitlement "as it now stands" the order_applied example adds to
# (CONTRACT 1.3 lists its fields but gives no JSON).
ENTITLEMENT = {
    "license_key": "LK-5F2A-0001",
    "product": "secure-pro",
    "sku": "SECURE-PRO-1Y",
    "term_start": "2027-01-10",
    "term_end": "2028-01-09",
    "customer": json.loads(ORDER_PLACED)["customer"],
    "partner_of_record": {
        "partner_id": "P-...",
        "since": "2026-01-10T09:00:00Z",
        "source": "partner_sale",
    },
}


def _wrap(event_type: str, data: dict[str, Any]) -> bytes:
    envelope = json.loads(ENVELOPE)
    envelope["event_type"] = event_type
    envelope["data"] = data
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def _parse(topic: str, event_type: str, data: dict[str, Any]) -> Envelope[EventData]:
    envelope = parse_event(topic, _wrap(event_type, data))
    # And it survives our own encoding unchanged.
    assert parse_event(topic, encode(envelope)) == envelope
    return envelope


def test_envelope_and_order_placed() -> None:
    envelope = _parse(CHECKOUT_ORDERS, "order.placed", json.loads(ORDER_PLACED))
    assert envelope.event_id == "0b4f6c1e-3f57-4a54-9d5e-2f3c8a1d9e10"
    assert envelope.occurred_at == dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC)
    assert envelope.producer == "webshop-eu"
    order = envelope.data
    assert isinstance(order, OrderPlaced)
    assert order.customer.org_name == "Müller Logistik GmbH"
    assert order.lines[0].net_amount_minor == 123457
    assert order.lines[0].term_end == dt.date(2028, 1, 9)
    assert order.partner_code is None and order.seller_code == "7K3M-9QXF"


def test_envelope_serialises_like_the_contract() -> None:
    envelope = parse_event(CHECKOUT_ORDERS, _wrap("order.placed", json.loads(ORDER_PLACED)))
    document = json.loads(encode(envelope))
    assert document["occurred_at"] == "2027-01-05T10:00:00Z"
    assert document["data"] == json.loads(ORDER_PLACED)


def test_refund_issued() -> None:
    data = {
        "refund_id": "RF-1",
        "order_id": "WEB-100017",
        "line_id": "1",
        "amount_minor": 61728,
        "currency": "EUR",
        "reason": "downsized",
    }
    assert isinstance(_parse(CHECKOUT_REFUNDS, "refund.issued", data).data, RefundIssued)


def test_advisory_published() -> None:
    data = {
        "advisory_id": "ADV-1",
        "severity": "critical",
        "title": "t",
        "summary": "s",
        "url": "https://vendor.example/adv/1",
        "products": ["secure-pro"],
    }
    envelope = _parse(VENDOR_ADVISORIES, "advisory.published", data)
    assert isinstance(envelope.data, AdvisoryPublished)


def test_entitlement_order_applied() -> None:
    data = {**ENTITLEMENT, **json.loads(ORDER_APPLIED_ADDITIONS)}
    envelope = _parse(REGISTRATION_ENTITLEMENTS, "entitlement.order_applied", data)
    applied = envelope.data
    assert isinstance(applied, EntitlementOrderApplied)
    assert applied.partner is not None and applied.partner.parent is not None
    assert applied.partner.tier == "gold"
    assert applied.order.occurred_at == dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC)


def test_entitlement_order_applied_without_partner_or_parent() -> None:
    additions = json.loads(ORDER_APPLIED_ADDITIONS)
    no_parent = {**additions, "partner": {**additions["partner"], "parent": None}}
    _parse(REGISTRATION_ENTITLEMENTS, "entitlement.order_applied", {**ENTITLEMENT, **no_parent})
    no_partner = {**additions, "partner": None}
    data = {**ENTITLEMENT, "partner_of_record": None, **no_partner}
    _parse(REGISTRATION_ENTITLEMENTS, "entitlement.order_applied", data)


def test_commission_accrued() -> None:
    envelope = _parse(COMMISSIONS_LEDGER, "commission.accrued", json.loads(COMMISSION))
    line = envelope.data
    assert isinstance(line, CommissionAccrued)
    assert line.amount_minor == 18519
    assert line.payable_at == dt.datetime(2027, 2, 4, 10, tzinfo=dt.UTC)


def test_commission_status_events() -> None:
    data = json.loads(COMMISSION)
    _parse(COMMISSIONS_LEDGER, "commission.payable", {**data, "status": "payable"})
    _parse(COMMISSIONS_LEDGER, "commission.paid", {**data, "status": "paid"})
    clawback = {**data, "refund_id": "RF-1", "amount_minor": -9259, "payable_at": None}
    _parse(COMMISSIONS_LEDGER, "commission.clawed_back", clawback)
