"""Composition root of the notifications service: builds its API and its worker from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from chassis.auth import PartnerKeyResolver
from chassis.consumer import TransactionalProcessor
from chassis.http import create_app
from chassis.kafka import make_producer
from chassis.lease import MongoLease
from chassis.metrics import WorkerCounters
from chassis.partner_audit_store import MongoPartnerAudit
from chassis.partner_keys import RegistrationKeyIntrospector
from chassis.retry import retry_until_ready
from chassis.worker import BackgroundTask, ProcessorFactory, instance_id, static_member_id
from services.notifications.adapters.indexes import ensure_indexes
from services.notifications.adapters.outcomes import KafkaOutcomePublisher
from services.notifications.adapters.rendering import Renderer
from services.notifications.adapters.smtp import SmtpSender
from services.notifications.adapters.stores import Stores, reminder_pass
from services.notifications.adapters.webhooks import (
    FernetSecretBox,
    HttpWebhookSender,
    new_signing_secret,
    resolve,
)
from services.notifications.config import Settings
from services.notifications.domain.model import Vendor
from services.notifications.domain.retry import RetryPolicy
from services.notifications.entrypoints import partner_audit
from services.notifications.entrypoints.dependencies import ApiServices
from services.notifications.entrypoints.routes import router
from services.notifications.service_layer.advisories import AdvisoryFanout
from services.notifications.service_layer.background import DailyReminders, run_as_leader
from services.notifications.service_layer.dispatch import Dispatcher, DispatchSettings
from services.notifications.service_layer.handlers import EventHandler
from services.notifications.service_layer.ports import (
    Clock,
    EmailSender,
    SystemClock,
    WebhookSender,
)
from shared.topics import (
    COMMISSIONS_LEDGER,
    NOTIFICATIONS_DELIVERIES,
    REGISTRATION_CUSTOMERS,
    REGISTRATION_DEALS,
    REGISTRATION_ENTITLEMENTS,
    REGISTRATION_PARTNERS,
    VENDOR_ADVISORIES,
    VENDOR_NOTICES,
)

log = logging.getLogger(__name__)

CONSUMES = [
    REGISTRATION_PARTNERS,
    REGISTRATION_ENTITLEMENTS,
    VENDOR_ADVISORIES,
    VENDOR_NOTICES,
    COMMISSIONS_LEDGER,
    REGISTRATION_DEALS,
    # Sensitive (CONTRACT 6.2): sign-in tokens; notifications is its only reader.
    REGISTRATION_CUSTOMERS,
]
DELIVERIES_TOPIC = NOTIFICATIONS_DELIVERIES
PRODUCES = [DELIVERIES_TOPIC]
DESCRIPTION = (
    "Welcome mails, renewal reminders, partner alerts, security advisories "
    "and product notices, by e-mail and signed webhooks."
)


def vendor_of(settings: Settings) -> Vendor:
    return Vendor(
        name=settings.vendor_name,
        website=settings.vendor_website,
        logo_url=settings.vendor_logo_url,
        color=settings.vendor_color,
        support_email=settings.vendor_support_email,
        renew_url=settings.vendor_renew_url,
        phone=settings.vendor_phone or None,
        contact_confirmation_url=settings.vendor_contact_confirmation_url,
        customer_sign_in_url=f"{settings.portal_url.rstrip('/')}/customer/sign-in",
    )


# --- API ------------------------------------------------------------------------------------


def build_api(
    settings: Settings,
    *,
    partner_keys: PartnerKeyResolver | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    verifier = partner_keys
    owned: RegistrationKeyIntrospector | None = None
    if verifier is None:
        owned = RegistrationKeyIntrospector(
            settings.registration_url,
            settings.admin_token.get_secret_value(),
            ttl_s=settings.partner_key_cache_seconds,
        )
        verifier = owned

    the_clock = clock or SystemClock()
    webhook_senders: list[HttpWebhookSender] = []

    async def startup(app: FastAPI) -> None:
        stores = Stores.over(app.state.db)
        # One HTTP client for the process (the test event), not one per request.
        sender = webhook_sender_of(settings)
        webhook_senders.append(sender)
        app.state.notifications = ApiServices(
            deliveries=stores.delivery_log,
            webhooks=stores.webhooks,
            preferences=stores.preferences,
            reminders=reminder_pass(stores, the_clock, WorkerCounters()),
            webhook_sender=sender,
            resolve_host=resolve,
            new_signing_secret=new_signing_secret,
            secret_box=secret_box_of(settings),
            partner_audit=MongoPartnerAudit(app.state.db),
            resolve_partner=verifier,
            admin_token=settings.admin_token.get_secret_value(),
            unsubscribe_secret=settings.unsubscribe_secret.get_secret_value().encode(),
            webhook_allow_loopback=settings.webhook_allow_loopback,
            clock=the_clock,
        )

    async def shutdown(app: FastAPI) -> None:
        for sender in webhook_senders:
            with contextlib.suppress(Exception):
                await sender.close()
        if owned is not None:
            await owned.close()

    app = create_app(
        settings,
        title="Channelkeep notifications",
        description=DESCRIPTION,
        topics=[*CONSUMES, *PRODUCES],
        on_startup=startup,
        on_shutdown=shutdown,
        prepare=prepare_api,
    )
    app.include_router(router)
    app.include_router(partner_audit.router)
    return app


async def prepare_api(db: AsyncDatabase[dict[str, Any]]) -> None:
    """The stores the routes read and write (`ensure_indexes`), and the partner audit."""
    await ensure_indexes(db)
    await MongoPartnerAudit(db).ensure_indexes()


# --- worker ---------------------------------------------------------------------------------


async def prepare_worker(db: AsyncDatabase[dict[str, Any]]) -> None:
    """The stores the stream handler and the dispatcher write (`ensure_indexes`)."""
    await ensure_indexes(db)


def build_processors(
    settings: Settings,
    *,
    topics: Mapping[str, str] | None = None,
    group_id: str = "notifications.worker",
    clock: Clock | None = None,
) -> ProcessorFactory:
    """`topics` maps the topics to consume to the contract topic they carry (tests)."""
    consumed = dict(topics or {t: t for t in CONSUMES})

    def factory(
        db: AsyncDatabase[dict[str, Any]], counters: WorkerCounters, instance: str
    ) -> Sequence[TransactionalProcessor]:
        stores = Stores.over(db)
        handler = EventHandler(
            projections=stores.projections,
            deliveries=stores.deliveries,
            webhooks=stores.webhooks,
            advisory_jobs=stores.advisory_jobs,
            clock=clock or SystemClock(),
            counters=counters,
        )
        return [
            TransactionalProcessor(
                bootstrap=settings.kafka_bootstrap,
                topics=list(consumed),
                schema_of=consumed,
                group_id=group_id,
                transactional_id=f"{group_id}-{instance}",
                group_instance_id=static_member_id(settings, f"{group_id}-{instance}"),
                handler=handler,
                counters=counters,
                transaction_timeout_ms=settings.kafka_transaction_timeout_ms,
                max_records=settings.consumer_batch_max,
                empty_fetch_backoff_ms=settings.consumer_empty_fetch_backoff_ms,
            )
        ]

    return factory


def secret_box_of(settings: Settings) -> FernetSecretBox:
    return FernetSecretBox(settings.webhook_keys(), settings.legacy_webhook_key_material())


def webhook_sender_of(settings: Settings) -> HttpWebhookSender:
    return HttpWebhookSender(
        timeout=settings.webhook_timeout_seconds,
        max_response_bytes=settings.webhook_response_max_bytes,
        allow_loopback=settings.webhook_allow_loopback,
    )


def build_background(
    settings: Settings,
    *,
    stop: asyncio.Event,
    deliveries_topic: str = DELIVERIES_TOPIC,
    clock: Clock | None = None,
    email_sender: EmailSender | None = None,
    webhook_sender: WebhookSender | None = None,
    owner: str | None = None,
) -> list[BackgroundTask]:
    """The dispatcher, the advisory fan-out and the daily reminder scheduler, as one task."""
    the_clock = clock or SystemClock()

    async def background(db: AsyncDatabase[dict[str, Any]], counters: WorkerCounters) -> None:
        stores = Stores.over(db)  # indexes: `prepare_worker`, run before this starts
        producer = make_producer(settings.kafka_bootstrap)
        smtp = email_sender or SmtpSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            domain=settings.smtp_from.rpartition("@")[2].rstrip(">") or "localhost",
            connections=settings.smtp_connections,
            timeout=settings.smtp_timeout_seconds,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() or None,
            start_tls=settings.smtp_starttls,
        )
        hooks = webhook_sender or webhook_sender_of(settings)
        try:
            if not await retry_until_ready("starting the producer", producer.start, stop=stop):
                return
            dispatcher = Dispatcher(
                deliveries=stores.deliveries,
                projections=stores.projections,
                preferences=stores.preferences,
                webhooks=stores.webhooks,
                advisories=stores.advisory_jobs,
                email_sender=smtp,
                webhook_sender=hooks,
                publisher=KafkaOutcomePublisher(producer, deliveries_topic),
                secret_box=secret_box_of(settings),
                renderer=Renderer(vendor_of(settings)),
                vendor=vendor_of(settings),
                clock=the_clock,
                counters=counters,
                settings=DispatchSettings(
                    from_address=settings.smtp_from,
                    public_base_url=settings.public_base_url,
                    unsubscribe_secret=settings.unsubscribe_secret.get_secret_value().encode(),
                    email_retry=RetryPolicy(
                        settings.email_max_attempts,
                        settings.retry_base_seconds,
                        settings.retry_max_seconds,
                    ),
                    webhook_retry=RetryPolicy(
                        settings.webhook_max_attempts,
                        settings.retry_base_seconds,
                        settings.retry_max_seconds,
                    ),
                    batch_size=settings.dispatch_batch_size,
                    concurrency=settings.dispatch_concurrency,
                ),
                stop=stop,
            )
            fanout = AdvisoryFanout(
                jobs=stores.advisory_jobs,
                entitlements=stores.projections,
                deliveries=stores.deliveries,
                webhooks=stores.webhooks,
                clock=the_clock,
                counters=counters,
                page_size=settings.advisory_page_size,
            )
            scheduler = DailyReminders(
                reminder_pass=reminder_pass(stores, the_clock, counters),
                state=stores.reminder_runs,
                clock=the_clock,
                run_hour_utc=settings.reminder_run_hour_utc,
                catch_up_days=settings.reminder_catch_up_days,
            )

            async def dispatch_step() -> bool:
                return await dispatcher.run_once() > 0

            def lease(name: str) -> MongoLease:
                return MongoLease(
                    db,
                    name,
                    owner=owner or instance_id(settings),
                    ttl=dt.timedelta(seconds=settings.lease_seconds),
                    clock=the_clock.now,
                )

            common: dict[str, Any] = {"counters": counters, "stop": stop}
            await asyncio.gather(
                run_as_leader(
                    lease("dispatcher"),
                    dispatch_step,
                    idle_seconds=settings.dispatch_idle_seconds,
                    **common,
                ),
                run_as_leader(lease("advisory-fanout"), fanout.step, idle_seconds=1.0, **common),
                run_as_leader(
                    lease("reminder-scheduler"), scheduler.step, idle_seconds=60.0, **common
                ),
            )
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            for owned in (smtp, hooks):
                if isinstance(owned, SmtpSender | HttpWebhookSender):
                    with contextlib.suppress(Exception):
                        await owned.close()

    return [background]
