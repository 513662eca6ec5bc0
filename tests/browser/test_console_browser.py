"""The channel team's console and the charts in a real headless Chromium, on a fresh suite.

Same suite and seed as test_portal_browser.py (its `world` and `browser` fixtures: two
partners, A with a commission line and renewals due). The operator signs in with the
operator token and uses every console area; a partner's key or session opens no
console page. Screenshots go to docs/screenshots/console-*.png (UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_portal_browser import (
    DESKTOP,
    World,
    _until,
    browser,
    shot,
    sign_in,
    world,
)

pytestmark = pytest.mark.e2e
__all__ = ["browser", "world"]  # the fixtures, shared with the partner portal's tests

CONSOLE_PAGES = (
    "/console",
    "/console/partners",
    "/console/conflicts",
    "/console/deals",
    "/console/tiers",
    "/console/payables",
    "/console/deliveries",
)


def console_nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name=name, exact=True
    ).click()


def console_sign_in(page: Page, world: World) -> None:
    page.goto(f"{world.portal}/console/sign-in")
    page.get_by_label("Operator token").fill(world.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{world.portal}/console")


def _admin(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.admin_token}"}


def test_a_partner_key_opens_no_console_page(browser: Browser, world: World) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, world.portal, world.alpha.api_key)
    for path in (*CONSOLE_PAGES, f"/console/partners/{world.alpha.partner_id}"):
        page.goto(f"{world.portal}{path}")
        expect(page).to_have_url(f"{world.portal}/console/sign-in")
        expect(page.get_by_role("heading", name="Console sign-in")).to_be_visible()
    page.get_by_label("Operator token").fill(world.alpha.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not an operator token")
    assert "portal_console" not in {c["name"] for c in context.cookies()}
    shot(page, "console-sign-in")
    for path in CONSOLE_PAGES:
        response = httpx.get(
            f"{world.portal}{path}",
            headers={"Authorization": f"Bearer {world.alpha.api_key}"},
            cookies={c["name"]: c["value"] for c in context.cookies()},
        )
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in", path
    context.close()


def test_the_channel_team_uses_every_console_area(browser: Browser, world: World) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    portal = world.portal
    run = uuid.uuid4().hex[:6]
    today = dt.datetime.now(dt.UTC).date()

    # A conflict (B claims A's licence) and two deals of A's waiting for a decision.
    refused = httpx.post(
        f"{world.registration_url}/v1/partner/registrations",
        headers={"Authorization": f"Bearer {world.bravo.api_key}"},
        json={"license_key": world.soon_key},
        timeout=15,
    )
    assert refused.status_code == 409, refused.text
    deals = []
    for org in ("Foxtrot Maschinenbau AG", "Golf Medien GmbH"):
        submitted = httpx.post(
            f"{world.registration_url}/v1/partner/deals",
            headers={"Authorization": f"Bearer {world.alpha.api_key}"},
            json={
                "customer": {"org_name": org, "email": f"it-{run}@{org[:4].lower()}.example",
                             "country": "DE"},
                "product": "secure-pro",
                "expected_close": (today + dt.timedelta(days=45)).isoformat(),
                "estimated_amount_minor": 2400000,
                "currency": "EUR",
            },
            timeout=15,
        )  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        deals.append(submitted.json()["deal_id"])

    console_sign_in(page, world)
    cookie = {c["name"]: c for c in context.cookies()}["portal_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert world.admin_token not in cookie["value"]
    chart = page.locator("svg#revenue-per-tier-eur")
    expect(chart).to_be_visible()
    expect(chart.locator("title").first).to_have_text("Programme revenue per tier, EUR")
    expect(chart.locator("text.chart-label")).to_have_text(["platinum", "gold", "silver", "bronze"])
    expect(page.get_by_role("region", name="Waiting for you")).to_contain_text("awaiting approval")
    shot(page, "console-overview")

    # Partners: search, create (the key shown once), change tier and status.
    console_nav(page, "Partners")
    page.get_by_label("Search", exact=True).fill("alpine")
    page.get_by_role("button", name="Search").click()
    listed = page.locator("table")
    expect(listed).to_contain_text(world.alpha.display_name)
    expect(listed).not_to_contain_text(world.bravo.display_name)
    page.get_by_label("Display name").fill(f"Hotel Partner {run}")
    page.get_by_label("Legal name").fill(f"Hotel Partner {run} KG")
    page.get_by_label("Contact e-mail").fill(f"partners-{run}@hotel.example")
    page.locator("#type").select_option("msp")
    page.locator("#tier").select_option("silver")
    page.get_by_role("button", name="Create partner").click()
    new_key = page.get_by_role("textbox", name="Partner API key")
    expect(new_key).to_be_visible()
    assert new_key.input_value().startswith("ckp_")
    shot(page, "console-partners")
    key = new_key.input_value()
    page.goto(f"{portal}/console/partners")
    assert key not in page.content()
    page.get_by_role("link", name=world.bravo.display_name).click()
    page.get_by_label("Tier", exact=True).select_option("platinum")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Saved: tier platinum")
    expect(page.locator("dl.facts")).to_contain_text("platinum")
    page.goto(f"{portal}/console/partners/{world.alpha.partner_id}")
    expect(page.locator("svg#commissions-per-month-eur")).to_be_visible()
    shot(page, "console-partner")

    # The conflict queue: reassign with a reason.
    console_nav(page, "Conflicts")
    conflict = page.get_by_role("region", name=f"Licence {world.soon_key}").first
    expect(conflict).to_contain_text(world.bravo.display_name)
    shot(page, "console-conflicts")
    conflict.get_by_label("New partner of record").select_option(world.alpha.partner_id)
    conflict.get_by_label("Reason").fill("Checked with the customer: Alpine sold it")
    conflict.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"{world.soon_key}: partner of record is now {world.alpha.partner_id}"
    )

    # Deals awaiting approval: approve one, reject the other with a reason.
    console_nav(page, "Deals")
    expect(page.locator("main")).to_contain_text("Foxtrot Maschinenbau AG")
    expect(page.locator("main")).to_contain_text("EUR 24,000.00")
    shot(page, "console-deals")
    page.get_by_role("button", name=f"Approve {deals[0]}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{deals[0]}: Approved, protected until")
    page.get_by_role("region", name=f"Golf Medien GmbH: secure-pro {deals[1]}").get_by_label(
        "Reason to reject"
    ).fill("No budget confirmed by the customer")
    page.get_by_role("button", name=f"Reject {deals[1]}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{deals[1]}: Not approved")

    # Tier rules and the preview: shown, or "not available" on a registration without them.
    console_nav(page, "Tiers")
    page.get_by_label("As of").fill(today.isoformat())
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("region", name="Who would move")).to_be_visible()
    preview = page.get_by_role("region", name="Who would move")
    expect(preview.locator("#preview-unavailable, table, .empty").first).to_be_visible()
    shot(page, "console-tiers")

    # Payables: run them past the hold, then a statement below the minimum payout is
    # refused (409 below_minimum_payout) and one above it is paid.
    commissions = world.commissions_url

    def adjust(amount: int) -> None:
        made = httpx.post(
            f"{commissions}/v1/admin/adjustments",
            headers={**_admin(world), "Idempotency-Key": f"console-{run}-{amount}"},
            json={"partner_id": world.alpha.partner_id, "amount_minor": amount,
                  "currency": "EUR", "reason": "console test", "reference": f"T-{run}"},
            timeout=15,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        line_id = made.json()["line_id"]

        def booked() -> bool:
            lines = httpx.get(
                f"{commissions}/v1/admin/commissions",
                params={"partner_id": world.alpha.partner_id},
                headers=_admin(world),
                timeout=15,
            ).json()["lines"]
            return any(x["line_id"] == line_id for x in lines)

        _until(booked, f"adjustment {line_id}")

    console_nav(page, "Payables")
    page.get_by_label("As of").fill((today + dt.timedelta(days=45)).isoformat())
    page.get_by_role("button", name="Run payables").click()
    expect(page.get_by_role("status")).to_contain_text("became payable")
    adjust(-15000)  # 18519 - 15000: below the EUR 50.00 minimum
    page.goto(f"{portal}/console/payables")
    page.get_by_label("Partner", exact=True).select_option(world.alpha.partner_id)
    page.get_by_label("Month", exact=True).fill(world.month)
    page.get_by_role("button", name="Mark paid").first.click()
    expect(page.locator("#below-minimum")).to_contain_text("below_minimum_payout")
    expect(page.get_by_role("alert")).to_contain_text("below the minimum payout")
    shot(page, "console-payables")
    adjust(20000)
    page.goto(f"{portal}/console/payables")
    page.get_by_label("Partner", exact=True).select_option(world.alpha.partner_id)
    page.get_by_label("Month", exact=True).fill(world.month)
    page.get_by_role("button", name="Mark paid").first.click()
    expect(page.get_by_role("status")).to_contain_text("marked paid")

    # Failed deliveries, and the isolation refusals among them.
    console_nav(page, "Failed deliveries")
    expect(page.get_by_role("heading", name="Failed deliveries", exact=True)).to_be_visible()
    page.get_by_label("Show").select_option("isolation_violation")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{portal}/console/deliveries?error=isolation_violation")
    shot(page, "console-deliveries")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{portal}/console/sign-in")
    page.goto(f"{portal}/console/partners")
    expect(page).to_have_url(f"{portal}/console/sign-in")
    context.close()


def test_the_partner_overview_charts(browser: Browser, world: World) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, world.portal, world.alpha.api_key)
    commissions = page.locator("svg#commissions-per-month-eur")
    expect(commissions).to_be_visible()
    expect(commissions.locator("text.chart-label")).to_have_count(12)
    expect(commissions.locator("text.chart-label").last).to_have_text(world.month)
    expect(commissions.locator("desc")).to_contain_text(f"{world.month}: EUR")
    renewals = page.locator("svg#renewals-per-week")
    expect(renewals).to_be_visible()
    expect(renewals.locator("rect")).to_have_count(13)
    expect(renewals.locator("desc")).to_contain_text("1 renewal in the week from")
    page.get_by_role("region", name="Renewals due per week").scroll_into_view_if_needed()
    shot(page, "console-partner-overview-charts")
    context.close()
