"""`deal_decided` (CONTRACT 6.3): the partner hears each decision on its own deal, by mail
and webhook, and a `deal_conflict` names nobody."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pytest

from chassis.records import Inbound
from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.isolation import violations
from services.notifications.domain.messages import compose
from services.notifications.domain.payloads import webhook_body
from services.notifications.service_layer.handlers import EventHandler
from services.notifications.service_layer.ports import WebhookConfig
from shared.envelope import new_envelope
from shared.events import DealApproved, DealRejected
from shared.examples import example_events
from shared.topics import REGISTRATION_DEALS
from tests.unit.notifications.builders import ALPENTECH, NORDLICHT, OCCURRED, VENDOR
from tests.unit.notifications.fakes import FakeClock, FakeCounters, FakeDeliveries, FakeWebhooks
from tests.unit.notifications.test_templates import DEAL

pytestmark = pytest.mark.unit
RENDERER = Renderer(VENDOR)


class Projections:
    async def apply_partner(self, data: Mapping[str, Any], version: Any) -> bool:
        return True

    async def apply_entitlement(self, data: Mapping[str, Any], version: Any) -> bool:
        return True


class NoAdvisories:
    async def open(self, advisory: Mapping[str, Any], occurred_at: Any, **_: Any) -> str:
        raise AssertionError("no advisory here")


def rejected_for_conflict() -> dict[str, Any]:
    return {
        **DEAL,
        "status": "rejected",
        "reason": "deal_conflict",
        "approved_at": None,
        "protected_until": None,
    }


async def test_decisions_are_planned_for_the_deal_partner_by_mail_and_webhook() -> None:
    deliveries, webhooks = FakeDeliveries(), FakeWebhooks()
    partner_id = "P-GOLD01"  # the examples' partner
    webhooks.configs[partner_id] = WebhookConfig(partner_id, "https://hooks.example/in", "x")
    handler = EventHandler(
        projections=Projections(),
        deliveries=deliveries,
        webhooks=webhooks,
        advisory_jobs=NoAdvisories(),
        clock=FakeClock(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)),
        counters=FakeCounters(),
    )
    batch = [
        Inbound(REGISTRATION_DEALS, 0, n, b"D-0001", b"{}", (), envelope)
        for n, (topic, envelope) in enumerate(example_events())
        if topic == REGISTRATION_DEALS
    ]
    assert len(batch) == 5
    result = await handler(batch)
    assert result.rejected == []
    planned = sorted(
        (s.planned.type, s.planned.facts["status"], s.planned.channel, s.planned.recipient)
        for s in deliveries.records.values()
    )
    # approved and rejected are decisions; submitted, won and expired are not.
    assert planned == [
        ("deal_decided", "approved", "email", partner_id),
        ("deal_decided", "approved", "webhook", partner_id),
        ("deal_decided", "rejected", "email", partner_id),
        ("deal_decided", "rejected", "webhook", partner_id),
    ]
    await handler(batch)  # replayed: the same ids, nothing new
    assert len(deliveries.records) == 4


def test_an_approval_says_until_when_the_deal_is_protected() -> None:
    [plan] = rules.plan_deal_decided(DealApproved.model_validate(DEAL), OCCURRED, ["email"])
    message = compose(plan, {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    assert rendered.subject == "Deal D-0001 approved: secure-pro"
    assert "Protected until:" in rendered.text and "2027" in rendered.text
    assert "1,234.57 EUR" in rendered.text


def test_a_conflict_rejection_names_nobody_in_mail_or_webhook() -> None:
    [mail, hook] = rules.plan_deal_decided(
        DealRejected.model_validate(rejected_for_conflict()), OCCURRED, ["email", "webhook"]
    )
    partners = {NORDLICHT.partner_id: NORDLICHT, ALPENTECH.partner_id: ALPENTECH}
    message = compose(mail, partners, VENDOR)
    rendered = RENDERER.render(message, advisory=None, unsubscribe_url=None)
    assert "not approved" in rendered.subject
    assert "another partner's registered deal already protects" in rendered.text
    for marker in (ALPENTECH.partner_id, ALPENTECH.display_name, ALPENTECH.seller_code):
        assert marker not in rendered.text + rendered.html
    assert violations(message, rendered.parts(), partners.values()) == []
    body = json.loads(webhook_body(compose(hook, partners, VENDOR), None))
    assert body["type"] == "deal_decided"
    assert body["data"]["deal"]["reason"] == "deal_conflict"
    assert body["data"]["partner_id"] == NORDLICHT.partner_id
    assert ALPENTECH.partner_id not in json.dumps(body)


def test_the_examples_decisions_are_valid_envelopes() -> None:
    envelope = new_envelope(
        "deal.rejected",
        next(e.data for t, e in example_events() if e.event_type == "deal.rejected"),
        occurred_at=OCCURRED,
        producer="registration",
    )
    assert envelope.data.reason == "deal_conflict"  # type: ignore[attr-defined]
