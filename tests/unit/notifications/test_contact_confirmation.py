"""`entitlement.contact_confirmation_requested` (CONTRACT 6.9): one mail, no projection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chassis.records import Inbound
from services.notifications.service_layer.handlers import EventHandler
from shared.examples import example_events
from shared.topics import REGISTRATION_ENTITLEMENTS
from tests.unit.notifications.fakes import (
    FakeClock,
    FakeCounters,
    FakeDeliveries,
    FakeWebhooks,
)


class Projections:
    def __init__(self) -> None:
        self.entitlements: list[Mapping[str, Any]] = []

    async def apply_partner(self, data: Mapping[str, Any], version: Any) -> bool:
        return True

    async def apply_entitlement(self, data: Mapping[str, Any], version: Any) -> bool:
        self.entitlements.append(data)
        return True


class NoAdvisories:
    async def open(self, advisory: Mapping[str, Any], occurred_at: Any) -> str:
        raise AssertionError("no advisory here")


async def test_a_confirmation_request_plans_one_mail_to_the_contact_in_place() -> None:
    [envelope] = [
        e
        for _, e in example_events()
        if e.event_type == "entitlement.contact_confirmation_requested"
    ]
    projections, deliveries = Projections(), FakeDeliveries()
    handler = EventHandler(
        projections=projections,
        deliveries=deliveries,
        webhooks=FakeWebhooks(),
        advisory_jobs=NoAdvisories(),
        clock=FakeClock(dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC)),
        counters=FakeCounters(),
    )
    inbound = Inbound(REGISTRATION_ENTITLEMENTS, 0, 0, b"k", b"{}", (), envelope)
    result = await handler([inbound])
    assert result.rejected == [] and result.produce == []
    assert projections.entitlements == []  # the contact in place stays in the projection
    [planned] = [state.planned for state in deliveries.records.values()]
    assert planned.type == "contact_confirmation"
    assert planned.recipient == envelope.data.customer.email
    assert planned.partner_scope is None and planned.related_partner_ids == ()
    # Replayed: the same notification id, nothing planned twice.
    await handler([inbound])
    assert len(deliveries.records) == 1
