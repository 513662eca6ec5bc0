"""Composition root of the registration service: builds its API and its worker from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from chassis.consumer import TransactionalProcessor
from chassis.http import create_app
from chassis.lease import MongoLease
from chassis.metrics import WorkerCounters
from chassis.partner_audit import AuditLog
from chassis.partner_audit_store import MongoPartnerAudit
from chassis.worker import BackgroundTask, ProcessorFactory, static_member_id
from services.registration.adapters.mongo import MongoUnitOfWork, ensure_indexes
from services.registration.adapters.mongo_customers import (
    MongoCustomerStore,
    ensure_customer_indexes,
)
from services.registration.adapters.outbox import LEASES as OUTBOX_LEASES
from services.registration.adapters.outbox import OutboxRelay
from services.registration.adapters.partner_keys import MongoPartnerKeyStore
from services.registration.adapters.tiers import LEASES as TIER_LEASES
from services.registration.adapters.tiers import MongoTierStore, ensure_tier_indexes
from services.registration.config import Settings
from services.registration.entrypoints.customer_dependencies import CustomerSelfService
from services.registration.entrypoints.dependencies import Services
from services.registration.entrypoints.routes import install as routes
from services.registration.service_layer.admission import Admission
from services.registration.service_layer.customers import CustomerService, CustomerStore
from services.registration.service_layer.deal_expiry import lease_ttl, run_deal_expiry
from services.registration.service_layer.deals import DealService
from services.registration.service_layer.entitlements import EntitlementService
from services.registration.service_layer.handlers import OrderStreamHandler
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partner_keys import PartnerKeyService, PartnerKeyStore
from services.registration.service_layer.partners import PartnerService
from services.registration.service_layer.rate_limit import TokenBucketLimiter
from services.registration.service_layer.registrations import RegistrationService
from services.registration.service_layer.tier_schedule import (
    LEASE,
    LEASE_TTL,
    DailyTierEvaluation,
    run_daily,
)
from services.registration.service_layer.tiers import TierService, TierStore
from services.registration.service_layer.unit_of_work import Clock, UnitOfWorkFactory
from shared.topics import (
    CHECKOUT_ORDERS,
    CHECKOUT_REFUNDS,
    REGISTRATION_CUSTOMERS,
    REGISTRATION_DEALS,
    REGISTRATION_ENTITLEMENTS,
    REGISTRATION_PARTNERS,
)

log = logging.getLogger(__name__)

# Refunds feed earned-tier revenue only (CONTRACT 6.4; services/registration/README.md).
CONSUMES = [CHECKOUT_ORDERS, CHECKOUT_REFUNDS]
PRODUCES = [
    REGISTRATION_PARTNERS,
    REGISTRATION_ENTITLEMENTS,
    REGISTRATION_DEALS,
    # Sensitive (CONTRACT 6.2): customers' sign-in links, for notifications alone.
    REGISTRATION_CUSTOMERS,
]
DESCRIPTION = (
    "Partner directory, seller codes, registrations and the partner of record of every entitlement."
)
WORKER_GROUP = "registration.worker"


def utc_now() -> dt.datetime:
    """Wall-clock UTC at millisecond precision (what the database and the wire keep)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def uow_factory(
    db: AsyncDatabase[dict[str, Any]],
    on_events: Callable[[], None] | None = None,
    admission: Admission | None = None,
) -> UnitOfWorkFactory:
    return lambda: MongoUnitOfWork(db, on_events_committed=on_events, admission=admission)


def build_services(
    settings: Settings,
    uow: UnitOfWorkFactory,
    clock: Clock,
    keys: PartnerKeyStore,
    audit: AuditLog,
    tier_store: TierStore | None = None,
) -> Services:
    return Services(
        tiers=TierService(tier_store, uow, clock) if tier_store is not None else None,
        partners=PartnerService(uow, clock),
        registrations=RegistrationService(
            uow,
            clock,
            window_months=settings.attribution_window_months,
            late_seller_code_days=settings.late_seller_code_days,
        ),
        entitlements=EntitlementService(uow, clock),
        keys=PartnerKeyService(uow, keys, audit, clock),
        seller_code_limiter=TokenBucketLimiter(settings.seller_code_lookups_per_minute),
        registration_limiter=TokenBucketLimiter(settings.registrations_per_minute),
        trusted_proxies=settings.trusted_proxies,
        clock=clock,
        admin_token=settings.admin_token.get_secret_value(),
        checkout_token=settings.checkout_token.get_secret_value(),
        deals=DealService(
            uow,
            clock,
            protection_days=settings.deal_protection_days,
            products=settings.product_catalogue(),
        ),
    )


def build_customer_services(
    settings: Settings, uow: UnitOfWorkFactory, store: CustomerStore, clock: Clock
) -> CustomerSelfService:
    """Customer self-service (CONTRACT 6.2): its use cases and its two rate limits."""
    return CustomerSelfService(
        customers=CustomerService(
            uow,
            store,
            clock,
            window_months=settings.attribution_window_months,
            sign_in_ttl=dt.timedelta(minutes=settings.sign_in_token_minutes),
            session_ttl=dt.timedelta(hours=settings.customer_session_hours),
        ),
        sign_in_limiter=TokenBucketLimiter(settings.customer_sign_ins_per_minute),
        address_limiter=TokenBucketLimiter(
            settings.customer_sign_ins_per_address_per_hour, period_s=3600.0
        ),
    )


async def prepare_api(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Every collection the API's requests use: partners, keys, audit, customers, tiers."""
    await ensure_indexes(db)
    keys = MongoPartnerKeyStore(db)
    await keys.ensure_indexes()
    await MongoPartnerAudit(db).ensure_indexes()
    await keys.migrate_creation_keys()
    await ensure_customer_indexes(db)
    await ensure_tier_indexes(db)


async def prepare_worker(db: AsyncDatabase[dict[str, Any]]) -> None:
    """What the order consumer and the daily tier evaluation write: entitlements, tiers."""
    await ensure_indexes(db)
    await ensure_tier_indexes(db)


def build_api(settings: Settings, *, clock: Clock = utc_now, run_relay: bool = True) -> FastAPI:
    """The API; its lifespan also runs the outbox relay (unless `run_relay` is False)."""

    async def on_startup(app: FastAPI) -> None:
        db = app.state.db
        relay_owner = f"{socket.gethostname()}-{os.getpid()}-{id(app)}"
        relay = OutboxRelay(db, lambda: app.state.producer, owner=relay_owner)
        app.state.outbox_relay = relay
        admission = Admission(settings.api_db_concurrency, max_wait_s=settings.api_db_queue_s)
        app.state.registration = build_services(
            settings,
            uow_factory(db, relay.wake, admission),
            clock,
            MongoPartnerKeyStore(db),
            MongoPartnerAudit(db),
            MongoTierStore(db),
        )
        app.state.customer_self_service = build_customer_services(
            settings, uow_factory(db, relay.wake, admission), MongoCustomerStore(db), clock
        )
        background: list[asyncio.Task[None]] = []
        if run_relay:
            background.append(asyncio.create_task(relay.run(), name="outbox-relay"))
        deals = app.state.registration.deals
        if settings.deal_expiry_interval_seconds > 0 and deals is not None:
            background.append(
                asyncio.create_task(
                    run_deal_expiry(
                        deals,
                        MongoLease(
                            db,
                            "deal-expiry",
                            owner=relay_owner,
                            ttl=lease_ttl(settings.deal_expiry_interval_seconds),
                            clock=clock,
                            collection=OUTBOX_LEASES,
                        ),
                        clock,
                        interval_s=settings.deal_expiry_interval_seconds,
                    ),
                    name="deal-expiry",
                )
            )
        app.state.registration_tasks = background

    async def on_shutdown(app: FastAPI) -> None:
        for task in app.state.registration_tasks:
            task.cancel()
        for task in app.state.registration_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await app.state.outbox_relay.release_lease()

    app = create_app(
        settings,
        title="Channelkeep registration",
        description=DESCRIPTION,
        topics=[*CONSUMES, *PRODUCES],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        prepare=prepare_api,
    )
    routes.install(app)
    return app


def order_handler(
    db: AsyncDatabase[dict[str, Any]],
    counters: WorkerCounters,
    settings: Settings,
    *,
    clock: Clock = utc_now,
    topic_map: dict[str, str] | None = None,
) -> OrderStreamHandler:
    """The batch handler of `checkout.orders.v1` for the chassis' TransactionalProcessor."""
    return OrderStreamHandler(
        applier=OrderApplier(
            uow_factory(db), clock, window_months=settings.attribution_window_months
        ),
        tiers=TierService(MongoTierStore(db), uow_factory(db), clock),
        counters=counters,
        topic_map=topic_map,
    )


def build_processors(
    settings: Settings,
    *,
    topics: list[str] | None = None,
    group_id: str = WORKER_GROUP,
    schema_of: dict[str, str] | None = None,
    topic_map: dict[str, str] | None = None,
    retry_backoff_s: float = 1.0,
) -> ProcessorFactory:
    """The worker's processors: the order consumer. The keyword options are for tests."""

    def factory(
        db: AsyncDatabase[dict[str, Any]], counters: WorkerCounters, instance: str
    ) -> list[TransactionalProcessor]:
        return [
            TransactionalProcessor(
                bootstrap=settings.kafka_bootstrap,
                topics=topics or CONSUMES,
                group_id=group_id,
                transactional_id=f"{group_id}-{instance}",
                group_instance_id=static_member_id(settings, f"{group_id}-{instance}"),
                handler=order_handler(db, counters, settings, topic_map=topic_map),
                counters=counters,
                transaction_timeout_ms=settings.kafka_transaction_timeout_ms,
                max_records=settings.consumer_batch_max,
                schema_of=schema_of,
                retry_backoff_s=retry_backoff_s,
                empty_fetch_backoff_ms=settings.consumer_empty_fetch_backoff_ms,
            )
        ]

    return factory


def tier_schedule(
    settings: Settings, *, clock: Clock = utc_now, stop: asyncio.Event | None = None
) -> BackgroundTask:
    """The worker's daily tier evaluation under a lease (CONTRACT 6.4).

    `stop` is the worker's (`run_worker_process`): a SIGTERM ends the run and releases
    the lease instead of cancelling it.
    """
    stopped = stop or asyncio.Event()

    async def background(db: AsyncDatabase[dict[str, Any]], counters: WorkerCounters) -> None:
        tiers = TierService(MongoTierStore(db), uow_factory(db), clock)
        schedule = DailyTierEvaluation(
            tiers,
            MongoTierStore(db),
            clock,
            run_hour_utc=settings.tier_evaluation_run_hour_utc,
            catch_up_days=settings.tier_evaluation_catch_up_days,
        )
        await run_daily(
            schedule,
            MongoLease(
                db,
                LEASE,
                owner=f"{socket.gethostname()}-{os.getpid()}",
                ttl=LEASE_TTL,
                clock=clock,
                collection=TIER_LEASES,
            ),
            stop=stopped,
        )

    return background
