"""The dispatcher with fakes of its ports: once per record, isolation refusals, retries."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import rules
from services.notifications.domain.model import (
    NOTIFICATION_TYPES,
    ListedEntitlement,
    PlannedDelivery,
    contact_id,
)
from services.notifications.domain.retry import RetryPolicy
from services.notifications.service_layer.dispatch import Dispatcher, DispatchSettings
from services.notifications.service_layer.ports import DeliveryError, WebhookConfig
from tests.unit.notifications.builders import (
    ALPENTECH,
    JANA,
    NORDLICHT,
    OCCURRED,
    VENDOR,
    entitlement,
)
from tests.unit.notifications.fakes import (
    FakeAdvisories,
    FakeClock,
    FakeCounters,
    FakeDeliveries,
    FakeEmailSender,
    FakePreferences,
    FakeProjections,
    FakePublisher,
    FakeWebhooks,
    FakeWebhookSender,
    PlainBox,
)
from tests.unit.notifications.test_isolation import ADVISORY
from tests.unit.notifications.test_rules import AS_OF, commission_line
from tests.unit.notifications.test_templates import NOTICE

NOW = dt.datetime(2027, 10, 11, 6, 0, tzinfo=dt.UTC)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.projections = FakeProjections([NORDLICHT, ALPENTECH])
        self.deliveries = FakeDeliveries()
        self.preferences = FakePreferences()
        self.webhooks = FakeWebhooks()
        self.email = FakeEmailSender()
        self.hooks = FakeWebhookSender()
        self.publisher = FakePublisher()
        self.counters = FakeCounters()
        self.dispatcher = Dispatcher(
            deliveries=self.deliveries,
            projections=self.projections,
            preferences=self.preferences,
            webhooks=self.webhooks,
            advisories=FakeAdvisories([ADVISORY, NOTICE]),
            email_sender=self.email,
            webhook_sender=self.hooks,
            publisher=self.publisher,
            secret_box=PlainBox(),
            renderer=Renderer(VENDOR),
            vendor=VENDOR,
            clock=self.clock,
            counters=self.counters,
            settings=DispatchSettings(
                from_address="Channelkeep <no-reply@vendor.example>",
                public_base_url="https://notify.vendor.example",
                unsubscribe_secret=b"test-secret",
                email_retry=RetryPolicy(3, 5, 60),
                webhook_retry=RetryPolicy(3, 5, 60),
            ),
            jitter=lambda: 0.0,
        )

    def status(self, notification_id: str) -> str:
        return self.deliveries.records[notification_id].status


async def test_each_record_is_sent_once_marked_and_its_outcome_published() -> None:
    world = World()
    plans = rules.plan_reminders(
        [entitlement("LK-A", NORDLICHT), entitlement("LK-B", ALPENTECH)], 90, AS_OF, OCCURRED
    )
    await world.deliveries.plan(plans, NOW)
    await world.deliveries.plan(plans, NOW)  # replayed event: nothing new
    assert await world.dispatcher.run_once() == 2
    assert await world.dispatcher.run_once() == 0
    assert len(world.email.sent) == 2
    assert {world.status(p.notification_id) for p in plans} == {"sent"}
    assert [s.status for s in world.publisher.published] == ["sent", "sent"]
    assert world.deliveries.outbox == set()
    sent = {m.notification_id: m for m in world.email.sent}
    nordlicht = sent[next(p.notification_id for p in plans if p.partner_scope == "P-GOLD01")]
    assert (
        nordlicht.from_address == "Nordlicht IT via Channelkeep Software <no-reply@vendor.example>"
    )
    assert nordlicht.list_unsubscribe_url is not None
    assert "Alpentech" not in nordlicht.text + nordlicht.html


async def test_an_isolation_violation_is_refused_counted_and_never_sent() -> None:
    world = World()
    plan = rules.plan_reminders([entitlement("LK-A", NORDLICHT)], 90, AS_OF, OCCURRED)[0]
    mixed = dataclasses.replace(
        plan,
        entitlements=(*plan.entitlements, ListedEntitlement.of(entitlement("LK-B", ALPENTECH))),
    )
    await world.deliveries.plan([mixed], NOW)
    await world.dispatcher.run_once()
    assert world.email.sent == []
    state = world.deliveries.records[mixed.notification_id]
    assert state.status == "failed" and state.error is not None
    assert state.error == "isolation_violation"  # the contract's code, exactly (6.8)
    assert state.error_detail == "mixes_partner_scopes"
    assert world.counters.total("notifications_isolation_violations_total") == 1
    assert [s.status for s in world.publisher.published] == ["failed"]
    assert world.publisher.published[0].error_detail == "mixes_partner_scopes"


async def test_resellers_sharing_a_support_line_both_get_their_customer_reminded() -> None:
    """The acceptance defect (CONTRACT 6.8): a shared phone refused every reminder."""
    world = World()
    shared_line = dataclasses.replace(ALPENTECH, phone=NORDLICHT.phone)
    world.projections.by_id[ALPENTECH.partner_id] = shared_line
    plans = rules.plan_reminders(
        [entitlement("LK-A", NORDLICHT), entitlement("LK-B", shared_line)], 30, AS_OF, OCCURRED
    )
    assert len(plans) == 2
    await world.deliveries.plan(plans, NOW)
    await world.dispatcher.run_once()
    assert {world.status(p.notification_id) for p in plans} == {"sent"}
    assert world.counters.total("notifications_isolation_violations_total") == 0
    # ... and the counter is there at 0 from the start, for every type (alerts need a series).
    zeroes = {
        dict(labels)["type"]
        for (name, labels), value in world.counters.values.items()
        if name == "notifications_isolation_violations_total" and value == 0
    }
    assert zeroes == set(NOTIFICATION_TYPES)
    for sent in world.email.sent:
        assert NORDLICHT.phone in sent.text  # type: ignore[operator]  # each names its own line


async def test_product_notices_honour_unsubscribes_and_digests_carry_the_notice() -> None:
    """CONTRACT 6.6: a notice goes like an advisory, but an unsubscribe stops it."""
    world = World()
    solo = dataclasses.replace(JANA, email="solo@kunde.example")
    await world.preferences.unsubscribe(contact_id(JANA.email), NOW)
    stopped = rules.plan_product_notice("NTC-3", [entitlement("LK-A", NORDLICHT)], OCCURRED)
    sent = rules.plan_product_notice(
        "NTC-3", [entitlement("LK-B", ALPENTECH, customer=solo)], OCCURRED
    )
    world.webhooks.configs[NORDLICHT.partner_id] = WebhookConfig(
        NORDLICHT.partner_id, "https://hooks.nordlicht-it.example/in", "whsec_x"
    )
    digests = rules.plan_notice_digest(
        "NTC-3",
        NORDLICHT.partner_id,
        [entitlement("LK-A", NORDLICHT)],
        1,
        OCCURRED,
        ["email", "webhook"],
    )
    assert stopped is not None and sent is not None
    await world.deliveries.plan([stopped, sent, *digests], NOW)
    await world.dispatcher.run_once()
    assert world.status(stopped.notification_id) == "suppressed"
    assert world.deliveries.records[stopped.notification_id].error == "unsubscribed"
    assert {world.status(p.notification_id) for p in (sent, *digests)} == {"sent"}
    mail = next(m for m in world.email.sent if m.notification_id == sent.notification_id)
    assert NOTICE["title"] in mail.text and mail.list_unsubscribe_url is not None
    assert "Alpentech" not in mail.text + mail.html  # vendor-branded, names no partner
    [(_, _, webhook_id, body)] = world.hooks.calls
    assert webhook_id == digests[1].notification_id
    assert '"type":"notice_partner_digest"' in body and '"notice_id":"NTC-3"' in body


async def test_unsubscribes_stop_reminders_but_never_advisories() -> None:
    world = World()
    await world.preferences.unsubscribe(contact_id(JANA.email), NOW)
    reminder = rules.plan_reminders([entitlement("LK-A", None)], 30, AS_OF, OCCURRED)[0]
    advisory = rules.plan_security_advisory("ADV-7", [entitlement("LK-A", None)], OCCURRED)
    assert advisory is not None
    await world.deliveries.plan([reminder, advisory], NOW)
    await world.dispatcher.run_once()
    assert world.status(reminder.notification_id) == "suppressed"
    assert world.deliveries.records[reminder.notification_id].error == "unsubscribed"
    assert world.status(advisory.notification_id) == "sent"
    assert [m.notification_type for m in world.email.sent] == ["security_advisory"]
    assert world.email.sent[0].list_unsubscribe_url is None


async def test_a_failing_webhook_is_retried_with_backoff_then_succeeds_with_the_same_id() -> None:
    world = World()
    await world.webhooks.set(
        WebhookConfig("P-GOLD01", "https://hooks.nordlicht-it.example/in", "sealed:whsec_x"), NOW
    )
    plans = rules.plan_commission(
        "commission.accrued", commission_line(), OCCURRED, ["email", "webhook"]
    )
    hook = next(p for p in plans if p.channel == "webhook")
    await world.deliveries.plan(plans, NOW)
    world.hooks.failures = [DeliveryError("webhook_http_503")]
    await world.dispatcher.run_once()
    state = world.deliveries.records[hook.notification_id]
    assert (state.status, state.attempts, state.error) == ("pending", 1, "webhook_http_503")
    assert state.next_attempt_at == NOW + dt.timedelta(seconds=2.5)
    assert await world.dispatcher.run_once() == 0  # not due yet
    world.clock.advance(3)
    await world.dispatcher.run_once()
    assert world.status(hook.notification_id) == "sent"
    assert world.deliveries.records[hook.notification_id].attempts == 2
    ids = {call[2] for call in world.hooks.calls}
    assert ids == {hook.notification_id}
    assert {call[1] for call in world.hooks.calls} == {"whsec_x"}
    assert len(world.email.sent) == 1


async def test_after_max_attempts_the_delivery_fails_and_is_recorded() -> None:
    world = World()
    await world.webhooks.set(WebhookConfig("P-GOLD01", "https://h.example/in", "sealed:s"), NOW)
    hook = rules.plan_commission("commission.accrued", commission_line(), OCCURRED, ["webhook"])[0]
    await world.deliveries.plan([hook], NOW)
    world.hooks.failures = [DeliveryError("webhook_timeout")] * 3
    for _ in range(3):
        await world.dispatcher.run_once()
        world.clock.advance(120)
    state = world.deliveries.records[hook.notification_id]
    assert (state.status, state.attempts, state.error) == ("failed", 3, "webhook_timeout")
    assert [s.status for s in world.publisher.published] == ["failed"]


@pytest.mark.parametrize(
    ("error", "status"), [(DeliveryError("smtp_550", permanent=True), "failed")]
)
async def test_a_permanent_smtp_refusal_is_not_retried(error: DeliveryError, status: str) -> None:
    world = World()
    welcome = rules.plan_welcome(entitlement("LK-A", None), OCCURRED)
    await world.deliveries.plan([welcome], NOW)
    world.email.failures = [error]
    await world.dispatcher.run_once()
    assert world.status(welcome.notification_id) == status


async def test_partner_messages_wait_for_an_unknown_partner_and_skip_inactive_ones() -> None:
    world = World()
    stranger = dataclasses.replace(NORDLICHT, partner_id="P-NEW99")
    line = commission_line().model_copy(update={"partner_id": stranger.partner_id})
    waiting = rules.plan_commission("commission.accrued", line, OCCURRED, ["email"])[0]
    await world.deliveries.plan([waiting], NOW)
    await world.dispatcher.run_once()
    assert world.deliveries.records[waiting.notification_id].error == "unknown_partner"
    assert world.status(waiting.notification_id) == "pending"

    inactive = dataclasses.replace(ALPENTECH, status="terminated")
    world.dispatcher.projections = FakeProjections([NORDLICHT, inactive])
    opportunity = rules.plan_renewal_opportunities(
        inactive.partner_id, [entitlement("LK-B", ALPENTECH)], AS_OF, OCCURRED, ["email"]
    )[0]
    await world.deliveries.plan([opportunity], NOW)
    await world.dispatcher.run_once()
    assert world.status(opportunity.notification_id) == "suppressed"


async def test_a_webhook_delivery_without_a_webhook_is_suppressed() -> None:
    world = World()
    hook = rules.plan_commission("commission.accrued", commission_line(), OCCURRED, ["webhook"])[0]
    await world.deliveries.plan([hook], NOW)
    await world.dispatcher.run_once()
    assert world.deliveries.records[hook.notification_id].error == "no_webhook"
    assert world.status(hook.notification_id) == "suppressed"


def advisory_for(n: int) -> PlannedDelivery:
    who = dataclasses.replace(JANA, customer_id=f"C-{n}", email=f"contact{n}@customer.example")
    plan = rules.plan_security_advisory(
        "ADV-7", [entitlement(f"LK-{n:04d}", None, customer=who)], OCCURRED
    )
    assert plan is not None
    return plan


async def test_a_backlog_is_read_a_window_at_a_time_and_every_record_goes_once() -> None:
    world = World()
    world.dispatcher.settings = dataclasses.replace(
        world.dispatcher.settings, batch_size=5, concurrency=2
    )
    # Forty records planned over the last four seconds, ten at a time.
    planned = [advisory_for(n) for n in range(40)]
    for page in range(4):
        at = NOW - dt.timedelta(seconds=4 - page)
        await world.deliveries.plan(planned[page * 10 : page * 10 + 10], at)
    runs = 0
    while await world.dispatcher.run_once():
        runs += 1
        if runs == 3:
            # Planned late with an older time (another clock, a slow insert): not skipped.
            late = advisory_for(99)
            await world.deliveries.plan([late], NOW - dt.timedelta(seconds=10))
            planned.append(late)
    sent = [m.notification_id for m in world.email.sent]
    assert sorted(sent) == sorted(p.notification_id for p in planned)
    assert all(world.status(p.notification_id) == "sent" for p in planned)
    # While there was a backlog, the database was not asked for everything up to now.
    assert any(asked < NOW for asked in world.deliveries.due_asked)
    assert world.deliveries.due_asked[-1] == NOW  # caught up: up to now again


async def test_a_wave_settles_with_one_time_for_all_its_records() -> None:
    world = World()
    planned = [advisory_for(n) for n in range(6)]
    await world.deliveries.plan(planned, NOW)
    await world.dispatcher.run_once()
    finished = {world.deliveries.records[p.notification_id].finished_at for p in planned}
    assert finished == {NOW}
