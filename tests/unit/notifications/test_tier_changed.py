"""`tier_changed` (CONTRACT 6.4): a partner hears of an evaluation's tier change, and only that."""

from __future__ import annotations

import datetime as dt
from typing import Any

from chassis.records import Inbound
from services.notifications.domain import rules
from services.notifications.domain.model import PARTNER_TYPES
from services.notifications.service_layer.handlers import EventHandler
from shared.envelope import new_envelope
from shared.events import PartnerUpdated
from shared.topics import REGISTRATION_PARTNERS
from tests.unit.notifications.fakes import FakeClock, FakeCounters, FakeDeliveries, FakeWebhooks
from tests.unit.notifications.test_contact_confirmation import NoAdvisories, Projections

PARTNER: dict[str, Any] = {
    "partner_id": "P-NORDLICHT",
    "display_name": "Nordlicht IT",
    "legal_name": "Nordlicht IT GmbH",
    "type": "var",
    "tier": "gold",
    "status": "active",
    "contact_email": "partners@nordlicht-it.example",
    "co_brand_customer_messages": False,
    "seller_code": "7K3M-9QXF",
    "effective_at": "2027-01-01T23:59:59.999Z",
}


def _inbound(**fields: Any) -> Inbound:
    data = PartnerUpdated.model_validate({**PARTNER, **fields})
    envelope = new_envelope(
        "partner.updated",
        data,
        occurred_at=dt.datetime(2027, 1, 2, 2, tzinfo=dt.UTC),
        producer="registration",
    )
    return Inbound(REGISTRATION_PARTNERS, 0, 0, b"P-NORDLICHT", b"{}", (), envelope)


def _handler(deliveries: FakeDeliveries) -> EventHandler:
    return EventHandler(
        projections=Projections(),
        deliveries=deliveries,
        webhooks=FakeWebhooks(),
        advisory_jobs=NoAdvisories(),
        clock=FakeClock(dt.datetime(2027, 1, 2, 3, tzinfo=dt.UTC)),
        counters=FakeCounters(),
    )


def test_tier_changed_is_a_partner_message() -> None:
    assert "tier_changed" in PARTNER_TYPES


async def test_an_evaluation_change_tells_the_partner_once() -> None:
    deliveries = FakeDeliveries()
    handler = _handler(deliveries)
    inbound = _inbound(tier_reason="evaluation")
    await handler([inbound])
    [planned] = [state.planned for state in deliveries.records.values()]
    assert (planned.type, planned.audience, planned.recipient, planned.channel) == (
        "tier_changed",
        "partner",
        "P-NORDLICHT",
        "email",
    )
    assert planned.facts == {"tier": "gold", "effective_at": "2027-01-01T23:59:59.999Z"}
    await handler([inbound])  # redelivered: the same notification id
    assert len(deliveries.records) == 1


async def test_other_partner_updates_tell_nothing() -> None:
    deliveries = FakeDeliveries()
    await _handler(deliveries)([_inbound()])
    assert deliveries.records == {}


def test_both_channels_when_a_webhook_is_set() -> None:
    plans = rules.plan_tier_changed(
        PartnerUpdated.model_validate({**PARTNER, "tier_reason": "evaluation"}),
        dt.datetime(2027, 1, 2, tzinfo=dt.UTC),
        rules.partner_channels(True),
    )
    assert [p.channel for p in plans] == ["email", "webhook"]
    assert len({p.notification_id for p in plans}) == 2
