"""A notifications service on the real broker and database, a real SMTP server, a real receiver."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from chassis.auth import PartnerPrincipal
from chassis.consumer import TransactionalProcessor
from chassis.kafka import ensure_topics, make_producer
from chassis.metrics import WorkerCounters
from devkit.processes import free_port
from services.notifications.adapters.indexes import ensure_indexes
from services.notifications.bootstrap import CONSUMES, build_api, build_background, build_processors
from services.notifications.config import Settings
from shared import seller_code
from shared.envelope import encode, new_envelope
from shared.events import (
    AdvisoryPublished,
    Branding,
    CommissionAccrued,
    Customer,
    EntitlementAttributionChanged,
    EntitlementRegistered,
    NoticePublished,
    PartnerCreated,
    PartnerOfRecord,
    PartnerUpdated,
)
from shared.ids import commission_line_id

T0 = dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
ADMIN = "integration-admin-token"


# --- a real SMTP server -------------------------------------------------------------------


class MailSink:
    """aiosmtpd in its own thread; keeps every message it accepted."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.port = free_port()
        self.delay_s = delay_s
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def mails(self, predicate: Callable[[EmailMessage], bool] = lambda m: True) -> list[Any]:
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def to(self, address: str, kind: str | None = None) -> list[Any]:
        return self.mails(
            lambda m: m["To"] == address and (kind is None or m["X-Notification-Type"] == kind)
        )


def body_text(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def body_html(message: Any) -> str:
    return str(message.get_body(("html",)).get_content())


# --- a real webhook receiver -----------------------------------------------------------------


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers `fail_first` requests with 503."""

    fail_first: int = 0
    always_fail: bool = False
    port: int = field(default_factory=free_port)
    requests: list[tuple[dict[str, str], str, int]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        failing = self.always_fail or len(self.requests) < self.fail_first
        status = 503 if failing else 204
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, body, status))
        return web.Response(status=status)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def succeeded(self) -> list[tuple[dict[str, str], str, int]]:
        return [r for r in self.requests if 200 <= r[2] < 300]


# --- events -------------------------------------------------------------------------------


def partner_event(
    partner_id: str,
    name: str,
    *,
    co_brand: bool = True,
    status: str = "active",
    at: dt.datetime = T0,
    renewal_mode: str = "vendor_direct",
    event_type: str = "partner.created",
) -> tuple[str, bytes]:
    """A partner.* event. Its renewal mode defaults to `vendor_direct`, not the contract's
    `partner_first`: most tests here check the reminders of CONTRACT 4, which that mode
    keeps; the CONTRACT 6.1 tests choose their modes."""
    slug = name.lower().replace(" ", "-")
    body = (partner_id.replace("-", "") + "0000000")[:7].upper().replace("O", "0")
    body = "".join(c if c in seller_code.ALPHABET else "7" for c in body)
    code = seller_code.format_code(body + seller_code.check_symbol(body))
    model = PartnerUpdated if event_type == "partner.updated" else PartnerCreated
    data = model(
        partner_id=partner_id,
        display_name=name,
        legal_name=f"{name} GmbH",
        type="var",
        tier="gold",
        status=status,  # type: ignore[arg-type]
        parent_partner_id=None,
        contact_email=f"partners@{slug}.example",
        branding=Branding(
            logo_url=f"https://{slug}.example/logo.png",
            color="#0B3D91",
            phone=f"+49 30 {sum(map(ord, partner_id)) * 7919 % 10_000_000:07d}",
            website=f"https://{slug}.example",
        ),
        co_brand_customer_messages=co_brand,
        customer_ids=[],
        seller_code=code,
        renewal_mode=renewal_mode,  # type: ignore[arg-type]
        effective_at=at,
    )
    return "registration.partners.v1", encode(
        new_envelope(event_type, data, occurred_at=at, producer="registration")
    )


def customer(n: int | str, org: str = "Müller Logistik GmbH") -> Customer:
    return Customer(
        customer_id=f"C-{n}",
        org_name=org,
        contact_name=f"Contact {n}",
        email=f"contact{n}@customer.example",
        country="DE",
    )


def entitlement_fields(
    key: str,
    who: Customer,
    partner_id: str | None,
    *,
    term_end: dt.date = dt.date(2028, 1, 9),
    product: str = "secure-pro",
) -> dict[str, Any]:
    return {
        "license_key": key,
        "product": product,
        "sku": f"{product.upper()}-1Y",
        "term_start": term_end - dt.timedelta(days=364),
        "term_end": term_end,
        "customer": who,
        "partner_of_record": PartnerOfRecord(
            partner_id=partner_id, since=T0, source="customer_registration"
        )
        if partner_id
        else None,
    }


def registered(key: str, who: Customer, partner_id: str | None, **kw: Any) -> tuple[str, bytes]:
    data = EntitlementRegistered(**entitlement_fields(key, who, partner_id, **kw))
    return "registration.entitlements.v1", encode(
        new_envelope("entitlement.registered", data, occurred_at=T0, producer="registration")
    )


def attribution_changed(
    key: str, who: Customer, new: str | None, previous: str | None, at: dt.datetime = T0
) -> tuple[str, bytes]:
    data = EntitlementAttributionChanged(
        **entitlement_fields(key, who, new), previous_partner_id=previous
    )
    return "registration.entitlements.v1", encode(
        new_envelope(
            "entitlement.attribution_changed", data, occurred_at=at, producer="registration"
        )
    )


def accrued(partner_id: str, order_id: str = "WEB-100017") -> tuple[str, bytes]:
    data = CommissionAccrued(
        line_id=commission_line_id(order_id, "1", partner_id, "partner_of_record"),
        partner_id=partner_id,
        role="partner_of_record",
        order_id=order_id,
        line_ref="1",
        license_key="LK-0001",
        refund_id=None,
        kind="renewal",
        tier="gold",
        base_amount_minor=123457,
        rate_bps=1500,
        amount_minor=18519,
        currency="EUR",
        status="accrued",
        rate_table_version=1,
        occurred_at=T0,
        payable_at=T0 + dt.timedelta(days=30),
    )
    return "commissions.ledger.v1", encode(
        new_envelope("commission.accrued", data, occurred_at=T0, producer="commissions")
    )


def advisory(advisory_id: str, products: list[str], title: str = "Agent flaw") -> tuple[str, bytes]:
    data = AdvisoryPublished(
        advisory_id=advisory_id,
        severity="high",
        title=title,
        summary="A local user can gain SYSTEM rights through the update agent.",
        url=f"https://vendor.example/advisories/{advisory_id}",
        products=products,
    )
    return "vendor.advisories.v1", encode(
        new_envelope("advisory.published", data, occurred_at=T0, producer="security")
    )


def notice(
    notice_id: str,
    products: list[str],
    title: str = "Service Pack 2",
    kind: str = "service_pack",
) -> tuple[str, bytes]:
    data = NoticePublished(
        notice_id=notice_id,
        kind=kind,  # type: ignore[arg-type]
        title=title,
        summary="Faster scans and a new reporting view; install it within 90 days.",
        url=f"https://vendor.example/notices/{notice_id}",
        products=products,
    )
    return "vendor.notices.v1", encode(
        new_envelope("notice.published", data, occurred_at=T0, producer="product")
    )


def with_new_event_id(record: tuple[str, bytes]) -> tuple[str, bytes]:
    doc = json.loads(record[1])
    doc["event_id"] = str(uuid.uuid4())
    return record[0], json.dumps(doc).encode()


# --- the service -------------------------------------------------------------------------


class Service:
    """Settings, fresh topics, an in-process worker (processors + background) and the API."""

    def __init__(
        self, kafka: str, mongo_url: str, run: str, smtp_port: int, **overrides: Any
    ) -> None:
        self.run = run
        self.topics = {f"{t}.{run}": t for t in CONSUMES}
        self.contract_to_actual = {v: k for k, v in self.topics.items()}
        self.deliveries_topic = f"notifications.deliveries.v1.{run}"
        values: dict[str, Any] = {
            "environment": "dev",
            "kafka_bootstrap": kafka,
            "mongo_url": mongo_url,
            "NOTIFICATIONS_MONGO_DB": f"notif_{run}",
            "admin_token": ADMIN,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "webhook_allow_loopback": True,
            "dispatch_idle_seconds": 0.05,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 1.0,
            "topic_partitions": 2,
            "lease_seconds": 5,
            "reminder_run_hour_utc": 23,
            **overrides,
        }
        self.settings = Settings(**values)
        self.group = f"notifications-{run}"
        self.partner_keys: dict[str, str] = {}
        self._worker: tuple[asyncio.Event, list[asyncio.Task[Any]], list[Any], Any] | None = None
        self.counters = WorkerCounters()

    async def provision(self) -> None:
        await ensure_topics(
            self.settings.kafka_bootstrap,
            [*self.topics, self.deliveries_topic],
            partitions=2,
        )

    async def produce(self, *records: tuple[str, bytes]) -> None:
        producer = make_producer(self.settings.kafka_bootstrap)
        await producer.start()
        try:
            for contract_topic, value in records:
                key = json.loads(value)["data"].get("license_key", "k").encode()
                await producer.send_and_wait(
                    self.contract_to_actual[contract_topic], value, key=key
                )
        finally:
            await producer.stop()

    async def start_worker(self, *, group: str | None = None, instance: str = "w1") -> None:
        stop = asyncio.Event()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.settings.mongo_url.get_secret_value(), tz_aware=True
        )
        db = client[self.settings.mongo_db]
        await ensure_indexes(db)  # as the worker's `prepare` step does, before any write
        processors: list[TransactionalProcessor] = list(
            build_processors(self.settings, topics=self.topics, group_id=group or self.group)(
                db, self.counters, instance
            )
        )
        tasks: list[asyncio.Task[Any]] = []
        for processor in processors:
            await processor.start()
            tasks.append(asyncio.create_task(processor.run()))
        for background in build_background(
            self.settings, stop=stop, deliveries_topic=self.deliveries_topic, owner=instance
        ):
            tasks.append(asyncio.create_task(background(db, self.counters)))
        self._worker = (stop, tasks, processors, client)

    async def stop_worker(self) -> None:
        if self._worker is None:
            return
        stop, tasks, processors, client = self._worker
        stop.set()
        for processor in processors:
            processor.request_stop()
        await asyncio.wait(tasks, timeout=10)
        for processor in processors:
            with contextlib.suppress(Exception):
                await processor.stop()
        await client.close()
        self._worker = None

    @contextlib.asynccontextmanager
    async def api(self) -> AsyncIterator[httpx.AsyncClient]:
        async def resolve(key: str) -> PartnerPrincipal | None:
            partner_id = self.partner_keys.get(key)
            return PartnerPrincipal(partner_id) if partner_id else None

        app = build_api(self.settings, partner_keys=resolve)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://notif") as client:
                yield client

    async def dispatched_idle(self) -> None:
        """Waits until nothing is pending that is due now (anything replayed would be)."""
        client, db = self.db()
        try:

            async def idle() -> bool:
                query = {"status": "pending", "next_attempt_at": {"$lte": dt.datetime.now(dt.UTC)}}
                return await db.deliveries.count_documents(query) == 0

            await asyncio.sleep(1.0)
            await until(idle, what="the dispatcher to go idle")
        finally:
            await client.close()

    def db(self) -> Any:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.settings.mongo_url.get_secret_value(), tz_aware=True
        )
        return client, client[self.settings.mongo_db]


async def eventually(check: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "") -> None:
    """`eventually` for checks that read the database."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


async def read_topic(bootstrap: str, topic: str, settle_s: float = 1.5) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    got.append(
                        {"value": json.loads(record.value), "headers": dict(record.headers or ())}
                    )
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return got
