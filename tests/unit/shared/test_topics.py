"""The topic registry covers CONTRACT 1.2 and 6.6 exactly: topics, keys, event types, DLQs."""

from __future__ import annotations

import hashlib

import pytest

from shared import topics
from shared.envelope import Envelope, key_for
from shared.events import EVENT_MODELS, EventData
from shared.examples import example_events

pytestmark = pytest.mark.unit

CONTRACT_TOPICS = {
    "checkout.orders.v1": ("order_id", {"order.placed"}),
    "checkout.refunds.v1": ("order_id", {"refund.issued"}),
    "vendor.advisories.v1": ("advisory_id", {"advisory.published"}),
    "vendor.notices.v1": ("notice_id", {"notice.published"}),  # CONTRACT 6.6
    "registration.partners.v1": ("partner_id", {"partner.created", "partner.updated"}),
    "registration.entitlements.v1": (
        "license_key",
        {
            "entitlement.registered",
            "entitlement.updated",
            "entitlement.attribution_changed",
            "entitlement.order_applied",
            # CONTRACT 6.9 (contacts): the confirmation link for the contact in place.
            "entitlement.contact_confirmation_requested",
        },
    ),
    "registration.deals.v1": (  # CONTRACT 6.3
        "deal_id",
        {"deal.submitted", "deal.approved", "deal.rejected", "deal.won", "deal.expired"},
    ),
    # CONTRACT 6.2: sensitive; keyed by the SHA-256 hex of the lower-cased e-mail.
    "registration.customers.v1": ("email", {"customer.sign_in_requested"}),
    "commissions.ledger.v1": (
        "partner_id",
        {
            "commission.accrued",
            "commission.clawed_back",
            "commission.adjusted",  # CONTRACT 6.5
            "commission.payable",
            "commission.paid",
        },
    ),
    "notifications.deliveries.v1": (
        "notification_id",
        {"delivery.sent", "delivery.failed", "delivery.suppressed"},
    ),
}


def test_registry_matches_contract_table() -> None:
    assert {t.name: (t.key_field, set(t.event_types)) for t in topics.ALL_TOPICS} == CONTRACT_TOPICS
    assert set(topics.TOPICS) == set(CONTRACT_TOPICS)


def test_every_event_type_is_on_exactly_one_topic() -> None:
    carried = [et for t in topics.ALL_TOPICS for et in t.event_types]
    assert sorted(carried) == sorted(EVENT_MODELS)
    assert len(carried) == len(set(carried))
    for t in topics.ALL_TOPICS:
        for et, model in t.event_types.items():
            assert model is EVENT_MODELS[et]
            assert topics.topic_for_event(et) is t


def test_constants_name_the_topics() -> None:
    constants = {
        topics.CHECKOUT_ORDERS,
        topics.CHECKOUT_REFUNDS,
        topics.VENDOR_ADVISORIES,
        topics.VENDOR_NOTICES,
        topics.REGISTRATION_PARTNERS,
        topics.REGISTRATION_ENTITLEMENTS,
        topics.REGISTRATION_DEALS,
        topics.REGISTRATION_CUSTOMERS,
        topics.COMMISSIONS_LEDGER,
        topics.NOTIFICATIONS_DELIVERIES,
    }
    assert constants == set(CONTRACT_TOPICS)


def test_external_owners() -> None:
    external = {t.name for t in topics.ALL_TOPICS if t.external}
    assert external == {
        "checkout.orders.v1",
        "checkout.refunds.v1",
        "vendor.advisories.v1",
        "vendor.notices.v1",
    }


def test_dead_letter_topics() -> None:
    assert topics.dlq_name("checkout.orders.v1") == "checkout.orders.v1.dlq"
    assert topics.topic(topics.CHECKOUT_ORDERS).dlq == "checkout.orders.v1.dlq"
    names = topics.all_topic_names()
    assert len(names) == 2 * len(CONTRACT_TOPICS) == 20
    assert all(f"{name}.dlq" in names for name in CONTRACT_TOPICS)
    assert topics.all_topic_names(include_dlq=False) == [t.name for t in topics.ALL_TOPICS]


def test_key_for_uses_the_registry_key_field() -> None:
    for topic_name, envelope in example_events():
        key_field = CONTRACT_TOPICS[topic_name][0]
        value = getattr(envelope.data, key_field)
        if topic_name == topics.REGISTRATION_CUSTOMERS:
            # CONTRACT 6.2: never the address itself.
            value = hashlib.sha256(value.lower().encode()).hexdigest()
        assert key_for(topic_name, envelope) == value.encode()


def test_dead_letters_of_the_sensitive_topic_carry_no_token() -> None:
    from chassis.records import dead_letter
    from shared.envelope import encode

    envelope = next(e for t, e in example_events() if t == topics.REGISTRATION_CUSTOMERS)
    token = envelope.data.token  # type: ignore[attr-defined]
    record = dead_letter(
        topics.REGISTRATION_CUSTOMERS, b"k", encode(envelope), (), "x", f"bad {token}"
    )
    assert token.encode() not in record.value
    assert all(token.encode() not in value for _, value in record.headers)
    assert b"[redacted]" in record.value
    garbage = dead_letter(topics.REGISTRATION_CUSTOMERS, b"k", b"{" + token.encode(), (), "x", "")
    assert garbage.value == b""
    # Nested too deep for json to parse: still a dead letter, without a value.
    deep = b'{"data":{"token":"' + token.encode() + b'","x":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    assert dead_letter(topics.REGISTRATION_CUSTOMERS, b"k", deep, (), "too_deep", "").value == b""
    # Other topics are forwarded unchanged.
    order = example_events()[0]
    plain = dead_letter(order[0], b"k", encode(order[1]), (), "x", "d")
    assert plain.value == encode(order[1])


def test_key_for_rejects_event_on_wrong_topic() -> None:
    order: Envelope[EventData] = example_events()[0][1]
    with pytest.raises(ValueError, match="not carried"):
        key_for(topics.COMMISSIONS_LEDGER, order)
    with pytest.raises(ValueError, match="registry"):
        key_for("nope.v1", order)
