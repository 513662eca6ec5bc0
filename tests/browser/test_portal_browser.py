"""The partner portal in a real headless Chromium, against a fresh running suite.

Starts the suite as `./dev up` does (embedded broker and database, the three
services) plus the portal, signs up two partners through the admin API, feeds
orders through Kafka, then drives Chromium with Playwright: sign in, overview,
entitlements, register a licence, deals, statement CSV, webhook, delivery log. Partner B
must never see partner A's data. Screenshots of every page go to docs/screenshots/.

No Chromium means a failure, never a skip (`devkit.browser.ensure_chromium`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import os
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
from standardwebhooks import Webhook

from chassis.kafka import make_producer
from devkit.browser import LAUNCH_ARGS, ensure_chromium
from devkit.processes import ManagedProcess, free_port, wait_until
from devkit.story import WebhookReceiver
from devkit.up import RunningSuite, fresh_env, start_ready_suite
from shared.envelope import encode, key_for, new_envelope
from shared.events import Customer, OrderLine, OrderPlaced
from shared.topics import CHECKOUT_ORDERS

pytestmark = pytest.mark.e2e

# The README's screenshots are refreshed on request (UPDATE_SCREENSHOTS=1); otherwise a
# run keeps them out of the work tree, so CI and everyday runs leave it clean.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "channelkeep-screenshots"
)
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class Partner:
    partner_id: str
    display_name: str
    seller_code: str
    api_key: str


@dataclass
class World:
    portal: str
    run: str
    alpha: Partner
    bravo: Partner
    soon_key: str  # A's, ends within 90 days
    renewed_key: str  # A's, renewed direct this month: a commission line
    free_key: str  # nobody's yet; A registers it in the portal
    bravo_key: str  # B's own
    month: str
    registration_url: str = ""
    admin_token: str = ""
    # CONTRACT 6.2: one customer who bought from both resellers, and where its mail lands.
    customer_email: str = ""
    shared_alpha_key: str = ""
    shared_bravo_key: str = ""
    mail_dir: Path = Path()
    commissions_url: str = ""


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own loopback)
        return bool(response.status == 200)


def _publish(bootstrap: str, orders: list[tuple[OrderPlaced, dt.datetime]]) -> None:
    async def send() -> None:
        producer = make_producer(bootstrap)
        await producer.start()
        try:
            for order, when in orders:
                envelope = new_envelope("order.placed", order, occurred_at=when, producer="test")
                await producer.send_and_wait(
                    CHECKOUT_ORDERS, encode(envelope), key=key_for(CHECKOUT_ORDERS, envelope)
                )
        finally:
            await producer.stop()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, send()).result()


def _order(
    order_id: str,
    channel: str,
    kind: str,
    license_key: str,
    start: dt.date,
    end: dt.date,
    org: str,
    partner_code: str | None = None,
    email: str | None = None,
) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        sales_channel=channel,
        storefront="marketplace" if channel == "partner" else "web",
        partner_code=partner_code,
        seller_code=None,
        currency="EUR",
        customer=Customer(
            customer_id=f"C-{license_key}",
            org_name=org,
            contact_name="Jana Example",
            email=email or f"{license_key.lower()}@customer.example",
            country="DE",
        ),
        lines=[
            OrderLine(
                line_id="1",
                kind=kind,
                license_key=license_key,
                sku="SECURE-PRO-1Y",
                product="secure-pro",
                quantity=1,
                term_start=start,
                term_end=end,
                net_amount_minor=123457,
            )
        ],
    )


def _until(check: Any, what: str, wait_s: float = 60.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("portal")
    env = fresh_env(dict(os.environ))
    suite: RunningSuite = start_ready_suite(data_dir, env)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in suite.ports.items()}
    portal_port = free_port()
    portal = ManagedProcess(
        "portal-api",
        [sys.executable, "-m", "services.portal.entrypoints.api"],
        log_path=data_dir / "logs" / "portal-api.log",
        env={
            **env,
            "ENVIRONMENT": "dev",
            "PORTAL_PORT": str(portal_port),
            "REGISTRATION_URL": urls["registration"],
            "COMMISSIONS_URL": urls["commissions"],
            "NOTIFICATIONS_URL": urls["notifications"],
            "PYTHONUNBUFFERED": "1",
        },
    )
    try:
        portal.start()
        base = f"http://127.0.0.1:{portal_port}"
        wait_until(lambda: _ready(f"{base}/status"), timeout=30, interval=0.3, process=portal)
        world = _seed(base, urls, suite.embedded.kafka_bootstrap, env["ADMIN_TOKEN"])
        world.mail_dir = data_dir / "mail"
        yield world
    finally:
        portal.stop()
        suite.stop()


def _seed(portal: str, urls: dict[str, str], bootstrap: str, admin_token: str) -> World:
    run = uuid.uuid4().hex[:6].upper()
    admin = {"Authorization": f"Bearer {admin_token}"}
    today = dt.datetime.now(dt.UTC).date()
    with httpx.Client(timeout=15, headers=admin) as http:

        def partner(name: str, color: str) -> Partner:
            response = http.post(
                f"{urls['registration']}/v1/admin/partners",
                json={
                    "display_name": name,
                    "legal_name": f"{name} GmbH",
                    "type": "var",
                    "tier": "gold",
                    "contact_email": f"partners-{run.lower()}@{name.split()[0].lower()}.example",
                    "branding": {
                        "logo_url": f"https://{name.split()[0].lower()}.example/logo.png",
                        "color": color,
                        "phone": "+43 1 555 0199",
                        "website": f"https://{name.split()[0].lower()}.example",
                    },
                    "co_brand_customer_messages": False,
                    "customer_ids": [],
                },
            )
            assert response.status_code == 201, response.text
            body = response.json()
            return Partner(body["partner_id"], name, body["seller_code"], body["api_key"])

        alpha = partner("Alpine IT Services", "#C0392B")
        bravo = partner("Bravo Systems", "#0B5394")
        keys = {
            k: f"LK-{k.upper()}-{run}"
            for k in ("soon", "renewed", "free", "bravo", "shared-a", "shared-b")
        }
        shared_customer = f"it-{run.lower()}@oberland-kliniken.example"
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        year_ago = today - dt.timedelta(days=325)
        _publish(
            bootstrap,
            [
                (
                    _order(f"PRT-{run}-1", "partner", "new", keys["soon"], year_ago,
                           today + dt.timedelta(days=40), "Müller Logistik GmbH",
                           alpha.seller_code),
                    now - dt.timedelta(days=60),
                ),
                (
                    _order(f"PRT-{run}-2", "partner", "new", keys["renewed"], year_ago,
                           today + dt.timedelta(days=2), "Alpenblick Hotels AG",
                           alpha.seller_code),
                    now - dt.timedelta(days=60),
                ),
                (
                    _order(f"WEB-{run}-3", "direct", "new", keys["free"], today,
                           today + dt.timedelta(days=365), "Charlie Consulting SARL"),
                    now - dt.timedelta(days=1),
                ),
                (
                    _order(f"PRT-{run}-4", "partner", "new", keys["bravo"], year_ago,
                           today + dt.timedelta(days=60), "Bergbau Nord KG",
                           bravo.seller_code),
                    now - dt.timedelta(days=60),
                ),
                # One customer of both resellers (CONTRACT 6.2), far from renewal.
                (
                    _order(f"PRT-{run}-6", "partner", "new", keys["shared-a"], today,
                           today + dt.timedelta(days=365), "Oberland Kliniken",
                           alpha.seller_code, email=shared_customer),
                    now - dt.timedelta(days=2),
                ),
                (
                    _order(f"PRT-{run}-7", "partner", "new", keys["shared-b"], today,
                           today + dt.timedelta(days=365), "Oberland Kliniken",
                           bravo.seller_code, email=shared_customer),
                    now - dt.timedelta(days=2),
                ),
            ],
        )  # fmt: skip

        def exists(key: str) -> bool:
            r = http.get(f"{urls['registration']}/v1/admin/entitlements/{key}")
            return r.status_code == 200

        for key in keys.values():
            _until(lambda key=key: exists(key), f"entitlement {key}")
        _publish(
            bootstrap,
            [
                (
                    _order(f"WEB-{run}-5", "direct", "renewal", keys["renewed"],
                           today + dt.timedelta(days=3), today + dt.timedelta(days=368),
                           "Alpenblick Hotels AG"),
                    now - dt.timedelta(minutes=5),
                )
            ],
        )  # fmt: skip

        def commission() -> bool:
            r = http.get(
                f"{urls['commissions']}/v1/admin/commissions",
                params={"partner_id": alpha.partner_id},
            )
            return r.status_code == 200 and len(r.json().get("lines", [])) >= 1

        _until(commission, "partner A's commission line")

        # Earned tiers (CONTRACT 6.4): rules that keep A at gold on its 4 x 123457 of
        # revenue (three partner sales and the shared customer's licence) and 2
        # certifications, so the Tier page shows what platinum needs.
        rules = http.put(
            f"{urls['registration']}/v1/admin/tier-rules",
            json={
                "effective_from": "2025-01-01T00:00:00Z",
                "currency": "EUR",
                "fx": {"USD": "0.92"},
                "tiers": {
                    "platinum": {"min_revenue_minor": 1_000_000, "min_certified": 5},
                    "gold": {"min_revenue_minor": 300_000, "min_certified": 2},
                    "silver": {"min_revenue_minor": 100_000, "min_certified": 1},
                    "bronze": {"min_revenue_minor": 0, "min_certified": 0},
                },
                "demotion_grace_days": 90,
            },
        )
        assert rules.status_code == 201, rules.text
        for holder in ("Anna Alpine", "Bernd Alpine"):
            certified = http.post(
                f"{urls['registration']}/v1/admin/partners/{alpha.partner_id}/certifications",
                json={
                    "name": "Secure Pro Engineer",
                    "holder": holder,
                    "expires_on": (today + dt.timedelta(days=200)).isoformat(),
                },
            )
            assert certified.status_code == 201, certified.text
    return World(
        portal=portal,
        run=run,
        alpha=alpha,
        bravo=bravo,
        soon_key=keys["soon"],
        renewed_key=keys["renewed"],
        free_key=keys["free"],
        bravo_key=keys["bravo"],
        month=f"{now.year:04d}-{now.month:02d}",
        registration_url=urls["registration"],
        admin_token=admin_token,
        customer_email=shared_customer,
        shared_alpha_key=keys["shared-a"],
        shared_bravo_key=keys["shared-b"],
        commissions_url=urls["commissions"],
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(LAUNCH_ARGS))
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def nav(page: Page, name: str) -> None:
    menu = page.get_by_role("navigation", name="Portal")
    menu.get_by_role("link", name=name, exact=True).click()


def sign_in(page: Page, portal: str, api_key: str) -> None:
    page.goto(f"{portal}/sign-in")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{portal}/overview")


def register_deal(page: Page, org: str, email: str) -> None:
    """Fill and send the deals form (CONTRACT 6.3) for secure-pro, closing in 30 days."""
    page.get_by_label("Organisation", exact=True).fill(org)
    page.get_by_label("Contact e-mail", exact=True).fill(email)
    page.get_by_label("Country (2 letters)", exact=True).fill("DE")
    page.get_by_label("Product", exact=True).fill("secure-pro")
    close = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    page.get_by_label("Expected close", exact=True).fill(close.isoformat())
    page.get_by_label("Estimated value", exact=True).fill("12500.00")
    page.get_by_label("Currency", exact=True).fill("EUR")
    page.get_by_role("button", name="Register the deal").click()


def approve_deal(world: World, deal_id: str) -> None:
    response = httpx.post(
        f"{world.registration_url}/v1/admin/deals/{deal_id}/approve",
        headers={"Authorization": f"Bearer {world.admin_token}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text


def test_partner_a_uses_every_page(browser: Browser, world: World, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    portal = world.portal

    page.goto(f"{portal}/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in")
    page.get_by_label("API key").fill("not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")

    sign_in(page, portal, world.alpha.api_key)
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["portal_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert world.alpha.api_key not in session["value"]

    renewals = page.get_by_role("region", name="Up for renewal in the next 90 days")
    expect(renewals).to_contain_text(world.soon_key)
    expect(renewals).to_contain_text("Müller Logistik GmbH")
    commissions = page.get_by_role("region", name=f"Commissions in {world.month}")
    expect(commissions).to_contain_text("EUR 185.19")  # 123457 at gold renewal 1500 bps
    shot(page, "overview")

    nav(page, "Entitlements")
    page.get_by_label("Licence key or customer").fill("müller")
    page.get_by_role("button", name="Search").click()
    table = page.locator("table")
    expect(table).to_contain_text(world.soon_key)
    expect(table).not_to_contain_text(world.renewed_key)
    expect(table).to_contain_text("partner sale")
    shot(page, "entitlements")

    nav(page, "Register a licence")
    page.get_by_label("Licence key").fill(world.free_key)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status")).to_contain_text("Registered")
    expect(page.get_by_role("status")).to_contain_text("Charlie Consulting SARL")
    shot(page, "register")
    page.get_by_label("Licence key").fill(world.bravo_key)
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".field-error")).to_contain_text("Another partner")
    expect(page.locator("main")).not_to_contain_text("Bravo")

    nav(page, "Deals")
    page.get_by_role("link", name="Register a deal").click()
    register_deal(page, "Delta Handel GmbH", f"einkauf-{world.run.lower()}@delta.example")
    expect(page.get_by_role("status")).to_contain_text("Deal registered")
    expect(page.locator("#deal-status")).to_contain_text("Submitted")
    deal_id = page.url.rsplit("/", 1)[1].split("?")[0]
    approve_deal(world, deal_id)
    page.reload()
    expect(page.locator("#deal-status")).to_contain_text("Approved")
    expect(page.locator("main")).to_contain_text("Protected until")
    nav(page, "Deals")
    expect(page.locator("table")).to_contain_text(deal_id)
    expect(page.locator("table")).to_contain_text("EUR 12,500.00")
    shot(page, "deals")

    nav(page, "Commissions")
    expect(page.locator("table").last).to_contain_text(world.renewed_key)
    shot(page, "commissions")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download statement CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"commissions-{world.month}.csv"
    saved = tmp_path / "statement.csv"
    download.save_as(saved)
    csv_text = saved.read_text()
    assert csv_text.startswith("line_id,occurred_at,status")
    assert world.renewed_key in csv_text

    with WebhookReceiver() as receiver:
        nav(page, "Webhook")
        page.get_by_label("Webhook URL").fill(receiver.url)
        page.get_by_role("button", name="Save and show a new secret").click()
        secret = page.get_by_role("textbox", name="Signing secret")
        expect(secret).to_be_visible()
        value = secret.input_value()
        assert value.startswith("whsec_") and len(value) > 20
        shot(page, "webhook")
        page.goto(f"{portal}/webhook")
        assert value not in page.content()
        # The URL in use comes back from notifications, and a signed test event goes out.
        expect(page.get_by_label("Webhook URL")).to_have_value(receiver.url)
        page.get_by_role("button", name="Send a test event").click()
        expect(page.get_by_role("status")).to_contain_text("Test event delivered")
        test_events = [r for r in receiver.received if b"webhook.test" in r["body"]]
        assert len(test_events) == 1
        assert Webhook(value).verify(test_events[0]["body"], test_events[0]["headers"])

    nav(page, "Delivery log")
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    shot(page, "deliveries")

    nav(page, "Tier")
    standing = page.get_by_role("region", name="Where you stand")
    expect(standing.get_by_test_id("tier-current")).to_have_text("Gold")
    expect(standing.get_by_test_id("tier-qualifies")).to_have_text("Gold")
    expect(standing.get_by_test_id("tier-revenue")).to_have_text("EUR 4,938.28")
    expect(standing.get_by_test_id("tier-certified")).to_have_text("2")
    following = page.get_by_role("region", name="What the next tier needs")
    expect(following).to_contain_text("Platinum")
    expect(following.get_by_test_id("gap-revenue")).to_have_text("EUR 5,061.72")
    expect(following.get_by_test_id("gap-certified")).to_have_text("3")
    expect(page.get_by_role("region", name="Certifications")).to_contain_text("Anna Alpine")
    shot(page, "tier")
    # CONTRACT 6.1: the renewal mode, shown and changed on the settings page.
    nav(page, "Settings")
    expect(page.get_by_role("radio", name="Partner first (recommended)")).to_be_checked()
    page.get_by_role("radio", name="Partner only").check()
    page.get_by_role("button", name="Save renewal mode").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(page.locator("#renewal-mode-now")).to_have_text("Partner only")
    expect(page.get_by_role("radio", name="Partner only")).to_be_checked()
    shot(page, "settings")
    page.goto(f"{portal}/settings")  # read back from registration, not from the form
    expect(page.get_by_role("radio", name="Partner only")).to_be_checked()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    small = phone.new_page()
    sign_in(small, portal, world.alpha.api_key)
    expect(small.get_by_role("region", name="Up for renewal in the next 90 days")).to_contain_text(
        world.soon_key
    )
    shot(small, "overview-phone")
    phone.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{portal}/sign-in")
    page.goto(f"{portal}/overview")
    expect(page).to_have_url(f"{portal}/sign-in")
    assert "portal_session" not in {c["name"] for c in context.cookies()}
    context.close()


def test_partner_b_never_sees_partner_a(browser: Browser, world: World, tmp_path: Path) -> None:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    portal = world.portal
    sign_in(page, portal, world.bravo.api_key)
    secrets_of_a = [
        world.soon_key,
        world.renewed_key,
        world.free_key,
        world.alpha.partner_id,
        world.alpha.display_name,
        world.alpha.seller_code,
        world.alpha.api_key,
        "Müller Logistik",
        "Alpenblick",
        "Charlie Consulting",
        "Anna Alpine",
    ]

    def assert_clean(html: str, where: str) -> None:
        for secret in secrets_of_a:
            assert secret not in html, f"partner A's {secret!r} on B's {where}"

    expect(page.get_by_role("region", name="Up for renewal in the next 90 days")).to_contain_text(
        world.bravo_key
    )
    for path in (
        "/overview",
        "/entitlements",
        f"/entitlements?q={world.soon_key}",
        "/entitlements?q=Alpenblick",
        f"/commissions?month={world.month}",
        "/commissions?status=accrued",
        "/webhook",
        "/deliveries",
        "/register",
        "/deals",
        "/deals/new",
        "/tier",
    ):
        page.goto(f"{portal}{path}")
        # A search echoes B's own query in its input; what the page shows must still be clean.
        assert_clean(page.locator("body").inner_text() if "q=" in path else page.content(), path)
    page.goto(f"{portal}/entitlements")
    expect(page.locator("table")).to_contain_text(world.bravo_key)
    shot(page, "entitlements-partner-b")

    page.goto(f"{portal}/register")
    page.get_by_label("Licence key").fill(world.soon_key)
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".field-error")).to_contain_text("Another partner")
    assert_clean(page.locator("main").inner_text(), "register answer")

    # A's approved deal protects its customer: B's deal for it is refused, naming nobody,
    # and A's deal is not B's to see.
    email = f"it-{world.run.lower()}@echo-werke.example"
    submitted = httpx.post(
        f"{world.registration_url}/v1/partner/deals",
        headers={"Authorization": f"Bearer {world.alpha.api_key}"},
        json={
            "customer": {"org_name": "Echo Werke AG", "email": email, "country": "DE"},
            "product": "secure-pro",
            "expected_close": (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat(),
            "estimated_amount_minor": 500000,
            "currency": "EUR",
        },
        timeout=15,
    )
    assert submitted.status_code == 201, submitted.text
    a_deal = submitted.json()["deal_id"]
    approve_deal(world, a_deal)
    secrets_of_a.append(a_deal)
    page.goto(f"{portal}/deals/new")
    register_deal(page, "Echo Werke", email.upper())
    expect(page.locator("#deal-conflict")).to_contain_text("already protects")
    assert_clean(page.locator("main").inner_text(), "deal conflict answer")
    page.goto(f"{portal}/deals/{a_deal}")
    expect(page.get_by_role("heading", name="Deal not found")).to_be_visible()
    page.goto(f"{portal}/deals")
    expect(page.locator("table")).to_contain_text("Not approved")
    assert_clean(page.content(), "/deals")

    page.goto(f"{portal}/commissions?month={world.month}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download statement CSV").click()
    saved = tmp_path / "b.csv"
    download_info.value.save_as(saved)
    assert saved.read_text().startswith("line_id")
    assert_clean(saved.read_text(), "statement CSV")
    context.close()


def test_keys_page_and_what_each_role_sees(browser: Browser, world: World) -> None:
    """CONTRACT 6.7: an admin key makes a finance and a sales key on the Keys page; each
    sees only its pages (the APIs refuse the rest anyway); a revoked key cannot sign in."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    portal = world.portal
    sign_in(page, portal, world.alpha.api_key)
    nav(page, "Keys")
    expect(page.get_by_role("heading", name="Keys", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Active keys")).to_contain_text("admin")

    made: dict[str, str] = {}
    for name, role in (("Finance desk", "finance"), ("Sales desk", "sales")):
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Role").select_option(role)
        page.get_by_role("button", name="Create key").click()
        created = page.get_by_role("textbox", name="API key")
        expect(created).to_be_visible()
        made[role] = created.input_value()
        assert made[role].startswith("ckp_")
        if role == "finance":
            expect(page.get_by_role("region", name="Active keys")).to_contain_text(name)
    shot(page, "keys")
    page.goto(f"{portal}/keys")
    assert made["sales"] not in page.content() and made["finance"] not in page.content()
    expect(page.get_by_role("region", name="Active keys")).to_contain_text("Sales desk")
    page.get_by_role("button", name="Sign out").click()

    menu = page.get_by_role("navigation", name="Portal")
    sign_in(page, portal, made["finance"])
    expect(menu.get_by_role("link", name="Commissions", exact=True)).to_be_visible()
    for hidden in ("Entitlements", "Register a licence", "Keys", "Webhook"):
        expect(menu.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    expect(page.get_by_role("region", name=f"Commissions in {world.month}")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(world.soon_key)
    for refused in ("/register", "/entitlements", "/keys"):
        response = page.goto(f"{portal}{refused}")
        assert response is not None and response.status == 403, refused
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, portal, made["sales"])
    expect(menu.get_by_role("link", name="Entitlements", exact=True)).to_be_visible()
    expect(menu.get_by_role("link", name="Register a licence", exact=True)).to_be_visible()
    for hidden in ("Commissions", "Keys", "Webhook", "Delivery log"):
        expect(menu.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    expect(page.get_by_role("region", name="Up for renewal in the next 90 days")).to_contain_text(
        world.soon_key
    )
    for refused in ("/commissions", f"/commissions/{world.month}.csv", "/keys"):
        response = page.goto(f"{portal}{refused}")
        assert response is not None and response.status == 403, refused
    page.goto(f"{portal}/overview")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, portal, world.alpha.api_key)
    nav(page, "Keys")
    page.get_by_role("button", name="Revoke Sales desk").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.get_by_role("region", name="Revoked keys")).to_contain_text("Sales desk")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").fill(made["sales"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")


def _sign_in_token(mail_dir: Path, to: str) -> str:
    """The token of the newest sign-in mail to `to`, read from the suite's mail sink."""
    found: list[tuple[float, str]] = []
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to not in str(message["To"]) or message["X-Notification-Type"] != "customer_sign_in":
            continue
        body = message.get_body(preferencelist=("plain",))
        match = re.search(r"#token=(cki_[A-Za-z0-9_-]+)", body.get_content() if body else "")
        if match:
            found.append((path.stat().st_mtime, match.group(1)))
    return max(found)[1] if found else ""


def test_a_customer_of_two_resellers_manages_both_licences(browser: Browser, world: World) -> None:
    """CONTRACT 6.2: sign in with the e-mailed link, see both resellers' licences, grant one
    reseller access to the other's; each reseller saw only its own until then."""
    portal = world.portal
    # Each reseller sees its own licence of this customer, never the other's.
    for partner, own, other in (
        (world.alpha, world.shared_alpha_key, world.shared_bravo_key),
        (world.bravo, world.shared_bravo_key, world.shared_alpha_key),
    ):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        sign_in(page, portal, partner.api_key)
        page.goto(f"{portal}/entitlements?q=Oberland")
        expect(page.locator("table")).to_contain_text(own)
        assert other not in page.content()
        context.close()

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{portal}/customer/sign-in")
    expect(page.get_by_role("heading", name="Your licences")).to_be_visible()
    shot(page, "customer-sign-in")
    page.get_by_label("E-mail address of your licences").fill(world.customer_email)
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")

    token = ""

    def mailed() -> bool:
        nonlocal token
        token = _sign_in_token(world.mail_dir, world.customer_email)
        return bool(token)

    _until(mailed, "the sign-in mail", 90)
    # The link as mailed, on this run's portal: portal.js posts the fragment's token.
    page.goto(f"{portal}/customer/sign-in#token={token}")
    expect(page).to_have_url(f"{portal}/customer/licences")
    cookies = {c["name"]: c for c in context.cookies()}
    assert "portal_session" not in cookies  # a customer session, not a partner's
    customer = cookies["portal_customer"]
    assert customer["httpOnly"] and customer["sameSite"] == "Strict"
    assert token not in customer["value"]

    alpha_card = page.locator(f'section[data-license-key="{world.shared_alpha_key}"]')
    bravo_card = page.locator(f'section[data-license-key="{world.shared_bravo_key}"]')
    expect(alpha_card.locator(".partner-of-record")).to_contain_text(world.alpha.display_name)
    expect(bravo_card.locator(".partner-of-record")).to_contain_text(world.bravo.display_name)
    shot(page, "customer-licences")

    # Bravo may see Alpine's licence too.
    alpha_card.get_by_label("Seller code", exact=True).fill(world.bravo.seller_code)
    alpha_card.get_by_label("Permission").select_option("view")
    alpha_card.get_by_role("button", name="Grant access").click()
    expect(page.get_by_role("status")).to_contain_text("Access granted")
    expect(alpha_card.locator("tr.access")).to_contain_text(world.bravo.display_name)
    shot(page, "customer-access")
    partner_b = browser.new_context(viewport=DESKTOP)
    b_page = partner_b.new_page()
    sign_in(b_page, portal, world.bravo.api_key)
    b_page.goto(f"{portal}/entitlements?q=Oberland")
    expect(b_page.locator("table")).to_contain_text(world.shared_alpha_key)
    expect(b_page.locator("table")).to_contain_text("customer gave access: view")
    assert world.alpha.display_name not in b_page.content()
    assert world.alpha.partner_id not in b_page.content()
    partner_b.close()

    # Revoke it, then end Alpine's partner of record and make Bravo partner of record.
    alpha_card.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    alpha_card.get_by_role("button", name="End this partner of record").click()
    expect(page.get_by_role("status")).to_contain_text("partner of record is ended")
    expect(alpha_card.locator(".partner-of-record")).to_contain_text("nobody acts for you")
    alpha_card.get_by_label("Seller code of your partner").fill(world.bravo.seller_code)
    alpha_card.get_by_role("button", name="Set partner of record").click()
    expect(page.get_by_role("status")).to_contain_text("partner of record is set")
    expect(alpha_card.locator(".partner-of-record")).to_contain_text(world.bravo.display_name)

    # The link worked once; signing out ends the customer session.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{portal}/customer/sign-in")
    page.goto(f"{portal}/customer/sign-in#token={token}")
    expect(page.get_by_role("alert")).to_contain_text("used already or has expired")
    page.goto(f"{portal}/customer/licences")
    expect(page).to_have_url(f"{portal}/customer/sign-in")
    context.close()
