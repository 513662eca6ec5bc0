"""The Channelkeep story, told through the suite's public interfaces only.

A reseller under a distributor sells a licence; the customer registers it with
the reseller's seller code; a year later the customer renews direct in the web
shop, later upgrades at a retail counter, gets a partial refund, and the vendor
publishes a security advisory. Used by `./dev demo` (with a progress display)
and by the end-to-end test (with assertions). Everything goes through the
contract: Kafka topics and HTTP endpoints, never a service's database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from chassis.kafka import make_producer
from shared.envelope import encode, key_for, new_envelope, parse_event
from shared.events import (
    AdvisoryPublished,
    Customer,
    EventData,
    OrderLine,
    OrderPlaced,
    RefundIssued,
)
from shared.topics import (
    CHECKOUT_ORDERS,
    CHECKOUT_REFUNDS,
    COMMISSIONS_LEDGER,
    VENDOR_ADVISORIES,
)

Step = Callable[[str], None]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class WebhookReceiver:
    """A partner's webhook endpoint on 127.0.0.1: keeps every request it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/channelkeep"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def types(self) -> list[str]:
        return [json.loads(r["body"]).get("type", "") for r in self.received]


@dataclass
class Suite:
    registration: str
    commissions: str
    notifications: str
    kafka_bootstrap: str
    admin_token: str


@dataclass
class StoryResult:
    run: str
    distributor: dict[str, Any] = field(default_factory=dict)
    reseller: dict[str, Any] = field(default_factory=dict)
    license_key: str = ""
    customer_email: str = ""
    orders: dict[str, str] = field(default_factory=dict)
    refund_id: str = ""
    advisory_id: str = ""
    registration: dict[str, Any] = field(default_factory=dict)
    entitlement: dict[str, Any] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    webhook_secret: str = ""


TRACES: dict[str, str] = {}
"""The trace id each published event started, by "<event_type> <record key>"
(`./dev demo --trace`; a refund has its order's key)."""


async def _publish(bootstrap: str, items: list[tuple[str, str, EventData, dt.datetime]]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for topic, event_type, data, when in items:
            envelope = new_envelope(event_type, data, occurred_at=when, producer="demo-checkout")
            key = key_for(topic, envelope)
            # As a traced checkout would: each event starts a trace (W3C traceparent), which
            # the services carry to every record derived from it (chassis.tracing).
            trace_id = uuid.uuid4().hex
            TRACES[f"{event_type} {key.decode()}"] = trace_id
            traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01".encode()
            await producer.send_and_wait(
                topic, encode(envelope), key=key, headers=[("traceparent", traceparent)]
            )
    finally:
        await producer.stop()


async def _until(check: Callable[[], Awaitable[Any]], what: str, wait_s: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.5)


async def read_ledger(bootstrap: str, partner_ids: set[str], expect: int) -> list[dict[str, Any]]:
    """What finance sees: `commissions.ledger.v1`, read_committed, for these partners."""
    consumer = AIOKafkaConsumer(
        COMMISSIONS_LEDGER,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    lines: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        quiet_until = None
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = parse_event(COMMISSIONS_LEDGER, record.value)
                    data = envelope.data.model_dump(mode="json")
                    if data["partner_id"] in partner_ids:
                        lines.append({"event_type": envelope.event_type, **data})
            if len(lines) >= expect:
                # Keep reading a little: a duplicate would show up here.
                quiet_until = quiet_until or asyncio.get_running_loop().time() + 2
                if asyncio.get_running_loop().time() > quiet_until:
                    break
    finally:
        await consumer.stop()
    return lines


async def tell(suite: Suite, step: Step, webhook_url: str | None = None) -> StoryResult:
    run = uuid.uuid4().hex[:6].upper()
    result = StoryResult(run=run)
    admin = {"Authorization": f"Bearer {suite.admin_token}"}
    async with httpx.AsyncClient(timeout=15) as http:

        async def call(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
            response = await http.request(method, url, **kwargs)
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
            return dict(response.json()) if response.content else {}

        step("The vendor signs up a distributor and a reseller under it")
        result.distributor = await call(
            "POST",
            f"{suite.registration}/v1/admin/partners",
            headers=admin,
            json={
                "display_name": "Nordic Channel Distribution",
                "legal_name": "Nordic Channel AB",
                "type": "distributor",
                "tier": "gold",
                "contact_email": f"partners-{run.lower()}@nordic-channel.example",
                "branding": {
                    "logo_url": "https://nordic-channel.example/logo.png",
                    "color": "#0B5394",
                    "phone": "+46 8 555 0100",
                    "website": "https://nordic-channel.example",
                },
                "co_brand_customer_messages": False,
                "customer_ids": [],
            },
        )
        result.reseller = await call(
            "POST",
            f"{suite.registration}/v1/admin/partners",
            headers=admin,
            json={
                "display_name": "Alpine IT Services",
                "legal_name": "Alpine IT Services GmbH",
                "type": "var",
                "tier": "gold",
                "parent_partner_id": result.distributor["partner_id"],
                "contact_email": f"sales-{run.lower()}@alpine-it.example",
                "branding": {
                    "logo_url": "https://alpine-it.example/logo.png",
                    "color": "#C0392B",
                    "phone": "+43 1 555 0199",
                    "website": "https://alpine-it.example",
                },
                "co_brand_customer_messages": True,
                "customer_ids": [f"C-ALP-{run}"],
            },
        )
        reseller_key = {"Authorization": f"Bearer {result.reseller['api_key']}"}
        if webhook_url:
            step("The reseller points its webhook at its own CRM")
            hook = await call(
                "PUT",
                f"{suite.notifications}/v1/partner/webhook",
                headers=reseller_key,
                json={"url": webhook_url},
            )
            result.webhook_secret = str(hook.get("secret", ""))

        result.license_key = f"LK-DEMO-{run}"
        result.customer_email = f"jana.{run.lower()}@mueller-logistik.example"
        customer = Customer(
            customer_id=f"C-881-{run}",
            org_name="Müller Logistik GmbH",
            contact_name="Jana Müller",
            email=result.customer_email,
            country="DE",
        )

        def order(
            order_id: str,
            channel: str,
            storefront: str,
            kind: str,
            product: str,
            sku: str,
            start: str,
            end: str,
            net: int,
            partner_code: str | None = None,
            seller_code: str | None = None,
        ) -> OrderPlaced:
            result.orders[kind] = order_id
            return OrderPlaced(
                order_id=order_id,
                sales_channel=channel,
                storefront=storefront,
                partner_code=partner_code,
                seller_code=seller_code,
                currency="EUR",
                customer=customer,
                lines=[
                    OrderLine(
                        line_id="1",
                        kind=kind,
                        license_key=result.license_key,
                        sku=sku,
                        product=product,
                        quantity=1,
                        term_start=dt.date.fromisoformat(start),
                        term_end=dt.date.fromisoformat(end),
                        net_amount_minor=net,
                    )
                ],
            )

        step("Alpine IT sells Secure Pro to Müller Logistik (partner channel)")
        code = result.reseller["seller_code"]
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    CHECKOUT_ORDERS,
                    "order.placed",
                    order(
                        f"PRT-{run}-1",
                        "partner",
                        "marketplace",
                        "new",
                        "secure-pro",
                        "SECURE-PRO-1Y",
                        "2026-01-10",
                        "2027-01-09",
                        98000,
                        partner_code=code,
                    ),
                    at("2026-01-10T09:00:00Z"),
                )
            ],
        )

        async def entitlement_exists() -> bool:
            response = await http.get(
                f"{suite.registration}/v1/admin/entitlements/{result.license_key}", headers=admin
            )
            return response.status_code == 200

        await _until(entitlement_exists, "the entitlement from the partner sale")

        step("The customer registers the licence with Alpine IT's seller code")
        result.registration = await call(
            "POST",
            f"{suite.registration}/v1/registrations",
            json={
                "license_key": result.license_key,
                "seller_code": code,
                "customer": customer.model_dump(mode="json"),
            },
        )

        step("A year on, the customer renews direct in the vendor's web shop")
        step("...then upgrades to Vault Enterprise at a retail counter, and gets a refund")
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    CHECKOUT_ORDERS,
                    "order.placed",
                    order(
                        f"WEB-{run}-2",
                        "direct",
                        "web",
                        "renewal",
                        "secure-pro",
                        "SECURE-PRO-1Y",
                        "2027-01-10",
                        "2028-01-09",
                        123457,
                        seller_code=code,
                    ),
                    at("2027-01-05T10:00:00Z"),
                ),
                (
                    CHECKOUT_REFUNDS,
                    "refund.issued",
                    RefundIssued(
                        refund_id=f"RF-{run}-1",
                        order_id=f"WEB-{run}-2",
                        line_id="1",
                        amount_minor=61728,
                        currency="EUR",
                        reason="seat_reduction",
                    ),
                    at("2027-01-20T08:15:00Z"),
                ),
                (
                    CHECKOUT_ORDERS,
                    "order.placed",
                    order(
                        f"POS-{run}-3",
                        "direct",
                        "retail",
                        "upgrade",
                        "vault-enterprise",
                        "VAULT-ENT-1Y",
                        "2027-03-01",
                        "2028-01-09",
                        250000,
                    ),
                    at("2027-03-01T14:30:00Z"),
                ),
            ],
        )
        result.refund_id = f"RF-{run}-1"

        step("The vendor publishes a security advisory for Secure Pro and Vault")
        result.advisory_id = f"VSA-2027-{run}"
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    VENDOR_ADVISORIES,
                    "advisory.published",
                    AdvisoryPublished(
                        advisory_id=result.advisory_id,
                        severity="high",
                        title="Privilege escalation in the update agent",
                        summary="Install agent 8.4.2 or later.",
                        url=f"https://vendor.example/advisories/{result.advisory_id}",
                        products=["secure-pro", "vault-enterprise"],
                    ),
                    at("2027-03-10T07:00:00Z"),
                )
            ],
        )

        step("Finance runs the payables pass as of 2027-04-01")
        partners = {result.reseller["partner_id"], result.distributor["partner_id"]}

        async def accrued_and_clawed() -> bool:
            response = await http.get(
                f"{suite.commissions}/v1/admin/commissions",
                params={"partner_id": result.reseller["partner_id"]},
                headers=admin,
            )
            body = response.json() if response.status_code == 200 else {}
            lines = body.get("lines", body) if isinstance(body, dict) else body
            return isinstance(lines, list) and len(lines) >= 3

        await _until(accrued_and_clawed, "the commission lines")
        await call(
            "POST",
            f"{suite.commissions}/v1/admin/payables/run",
            params={"as_of": "2027-04-01"},
            headers=admin,
        )

        step("Reading what finance sees on commissions.ledger.v1")
        # accrued x4 (renewal, upgrade; partner and distributor), clawed back x2, payable x6
        result.ledger = await read_ledger(suite.kafka_bootstrap, partners, expect=12)
        result.entitlement = await call(
            "GET", f"{suite.registration}/v1/admin/entitlements/{result.license_key}", headers=admin
        )
    return result
