"""`customer.sign_in_requested` (CONTRACT 6.2): one transactional mail, no projection,
and no access partner ever treated as a partner of record."""

from __future__ import annotations

import datetime as dt

from chassis.records import Inbound
from services.notifications.service_layer.handlers import EventHandler, entitlement_of
from shared.events import EntitlementUpdated
from shared.examples import example_events
from shared.topics import REGISTRATION_CUSTOMERS
from tests.unit.notifications.fakes import (
    FakeClock,
    FakeCounters,
    FakeDeliveries,
    FakeWebhooks,
)
from tests.unit.notifications.test_contact_confirmation import NoAdvisories, Projections


def _handler(projections: Projections, deliveries: FakeDeliveries) -> EventHandler:
    return EventHandler(
        projections=projections,
        deliveries=deliveries,
        webhooks=FakeWebhooks(),
        advisory_jobs=NoAdvisories(),
        clock=FakeClock(dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC)),
        counters=FakeCounters(),
    )


async def test_a_sign_in_request_plans_one_mail_to_the_customer() -> None:
    [envelope] = [e for _, e in example_events() if e.event_type == "customer.sign_in_requested"]
    projections, deliveries = Projections(), FakeDeliveries()
    handler = _handler(projections, deliveries)
    inbound = Inbound(REGISTRATION_CUSTOMERS, 0, 0, b"k", b"{}", (), envelope)
    result = await handler([inbound])
    assert result.rejected == [] and result.produce == []
    assert projections.entitlements == []
    [planned] = [state.planned for state in deliveries.records.values()]
    assert planned.type == "customer_sign_in"
    assert planned.recipient == envelope.data.email  # type: ignore[attr-defined]
    assert planned.partner_scope is None and planned.related_partner_ids == ()
    assert envelope.data.token not in planned.notification_id  # type: ignore[attr-defined]
    await handler([inbound])
    assert len(deliveries.records) == 1


def test_partners_with_access_are_not_the_partner_of_record() -> None:
    """An `entitlement.updated` with `access` projects its PoR alone: reminders, digests
    and commissions never reach a partner that only has access."""
    [envelope] = [e for _, e in example_events() if e.event_type == "entitlement.updated"]
    data = envelope.data.model_dump(mode="json")
    assert data["access"], "the example carries a partner with access"
    assert isinstance(envelope.data, EntitlementUpdated)
    projected = entitlement_of(envelope.data)
    assert projected.partner_of_record == data["partner_of_record"]["partner_id"]
    assert data["access"][0]["partner_id"] != projected.partner_of_record
    assert data["access"][0]["partner_id"] not in repr(projected)


def test_every_notification_type_has_a_publishable_outcome() -> None:
    """`notifications.deliveries.v1` carries every type notifications sends (a type the
    contract model refused stalled the dispatcher's outcome publishing for good)."""
    from typing import get_args

    from services.notifications.domain.model import NOTIFICATION_TYPES
    from shared.events import NotificationType

    assert set(NOTIFICATION_TYPES) <= set(get_args(NotificationType))
