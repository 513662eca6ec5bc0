"""Sends planned deliveries: exactly one attempt at a time per record, outcomes via an outbox.

For each due record: decide whether it may go at all (unsubscribed, partner
inactive, no webhook), compose and render it, check isolation, send. Records
go out in waves of `concurrency`; after each wave its outcomes are published
and the wave's records are settled in one write (final, or pending with the
next attempt time). If publishing fails, the records are settled into the
outbox and published later. A crash between a send and its settling leaves the
record pending, so it is sent again on restart: at most one wave (see README).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.utils
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.notifications.domain import isolation
from services.notifications.domain import unsubscribe as unsubscribe_tokens
from services.notifications.domain.messages import Message, UnknownPartner, compose
from services.notifications.domain.model import (
    ANNOUNCEMENT_TYPES,
    NOTICE_TYPES,
    NOTIFICATION_TYPES,
    Partner,
    Vendor,
    announcement_key,
    contact_id,
)
from services.notifications.domain.payloads import webhook_body
from services.notifications.domain.retry import RetryPolicy
from services.notifications.domain.rules import honours_unsubscribe, needs_active_partner
from services.notifications.service_layer.ports import (
    FINAL_STATUSES,
    Advisories,
    Clock,
    Counters,
    Deliveries,
    DeliveryError,
    DeliveryState,
    EmailRenderer,
    EmailSender,
    OutcomePublisher,
    OutgoingEmail,
    Preferences,
    Projections,
    SecretBox,
    WebhookConfig,
    Webhooks,
    WebhookSender,
)
from services.notifications.service_layer.webhook_secrets import open_secret

log = logging.getLogger(__name__)

INITIAL_HORIZON_SPAN = dt.timedelta(seconds=1)
MIN_HORIZON_SPAN = dt.timedelta(milliseconds=1)
MAX_HORIZON_SPAN = dt.timedelta(days=1)
# The name CONTRACT 6.8 and operators' alerts use; `chassis.metrics` keeps a worker
# counter named after its service as it is (no `channelkeep_worker_` prefix).
ISOLATION_VIOLATIONS = "notifications_isolation_violations_total"


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    from_address: str
    public_base_url: str
    unsubscribe_secret: bytes
    email_retry: RetryPolicy
    webhook_retry: RetryPolicy
    batch_size: int = 200
    concurrency: int = 16


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: a final status, or `retry` with the error."""

    status: str  # sent | failed | suppressed | retry
    error: str | None = None
    attempted: bool = True
    error_detail: str | None = None


@dataclass
class _BatchContext:
    partners: dict[str, Partner]
    unsubscribed: set[str]
    webhooks: dict[str, WebhookConfig]
    advisories: dict[str, Mapping[str, Any]]


class Dispatcher:
    def __init__(
        self,
        *,
        deliveries: Deliveries,
        projections: Projections,
        preferences: Preferences,
        webhooks: Webhooks,
        advisories: Advisories,
        email_sender: EmailSender,
        webhook_sender: WebhookSender,
        publisher: OutcomePublisher,
        secret_box: SecretBox,
        renderer: EmailRenderer,
        vendor: Vendor,
        clock: Clock,
        counters: Counters,
        settings: DispatchSettings,
        jitter: Callable[[], float] = random.random,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.projections = projections
        self.preferences = preferences
        self.webhooks = webhooks
        self.advisories = advisories
        self.email_sender = email_sender
        self.webhook_sender = webhook_sender
        self.publisher = publisher
        self.secret_box = secret_box
        self.renderer = renderer
        self.vendor = vendor
        self.clock = clock
        self.counters = counters
        self.settings = settings
        self.jitter = jitter
        self.stop = stop
        self._horizon: dt.datetime | None = None  # see `_due`
        self._span = INITIAL_HORIZON_SPAN
        # Exported at 0 from the start, so an alert on it has a series to watch.
        for notification_type in NOTIFICATION_TYPES:
            counters.inc(ISOLATION_VIOLATIONS, 0, type=notification_type)

    async def run_once(self) -> int:
        """One batch of due records; returns how many were handled (0: nothing due).

        The batch goes out in waves of `concurrency` sends; each wave's outcomes are
        published and the wave is settled with one write, so at most one wave can be
        sent again after a crash (see the README).
        """
        await self.publish_outcomes()
        batch = await self._due()
        if not batch:
            return 0
        context = await self._context(batch)
        handled = 0
        size = self.settings.concurrency
        for start in range(0, len(batch), size):
            if self.stop is not None and self.stop.is_set():
                self._horizon = None
                break  # shutting down: the rest stays pending for the next run
            wave = batch[start : start + size]
            outcomes = await asyncio.gather(*(self.attempt(s, context) for s in wave))
            now = self.clock.now()  # one time per wave: its records settle together
            await self._settle(
                [self._settled(s, o, now) for s, o in zip(wave, outcomes, strict=True)]
            )
            handled += len(wave)
        return handled

    async def _due(self) -> list[DeliveryState]:
        """The oldest due records, asking the database about a bounded time range.

        The embedded database reads every record in the asked range before it
        sorts and limits, so asking for everything due up to now costs the whole
        backlog on each batch and a 100k fan-out turns quadratic. While there is
        a backlog the dispatcher asks up to a horizon a little past the last
        record it got (widened while answers come back short, narrowed while
        they are full) rather than up to now. There is no lower bound: a record
        planned late with an older time is still the first one found.
        """
        now = self.clock.now()
        limit = self.settings.batch_size
        while True:
            horizon = now if self._horizon is None else min(now, self._horizon)
            batch = await self.deliveries.due(horizon, limit)
            if len(batch) >= limit:
                self._span = max(self._span / 2, MIN_HORIZON_SPAN)
                self._horizon = batch[-1].next_attempt_at + self._span
                return batch
            self._span = min(self._span * 2, MAX_HORIZON_SPAN)
            if horizon >= now:
                self._horizon = None  # caught up
                return batch
            self._horizon = horizon + self._span
            if batch:
                return batch

    async def publish_outcomes(self) -> int:
        published = 0
        while True:
            pending = await self.deliveries.unpublished(500)
            if not pending:
                return published
            await self.publisher.publish(pending)
            await self.deliveries.mark_published([s.planned.notification_id for s in pending])
            published += len(pending)
            self.counters.inc("delivery_outcomes_published_total", len(pending))

    async def _context(self, batch: list[DeliveryState]) -> _BatchContext:
        partner_ids: set[str] = set()
        advisory_ids: set[str] = set()
        webhook_partners: set[str] = set()
        contacts: set[str] = set()
        for state in batch:
            planned = state.planned
            partner_ids.update(planned.related_partner_ids)
            if planned.partner_scope:
                partner_ids.add(planned.partner_scope)
            if planned.audience == "partner":
                partner_ids.add(planned.recipient)
            if planned.channel == "webhook":
                webhook_partners.add(planned.recipient)
            key = announcement_key(planned.facts)
            if key is not None:
                advisory_ids.add(key)
            if planned.audience == "customer" and honours_unsubscribe(planned.type):
                contacts.add(contact_id(planned.recipient))
        partners = await self.projections.partners(partner_ids)
        for state in batch:
            planned = state.planned
            if planned.audience == "partner" and planned.recipient in partners:
                contacts.add(contact_id(partners[planned.recipient].contact_email))
        return _BatchContext(
            partners=partners,
            unsubscribed=await self.preferences.unsubscribed(contacts),
            webhooks=await self.webhooks.of(webhook_partners),
            advisories=dict(await self.advisories.advisories(advisory_ids)),
        )

    async def attempt(self, state: DeliveryState, context: _BatchContext) -> Outcome:
        planned = state.planned
        try:
            message = compose(planned, context.partners, self.vendor)
        except UnknownPartner:
            return Outcome("retry", "unknown_partner", attempted=False)
        partner = message.to_partner
        if partner is not None and needs_active_partner(planned.type) and not partner.active:
            return Outcome("suppressed", "partner_inactive", attempted=False)
        # The advisory's or product notice's text, from its fan-out job.
        advisory = context.advisories.get(announcement_key(planned.facts) or "")
        if planned.type in ANNOUNCEMENT_TYPES and advisory is None:
            unknown = "notice_unknown" if planned.type in NOTICE_TYPES else "advisory_unknown"
            return Outcome("retry", unknown, attempted=False)
        related = [
            context.partners[p] for p in planned.related_partner_ids if p in context.partners
        ]
        if planned.channel == "email":
            return await self._email(message, advisory, related, context)
        return await self._webhook(message, advisory, related, context)

    async def _email(
        self,
        message: Message,
        advisory: Mapping[str, Any] | None,
        related: list[Partner],
        context: _BatchContext,
    ) -> Outcome:
        planned = message.delivery
        contact = contact_id(message.to_address)
        if honours_unsubscribe(planned.type) and contact in context.unsubscribed:
            return Outcome("suppressed", "unsubscribed", attempted=False)
        unsubscribe_url = None
        if message.list_unsubscribe:
            token = unsubscribe_tokens.sign(contact, self.settings.unsubscribe_secret)
            unsubscribe_url = f"{self.settings.public_base_url.rstrip('/')}/v1/unsubscribe/{token}"
        rendered = self.renderer.render(message, advisory=advisory, unsubscribe_url=unsubscribe_url)
        refused = self._isolation(message, rendered.parts(), related, advisory)
        if refused is not None:
            return refused
        try:
            await self.email_sender.send(
                OutgoingEmail(
                    notification_id=planned.notification_id,
                    to_address=message.to_address,
                    from_address=self._from(message),
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    list_unsubscribe_url=unsubscribe_url,
                    notification_type=planned.type,
                )
            )
        except DeliveryError as error:
            return Outcome("failed" if error.permanent else "retry", error.code)
        return Outcome("sent")

    async def _webhook(
        self,
        message: Message,
        advisory: Mapping[str, Any] | None,
        related: list[Partner],
        context: _BatchContext,
    ) -> Outcome:
        planned = message.delivery
        config = context.webhooks.get(planned.recipient)
        if config is None:
            return Outcome("suppressed", "no_webhook", attempted=False)
        body = webhook_body(message, advisory)
        refused = self._isolation(message, (body,), related, advisory)
        if refused is not None:
            return refused
        try:
            secret = await open_secret(self.secret_box, self.webhooks, config)
            await self.webhook_sender.send(
                config.url, secret, planned.notification_id, self.clock.now(), body
            )
        except DeliveryError as error:
            return Outcome("failed" if error.permanent else "retry", error.code)
        return Outcome("sent")

    def _isolation(
        self,
        message: Message,
        rendered: tuple[str, ...],
        related: list[Partner],
        announcement: Mapping[str, Any] | None,
    ) -> Outcome | None:
        """Refuse a message that would break isolation (CONTRACT 6.8).

        The record fails with `error: "isolation_violation"` (the contract's code)
        and the reasons, codes that name nobody, in `error_detail`. The counter is
        exported on `/metrics` under its own name (see `chassis.metrics.render`).
        """
        common = isolation.vendor_texts(self.vendor, announcement)
        found = isolation.violations(message, rendered, related, common=common)
        if not found:
            return None
        planned = message.delivery
        self.counters.inc(ISOLATION_VIOLATIONS, type=planned.type)
        log.error(
            "isolation violation: message refused",
            extra={
                "notification_id": planned.notification_id,
                "type": planned.type,
                "violations": found,
            },
        )
        return Outcome(
            "failed", isolation.ERROR_CODE, attempted=False, error_detail=",".join(found)
        )

    def _from(self, message: Message) -> str:
        name, address = email.utils.parseaddr(self.settings.from_address)
        if message.branding.is_partner:
            name = f"{message.branding.name} via {self.vendor.name}"
        return email.utils.formataddr((name or self.vendor.name, address))

    def _settled(self, state: DeliveryState, outcome: Outcome, now: dt.datetime) -> DeliveryState:
        """The record after this attempt: final, or pending with its next attempt time."""
        planned = state.planned
        attempts = state.attempts + (1 if outcome.attempted else 0)
        if outcome.status == "retry":
            policy = (
                self.settings.webhook_retry
                if planned.channel == "webhook"
                else self.settings.email_retry
            )
            tries = max(attempts, state.attempts + 1)
            if not policy.gives_up_after(tries):
                return dataclasses.replace(
                    state,
                    attempts=tries,
                    next_attempt_at=now + policy.delay(tries, self.jitter()),
                    error=outcome.error or "retry",
                )
            return dataclasses.replace(
                state, status="failed", attempts=tries, error=outcome.error, finished_at=now
            )
        return dataclasses.replace(
            state,
            status=outcome.status,  # type: ignore[arg-type]
            attempts=attempts,
            error=outcome.error,
            error_detail=outcome.error_detail,
            finished_at=now,
        )

    async def _settle(self, settled: list[DeliveryState]) -> None:
        finals = [s for s in settled if s.status in FINAL_STATUSES]
        published = False
        if finals:
            try:
                await self.publisher.publish(finals)
                published = True
            except Exception as error:
                # Never lose the mark over the broker: the outbox publishes these later.
                log.warning("publishing outcomes failed", extra={"error": type(error).__name__})
        await self.deliveries.settle(settled, published=published)
        for state in settled:
            planned = state.planned
            if state.status == "pending":
                self.counters.inc("delivery_retries_total", channel=planned.channel)
                continue
            self.counters.inc(
                "deliveries_total", type=planned.type, channel=planned.channel, status=state.status
            )
            log.info(
                "delivery finished",
                extra={
                    "notification_id": planned.notification_id,
                    "type": planned.type,
                    "channel": planned.channel,
                    "status": state.status,
                    "attempts": state.attempts,
                    "error": state.error,
                },
            )
