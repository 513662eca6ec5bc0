"""Composition root of the commissions service: builds its API and its worker from Settings.

Real adapters by default; tests pass fakes for the ports that reach other systems
(partner keys, the published horizon, the clock).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from chassis.auth import PartnerKeyResolver
from chassis.consumer import TransactionalProcessor
from chassis.http import create_app
from chassis.lease import MongoLease
from chassis.metrics import WorkerCounters
from chassis.partner_keys import RegistrationKeyIntrospector
from chassis.worker import BackgroundTask, ProcessorFactory, instance_id
from services.commissions.adapters.kafka import KafkaLedgerPublisher, KafkaPublishedHorizon
from services.commissions.adapters.mongo import (
    MongoOrderLines,
    MongoOutbox,
    MongoRateTables,
    MongoRefundRegistry,
    MongoTransitions,
    prepare,
)
from services.commissions.adapters.partner_keys import partner_resolver
from services.commissions.config import Settings
from services.commissions.domain.decisions import Policy
from services.commissions.entrypoints.http import ApiServices, admin_router, partner_router
from services.commissions.service_layer.adjustments import Adjustments
from services.commissions.service_layer.ingest import LedgerIngest
from services.commissions.service_layer.lifecycle import LedgerLifecycle, payables_daily
from services.commissions.service_layer.ports import Clock, PublishedHorizon
from services.commissions.service_layer.queries import LedgerQueries
from services.commissions.service_layer.rate_tables import RateTables
from services.commissions.service_layer.relay import LEASE_TTL, relay_forever
from shared.topics import CHECKOUT_REFUNDS, REGISTRATION_ENTITLEMENTS

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Decides and computes commissions on direct renewals and upgrades; the "
    "append-only ledger finance books from."
)
Db = AsyncDatabase[dict[str, Any]]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def consumes(settings: Settings) -> list[str]:
    return [settings.entitlements_topic, settings.refunds_topic]


def produces(settings: Settings) -> list[str]:
    return [settings.ledger_topic]


def policy(settings: Settings) -> Policy:
    return Policy(
        hold_days=settings.hold_days, attribution_window_months=settings.attribution_window_months
    )


def lifecycle(
    settings: Settings, db: Db, horizon: PublishedHorizon | None = None, clock: Clock = utc_now
) -> LedgerLifecycle:
    return LedgerLifecycle(
        order_lines=MongoOrderLines(db),
        transitions=MongoTransitions(db),
        horizon=horizon or KafkaPublishedHorizon(settings.kafka_bootstrap, settings.worker_group),
        clock=clock,
        ledger_topic=settings.ledger_topic,
        min_payout_minor=settings.min_payout_minor,
    )


async def prepare_api(db: Db) -> None:
    """The API's requests read rate tables (the default one seeded here) and order lines."""
    await prepare(db)


async def prepare_worker(db: Db) -> None:
    """The ingest prices with the default rate table: seeded before the first batch."""
    await prepare(db)


def build_api(
    settings: Settings,
    *,
    partner_keys: PartnerKeyResolver | None = None,
    horizon: PublishedHorizon | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    admin_token = settings.admin_token.get_secret_value()
    introspector: RegistrationKeyIntrospector | None = None
    if partner_keys is None:
        introspector = RegistrationKeyIntrospector(
            settings.registration_url, admin_token, ttl_s=settings.partner_key_cache_seconds
        )
        partner_keys = introspector
    resolver = partner_resolver(partner_keys, admin_token)

    async def startup(app: FastAPI) -> None:
        db: Db = app.state.db
        app.state.commissions = ApiServices(
            queries=LedgerQueries(MongoOrderLines(db)),
            lifecycle=lifecycle(settings, db, horizon, clock),
            rate_tables=RateTables(MongoRateTables(db), clock),
            adjustments=Adjustments(
                order_lines=MongoOrderLines(db),
                transitions=MongoTransitions(db),
                clock=clock,
                ledger_topic=settings.ledger_topic,
            ),
            resolve_partner=resolver,
            admin_token=admin_token,
            clock=clock,
        )

    async def shutdown(_: FastAPI) -> None:
        if introspector is not None:
            await introspector.close()

    app = create_app(
        settings,
        title="Channelkeep commissions",
        description=DESCRIPTION,
        topics=[*consumes(settings), *produces(settings)],
        on_startup=startup,
        on_shutdown=shutdown,
        prepare=prepare_api,
    )
    app.include_router(partner_router)
    app.include_router(admin_router)
    return app


def build_ingest(
    settings: Settings, db: Db, counters: WorkerCounters | None = None
) -> LedgerIngest:
    return LedgerIngest(
        order_lines=MongoOrderLines(db),
        refund_ids=MongoRefundRegistry(db),
        rate_tables=MongoRateTables(db),
        policy=policy(settings),
        ledger_topic=settings.ledger_topic,
        counters=counters,
    )


def build_processors(settings: Settings) -> ProcessorFactory:
    def factory(db: Db, counters: WorkerCounters, instance: str) -> list[TransactionalProcessor]:
        ingest = build_ingest(settings, db, counters)
        return [
            TransactionalProcessor(
                bootstrap=settings.kafka_bootstrap,
                topics=consumes(settings),
                group_id=settings.worker_group,
                # One transactional id per loop, stable across restarts of the same instance,
                # so a restarted loop fences its killed predecessor.
                transactional_id=f"{settings.worker_group}-{instance}-{number}",
                # Static membership when the operator gives a stable WORKER_INSTANCE_ID (a
                # StatefulSet pod, ./dev up): a SIGKILLed worker's replacement takes over at
                # once. Off for throwaway ids, which would only leave ghost members behind.
                group_instance_id=(
                    f"{settings.worker_group}-{instance}-{number}"
                    if settings.worker_instance_id
                    else None
                ),
                handler=ingest.handle,
                counters=counters,
                transaction_timeout_ms=settings.kafka_transaction_timeout_ms,
                max_records=settings.consumer_batch_max,
                empty_fetch_backoff_ms=settings.consumer_empty_fetch_backoff_ms,
                producer_batch_bytes=settings.producer_batch_bytes,
                # The ingest is safe against a concurrent writer of the same order lines
                # (version checks, conflict rounds) and idempotent per input record, so
                # the next batch may be handled while this one waits for the database.
                max_in_flight=settings.batches_in_flight,
                schema_of={
                    settings.entitlements_topic: REGISTRATION_ENTITLEMENTS,
                    settings.refunds_topic: CHECKOUT_REFUNDS,
                },
            )
            for number in range(settings.worker_processors)
        ]

    return factory


def build_background(settings: Settings, clock: Clock = utc_now) -> list[BackgroundTask]:
    holder = instance_id(settings)

    def relay(db: Db, counters: WorkerCounters) -> Coroutine[Any, Any, None]:
        def publisher(epoch: str, published_mark: int) -> KafkaLedgerPublisher:
            return KafkaLedgerPublisher(
                settings.kafka_bootstrap,
                transactional_id=settings.outbox_relay_id,
                checkpoint_group=settings.outbox_relay_id,
                checkpoint_topic=settings.ledger_topic,
                epoch=epoch,
                fallback_checkpoint=published_mark,
                transaction_timeout_ms=settings.kafka_transaction_timeout_ms,
            )

        return relay_forever(
            outbox=MongoOutbox(db),
            lease=MongoLease(
                db, settings.outbox_relay_id, owner=holder, ttl=LEASE_TTL, clock=clock
            ),
            publisher_factory=publisher,
            interval_s=settings.relay_interval_seconds,
            counters=counters,
        )

    def daily_payables(db: Db, _: WorkerCounters) -> Coroutine[Any, Any, None]:
        return payables_daily(
            lifecycle(settings, db, clock=clock), clock, settings.payables_run_hour_utc
        )

    return [relay, daily_payables]
