"""Rules the event models hold beyond field types: per-event invariants and enumerations."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from shared.envelope import EventValidationError, encode, parse_event
from shared.events import AttributionSource, PartnerCreated
from shared.examples import example_events

pytestmark = pytest.mark.unit


def _example(event_type: str) -> tuple[str, dict[str, Any]]:
    for topic, envelope in example_events():
        if envelope.event_type == event_type:
            return topic, json.loads(encode(envelope))
    raise KeyError(event_type)


def _reject(event_type: str, changes: dict[str, Any]) -> str:
    topic, document = _example(event_type)
    document["data"].update(changes)
    with pytest.raises(EventValidationError) as caught:
        parse_event(topic, json.dumps(document).encode())
    assert caught.value.reason == "schema_violation"
    return caught.value.detail


def _accept(event_type: str, changes: dict[str, Any]) -> None:
    topic, document = _example(event_type)
    document["data"].update(changes)
    parse_event(topic, json.dumps(document).encode())


def test_attribution_sources() -> None:
    assert set(get_args(AttributionSource)) == {
        "partner_sale",
        "partner_registration",
        "customer_registration",
        "checkout_seller_code",
        "operator",
        "deal_registration",
    }
    _reject(
        "entitlement.registered",
        {
            "partner_of_record": {
                "partner_id": "P",
                "since": "2026-01-10T09:00:00Z",
                "source": "guess",
            }
        },
    )


def test_partner_seller_code_is_checked_and_canonical() -> None:
    detail = _reject("partner.created", {"seller_code": "7K3M-9QXE"})
    assert "data.seller_code" in detail and "check symbol" in detail
    topic, document = _example("partner.created")
    document["data"]["seller_code"] = "7k3m 9qxf"
    partner = parse_event(topic, json.dumps(document).encode()).data
    assert isinstance(partner, PartnerCreated)
    assert partner.seller_code == "7K3M-9QXF"


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", "reseller"), ("tier", "diamond"), ("status", "paused"), ("contact_email", "x")],
)
def test_partner_enumerations(field: str, value: str) -> None:
    assert f"data.{field}" in _reject("partner.updated", {field: value})


def test_partner_never_carries_secrets() -> None:
    _, document = _example("partner.created")
    assert not {"api_key", "api_key_hash", "webhook_secret"} & set(document["data"])


def test_co_brand_flag_is_a_strict_bool() -> None:
    assert "co_brand_customer_messages" in _reject(
        "partner.created", {"co_brand_customer_messages": "yes"}
    )


def test_entitlement_term_order() -> None:
    detail = _reject("entitlement.updated", {"term_end": "2026-12-31"})
    assert "data.term_end" in detail


def test_attribution_changed_needs_previous_partner() -> None:
    topic, document = _example("entitlement.attribution_changed")
    del document["data"]["previous_partner_id"]
    with pytest.raises(EventValidationError, match="previous_partner_id"):
        parse_event(topic, json.dumps(document).encode())
    _accept("entitlement.attribution_changed", {"previous_partner_id": "P-OLD"})


def test_commission_rules() -> None:
    assert "refund_id" in _reject("commission.accrued", {"refund_id": "RF-1"})
    assert "amount_minor" in _reject("commission.accrued", {"amount_minor": -1})
    assert "refund_id" in _reject("commission.clawed_back", {"refund_id": None})
    assert "amount_minor" in _reject("commission.clawed_back", {"amount_minor": 5})
    assert "status" in _reject("commission.payable", {"status": "paid"})
    assert "status" in _reject("commission.paid", {"status": "payable"})
    assert "data.role" in _reject("commission.accrued", {"role": "referrer"})
    assert "data.rate_bps" in _reject("commission.accrued", {"rate_bps": 10001})
    assert "data.amount_minor" in _reject("commission.accrued", {"amount_minor": 18519.0})
    _accept("commission.paid", {"amount_minor": -9259, "refund_id": "RF-1"})


def test_delivery_rules() -> None:
    assert "error" in _reject("delivery.failed", {"error": None})
    assert "data.channel" in _reject("delivery.sent", {"channel": "sms"})
    assert "data.audience" in _reject("delivery.sent", {"audience": "operator"})
    assert "data.notification_type" in _reject("delivery.sent", {"notification_type": "spam"})
    assert "data.attempts" in _reject("delivery.sent", {"attempts": -1})
    _accept("delivery.suppressed", {"partner_scope": None, "license_keys": []})


def test_advisory_rules() -> None:
    assert "data.severity" in _reject("advisory.published", {"severity": "urgent"})
    assert "data.products" in _reject("advisory.published", {"products": []})
    assert "data.url" in _reject("advisory.published", {"url": "javascript:alert(1)"})
