"""The Channelkeep story, told through the suite's public interfaces only.

A reseller under a distributor sells a licence; the customer registers it with
the reseller's seller code. Renewal is partner-first (CONTRACT 6.1): the
reminder pass tells the reseller at -90 days and steers the customer to it at
-30; the web shop asks whom to steer to at checkout, yet the customer renews
direct and the reseller is paid. Later the customer upgrades at a retail
counter, gets a partial refund, and the vendor publishes a security advisory.
The customer, who also buys from a second reseller, signs in, sees both
licences and grants the first reseller `view` access (6.2); a service pack is
announced (6.6); the reseller registers a deal that a direct order wins (6.3),
is promoted by a tier evaluation (6.4), and finance books an adjustment that
shows on its statement (6.5). Used by `./dev demo` (with a progress display)
and by the end-to-end test (with assertions). Everything goes through the
contract: Kafka topics, HTTP endpoints and the mail sink's `.eml` files, never a
service's database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import httpx
from aiokafka import AIOKafkaConsumer

from chassis.kafka import make_producer
from devkit.up import DEV_CHECKOUT_TOKEN
from shared.envelope import encode, key_for, new_envelope, parse_event
from shared.events import (
    AdvisoryPublished,
    Customer,
    EventData,
    NoticePublished,
    OrderLine,
    OrderPlaced,
    RefundIssued,
)
from shared.topics import (
    CHECKOUT_ORDERS,
    CHECKOUT_REFUNDS,
    COMMISSIONS_LEDGER,
    VENDOR_ADVISORIES,
    VENDOR_NOTICES,
)

Step = Callable[[str], None]
PARTNERS_SINCE = "2025-12-01T00:00:00Z"
TERM_END = dt.date(2027, 1, 9)  # of the licence Alpine IT sells


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
    checkout_token: str = DEV_CHECKOUT_TOKEN


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
    # CONTRACT 6.1: the reminder pass's deliveries for the licence at -90 and -30
    reminders: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    steered_reminder: str = ""  # the -30 customer reminder's plain text
    steer_back: dict[str, Any] = field(default_factory=dict)  # checkout's answer
    # CONTRACT 6.2
    second_reseller: dict[str, Any] = field(default_factory=dict)
    second_license_key: str = ""
    sign_in_token: str = ""
    session_token: str = ""
    customer_licences: list[dict[str, Any]] = field(default_factory=list)
    granted: dict[str, Any] = field(default_factory=dict)
    # CONTRACT 6.6
    notice_id: str = ""
    notice_mails: list[str] = field(default_factory=list)  # "to: subject"
    # CONTRACT 6.3, 6.4, 6.5
    deal: dict[str, Any] = field(default_factory=dict)
    deal_entitlement: dict[str, Any] = field(default_factory=dict)
    tier_evaluation: dict[str, Any] = field(default_factory=dict)
    tier: dict[str, Any] = field(default_factory=dict)
    adjustment: dict[str, Any] = field(default_factory=dict)
    statement: dict[str, Any] = field(default_factory=dict)
    narration: list[str] = field(default_factory=list)


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


def eur(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d} EUR"


async def _until(check: Callable[[], Awaitable[Any]], what: str, wait_s: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.5)


def read_mail(mail_dir: Path) -> list[EmailMessage]:
    """The mail sink's messages (one `.eml` file each), oldest name first."""
    messages = []
    for path in sorted(mail_dir.glob("*.eml")):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        messages.append(parsed)
    return messages


def mail_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


async def wait_for_mail(
    mail_dir: Path, to: str, subject_has: str, body_has: str = "", wait_s: float = 60.0
) -> EmailMessage:
    """The first message in the sink to `to` whose subject (and text) say these."""

    async def found() -> EmailMessage | None:
        for message in read_mail(mail_dir):
            if (
                to in str(message.get("To", ""))
                and subject_has in str(message["Subject"])
                and (not body_has or body_has in mail_text(message))
            ):
                return message
        return None

    return cast(EmailMessage, await _until(found, f"the mail '{subject_has}' to {to}", wait_s))


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


async def tell(
    suite: Suite, report: Step, *, mail_dir: Path, webhook_url: str | None = None
) -> StoryResult:
    run = uuid.uuid4().hex[:6].upper()
    result = StoryResult(run=run)

    def step(text: str) -> None:
        result.narration.append(text)
        report(text)

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
                # In force before the story's first sale, so the reminder pass of
                # 2026 finds it active (CONTRACT 6.1: the mode and status at as_of).
                "effective_at": PARTNERS_SINCE,
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
                "effective_at": PARTNERS_SINCE,
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
            license_key: str | None = None,
            buyer: Customer | None = None,
        ) -> OrderPlaced:
            result.orders.setdefault(kind, order_id)
            return OrderPlaced(
                order_id=order_id,
                sales_channel=channel,
                storefront=storefront,
                partner_code=partner_code,
                seller_code=seller_code,
                currency="EUR",
                customer=buyer or customer,
                lines=[
                    OrderLine(
                        line_id="1",
                        kind=kind,
                        license_key=license_key or result.license_key,
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

        reseller_name = result.reseller["display_name"]
        mode = result.reseller.get("renewal_mode", "partner_first")
        step(
            f"Renewal mode of {reseller_name}: {mode} (the default); "
            "notifications knows the licence once the welcome mail is out"
        )
        await wait_for_mail(mail_dir, result.customer_email, "is registered")

        async def reminder_pass(as_of: dt.date) -> list[dict[str, Any]]:
            await call(
                "POST",
                f"{suite.notifications}/v1/admin/reminders/run",
                params={"as_of": as_of.isoformat()},
                headers=admin,
            )
            # The pass plans before it answers: its deliveries for the licence are there.
            found = await call(
                "GET",
                f"{suite.notifications}/v1/admin/deliveries",
                params={"license_key": result.license_key, "limit": 500},
                headers=admin,
            )
            return [
                d
                for d in found["deliveries"]
                if d["notification_type"] in ("renewal_reminder", "renewal_opportunity")
            ]

        minus_90 = TERM_END - dt.timedelta(days=90)
        planned_90 = await reminder_pass(minus_90)
        result.reminders[90] = planned_90
        opportunity = await wait_for_mail(
            mail_dir, result.reseller["contact_email"], "Renewal opportunity", result.license_key
        )
        customer_90 = [d for d in planned_90 if d["notification_type"] == "renewal_reminder"]
        step(
            f"-90 days ({minus_90}): reminder pass; {reseller_name} is told "
            f"(renewal_opportunity: '{opportunity['Subject']}'); "
            f"the customer is {'mailed' if customer_90 else 'NOT mailed'}"
        )

        minus_30 = TERM_END - dt.timedelta(days=30)
        result.reminders[30] = await reminder_pass(minus_30)
        reminder = await wait_for_mail(mail_dir, result.customer_email, "ends in 30 days")
        result.steered_reminder = mail_text(reminder)
        text_lines = [line.strip() for line in result.steered_reminder.splitlines()]
        steer = next(
            (line.split(",")[0] for line in text_lines if "renew with your partner" in line),
            "(names no partner)",
        )
        contact = list(
            dict.fromkeys(
                " ".join(line.split()) for line in text_lines if line.startswith(("Phone:", "Web:"))
            )
        )
        if contact:
            steer += f" ({', '.join(contact)})"
        subject = str(reminder["Subject"])
        step(f"-30 days ({minus_30}): the customer's reminder '{subject}': {steer}")

        step("At checkout the web shop asks whom this customer renews with")
        result.steer_back = await call(
            "GET",
            f"{suite.registration}/v1/checkout/entitlements/{result.license_key}/partner-of-record",
            headers={"Authorization": f"Bearer {suite.checkout_token}"},
        )
        por_now = result.steer_back.get("partner") or {}
        step(
            f"Checkout: renew with {por_now.get('display_name', 'the vendor')} "
            f"({por_now.get('website', '')}, {por_now.get('phone', '')})"
        )

        step("A year on, the customer renews direct in the vendor's web shop anyway")
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
                    # Dated the day the first term ends: the licence is unexpired at the
                    # advisory's date whichever of its terms (and products) notifications
                    # has read by then; the renewal and upgrade are still on their way.
                    at("2027-01-09T07:00:00Z"),
                )
            ],
        )

        async def entitlement_of(license_key: str) -> dict[str, Any] | None:
            response = await http.get(
                f"{suite.registration}/v1/admin/entitlements/{license_key}", headers=admin
            )
            return dict(response.json()) if response.status_code == 200 else None

        step("Bergtal Systemhaus, a second reseller, sells the same customer Secure Team")
        result.second_reseller = await call(
            "POST",
            f"{suite.registration}/v1/admin/partners",
            headers=admin,
            json={
                "display_name": "Bergtal Systemhaus",
                "legal_name": "Bergtal Systemhaus KG",
                "type": "var",
                "tier": "silver",
                "contact_email": f"vertrieb-{run.lower()}@bergtal-systemhaus.example",
                "branding": {
                    "logo_url": "https://bergtal-systemhaus.example/logo.png",
                    "color": "#2E7D32",
                    "phone": "+49 89 555 0142",
                    "website": "https://bergtal-systemhaus.example",
                },
                "co_brand_customer_messages": False,
                "customer_ids": [],
                "effective_at": PARTNERS_SINCE,
            },
        )
        result.second_license_key = f"LK-DEMO-{run}-B"
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    CHECKOUT_ORDERS,
                    "order.placed",
                    order(
                        f"PRT-{run}-B",
                        "partner",
                        "marketplace",
                        "new",
                        "secure-team",
                        "SECURE-TEAM-1Y",
                        "2026-11-02",
                        "2027-11-01",
                        49900,
                        partner_code=result.second_reseller["seller_code"],
                        license_key=result.second_license_key,
                    ),
                    at("2026-11-02T11:00:00Z"),
                )
            ],
        )
        await _until(
            lambda: entitlement_of(result.second_license_key), "the entitlement from Bergtal's sale"
        )

        step("The customer asks for a sign-in link (POST /v1/customer/sign-in)")
        await call(
            "POST",
            f"{suite.registration}/v1/customer/sign-in",
            json={"email": result.customer_email},
        )
        link_mail = await wait_for_mail(mail_dir, result.customer_email, "sign-in link")
        token = re.search(r"token=([A-Za-z0-9_\-.~]+)", mail_text(link_mail))
        if token is None:
            raise RuntimeError("the sign-in mail carries no token")
        result.sign_in_token = token.group(1)
        session = await call(
            "POST", f"{suite.registration}/v1/customer/sessions", json={"token": token.group(1)}
        )
        result.session_token = str(session["session_token"])
        customer_auth = {"Authorization": f"Bearer {result.session_token}"}
        listed = await call(
            "GET", f"{suite.registration}/v1/customer/entitlements", headers=customer_auth
        )
        result.customer_licences = list(listed["entitlements"])
        step(
            f"Signed in with the link from the mail ({len(result.customer_licences)} licences): "
            + "; ".join(
                f"{e['license_key']} {e['product']} from "
                f"{(e.get('partner_of_record') or {}).get('display_name', 'the vendor')}"
                for e in result.customer_licences
            )
        )
        result.granted = await call(
            "PUT",
            f"{suite.registration}/v1/customer/entitlements/{result.second_license_key}"
            f"/access/{code}",
            headers=customer_auth,
            json={"permission": "view"},
        )
        access = ", ".join(
            f"{a['display_name']} ({a['permission']})"
            for a in result.granted.get("partners_with_access", [])
        )
        step(
            f"The customer grants {reseller_name} view access to {result.second_license_key} "
            f"(sold by Bergtal Systemhaus); partners with access now: {access}"
        )

        result.notice_id = f"NTC-2027-{run}"
        step("The vendor announces Service Pack 2 for Vault Enterprise and Secure Team")
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    VENDOR_NOTICES,
                    "notice.published",
                    NoticePublished(
                        notice_id=result.notice_id,
                        kind="service_pack",
                        title="Service Pack 2 for Vault Enterprise and Secure Team",
                        summary="Faster scans and a new reporting view; install it at your pace.",
                        url=f"https://vendor.example/notices/{result.notice_id}",
                        products=["vault-enterprise", "secure-team"],
                    ),
                    dt.datetime.now(dt.UTC).replace(microsecond=0),
                )
            ],
        )
        notice_mail = await wait_for_mail(mail_dir, result.customer_email, "Service Pack 2")
        digest = await wait_for_mail(mail_dir, result.reseller["contact_email"], result.notice_id)
        result.notice_mails = [
            f"{notice_mail['To']}: {notice_mail['Subject']}",
            f"{digest['To']}: {digest['Subject']}",
        ]
        step(
            f"Product notice (service_pack) mailed: to the customer '{notice_mail['Subject']}'; "
            f"to {reseller_name} its digest '{digest['Subject']}'"
        )

        today = dt.datetime.now(dt.UTC).date()
        prospect = Customer(
            customer_id=f"C-SEE-{run}",
            org_name="Seeblick Hotels AG",
            contact_name="Lukas Steiner",
            email=f"it.{run.lower()}@seeblick-hotels.example",
            country="AT",
        )
        step(f"{reseller_name} registers a deal: Secure Pro for Seeblick Hotels")
        submitted = await call(
            "POST",
            f"{suite.registration}/v1/partner/deals",
            headers=reseller_key,
            json={
                "customer": {
                    "customer_id": prospect.customer_id,
                    "org_name": prospect.org_name,
                    "email": prospect.email,
                    "country": prospect.country,
                },
                "product": "secure-pro",
                "expected_close": (today + dt.timedelta(days=30)).isoformat(),
                "estimated_amount_minor": 150000,
                "currency": "EUR",
            },
        )
        deal_id = str(submitted["deal_id"])
        approved = await call(
            "POST", f"{suite.registration}/v1/admin/deals/{deal_id}/approve", headers=admin
        )
        step(
            f"The channel team approves deal {deal_id}: "
            f"protected until {str(approved.get('protected_until', ''))[:10]}"
        )
        deal_key = f"LK-DEAL-{run}"
        # After the approval: protection starts when the deal is approved.
        ordered_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).replace(microsecond=0)
        await _publish(
            suite.kafka_bootstrap,
            [
                (
                    CHECKOUT_ORDERS,
                    "order.placed",
                    order(
                        f"WEB-{run}-D",
                        "direct",
                        "web",
                        "new",
                        "secure-pro",
                        "SECURE-PRO-1Y",
                        today.isoformat(),
                        (today + dt.timedelta(days=364)).isoformat(),
                        150000,
                        license_key=deal_key,
                        buyer=prospect,
                    ),
                    ordered_at,
                )
            ],
        )
        result.orders["deal"] = f"WEB-{run}-D"

        async def deal_won() -> dict[str, Any] | None:
            response = await http.get(
                f"{suite.registration}/v1/partner/deals/{deal_id}", headers=reseller_key
            )
            deal = response.json() if response.status_code == 200 else {}
            return dict(deal) if deal.get("status") == "won" else None

        result.deal = await _until(deal_won, "the deal won by the direct order")
        result.deal_entitlement = await _until(
            lambda: entitlement_of(deal_key), "the entitlement of the deal's order"
        )
        deal_por = result.deal_entitlement.get("partner_of_record") or {}
        names = {result.reseller["partner_id"]: reseller_name}
        step(
            f"A direct web order (new) wins deal {deal_id}: status {result.deal['status']}, "
            f"order {result.deal.get('order_id')}; partner of record "
            f"{names.get(deal_por.get('partner_id', ''), deal_por.get('partner_id'))}"
            f", source {deal_por.get('source')}"
        )

        async def commission_lines() -> list[dict[str, Any]]:
            lines: list[dict[str, Any]] = []
            for partner_id in partners:
                body = await call(
                    "GET",
                    f"{suite.commissions}/v1/admin/commissions",
                    params={"partner_id": partner_id, "limit": 500},
                    headers=admin,
                )
                found = body.get("lines", body)
                lines.extend(found if isinstance(found, list) else [])
            return lines

        partners = {result.reseller["partner_id"], result.distributor["partner_id"]}

        async def accrued_and_clawed() -> bool:
            lines = await commission_lines()
            orders = {line.get("order_id") for line in lines}
            # renewal, upgrade and the deal's order accrued, the refund clawed back
            return {
                result.orders["renewal"],
                result.orders["upgrade"],
                result.orders["deal"],
            } <= orders and any(line.get("refund_id") for line in lines)

        await _until(accrued_and_clawed, "the commission lines")

        step("The channel team sets earned-tier rules (EUR) and evaluates as of 2027-04-01")
        rules = await http.put(
            f"{suite.registration}/v1/admin/tier-rules",
            headers=admin,
            json={
                "effective_from": "2026-01-01T00:00:00Z",
                "currency": "EUR",
                "fx": {"EUR": "1", "GBP": "1.17", "USD": "0.92"},
                "tiers": {
                    "bronze": {"min_revenue_minor": 0, "min_certified": 0},
                    "silver": {"min_revenue_minor": 50000, "min_certified": 0},
                    "gold": {"min_revenue_minor": 100000, "min_certified": 0},
                    "platinum": {"min_revenue_minor": 200000, "min_certified": 0},
                },
                "demotion_grace_days": 90,
            },
        )
        # A suite that already has later rules (`./dev demo --running` again) keeps them.
        if rules.status_code >= 400 and rules.status_code != 422:
            raise RuntimeError(f"PUT tier-rules: {rules.status_code} {rules.text}")
        result.tier_evaluation = await call(
            "POST",
            f"{suite.registration}/v1/admin/tiers/evaluate",
            params={"as_of": "2027-04-01"},
            headers=admin,
        )
        result.tier = await call(
            "GET",
            f"{suite.registration}/v1/partner/tier",
            params={"as_of": "2027-04-01"},
            headers=reseller_key,
        )
        revenue = result.tier.get("revenue") or {}
        step(
            f"Tier evaluation: {reseller_name} is promoted from {result.reseller['tier']} "
            f"to {result.tier['tier']} (12-month revenue "
            f"{eur(int(revenue.get('amount_minor', 0)))})"
        )

        step("Finance books a co-marketing bonus for the deal (an adjustment)")
        result.adjustment = await call(
            "POST",
            f"{suite.commissions}/v1/admin/adjustments",
            headers={**admin, "Idempotency-Key": f"demo-{run}-bonus"},
            json={
                "partner_id": result.reseller["partner_id"],
                "amount_minor": 5000,
                "currency": "EUR",
                "reason": "Co-marketing bonus for the Seeblick Hotels win",
                "reference": f"MDF-{run}",
            },
        )

        step("Finance runs the payables pass as of 2027-04-01")
        await call(
            "POST",
            f"{suite.commissions}/v1/admin/payables/run",
            params={"as_of": "2027-04-01"},
            headers=admin,
        )
        month = str(result.adjustment.get("occurred_at") or today.isoformat())[:7]
        result.statement = await call(
            "GET", f"{suite.commissions}/v1/partner/statements/{month}", headers=reseller_key
        )
        shown = [line for line in result.statement["lines"] if line.get("role") == "adjustment"]
        step(
            f"Statement of {reseller_name} for {month}: "
            + "; ".join(
                f"adjustment {eur(line['amount_minor'])} ({line.get('reason')})" for line in shown
            )
            + "; totals "
            + ", ".join(f"net {eur(t['net_minor'])}" for t in result.statement["totals"])
        )

        step("Reading what finance sees on commissions.ledger.v1")
        # Each line once as accrued, clawed back or adjusted; once more as payable if it
        # became payable (an adjustment is payable as it is booked).
        expect = sum(
            1 + (line["status"] != "accrued" and line.get("role") != "adjustment")
            for line in await commission_lines()
        )
        result.ledger = await read_ledger(suite.kafka_bootstrap, partners, expect=expect)
        result.entitlement = await call(
            "GET", f"{suite.registration}/v1/admin/entitlements/{result.license_key}", headers=admin
        )
    return result
