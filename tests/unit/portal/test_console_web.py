"""The channel team's console against fakes of the admin and partner APIs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping

import pytest
from fastapi.testclient import TestClient

from services.portal.config import Settings
from services.portal.domain.operators import Operator
from services.portal.entrypoints import console_pages
from services.portal.entrypoints.app import build_app
from tests.unit.portal.fake_admin_api import (
    ADMIN_TOKEN,
    FakeAdminApis,
    combined,
    ledger_line,
    partner,
)
from tests.unit.portal.fake_apis import (
    COMMISSIONS,
    NOTIFICATIONS,
    REGISTRATION,
    FakePartnerApis,
    entitlement,
)

TODAY = dt.date(2027, 1, 15)
CONSOLE_PAGES = [
    "/console",
    "/console/partners",
    "/console/partners/P-A",
    "/console/conflicts",
    "/console/deals",
    "/console/tiers",
    "/console/payables",
    "/console/deliveries",
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def partner_apis() -> FakePartnerApis:
    apis = FakePartnerApis()
    apis.entitlements["P-A"] = [entitlement("LK-A-1", "P-A", "2027-02-20", "Alpha GmbH")]
    return apis


@pytest.fixture
def admin() -> FakeAdminApis:
    fake = FakeAdminApis(
        partners=[
            partner("P-A", "Nordlicht IT", "gold", renewal_mode="partner_first"),
            partner("P-B", "Bravo Systems", "silver"),
            partner("P-C", "Charlie <script>", "platinum"),
        ],
        lines=[
            ledger_line("P-A", "2026-12", 12000, "payable"),
            ledger_line("P-A", "2027-01", 3000, "accrued"),
            ledger_line("P-B", "2026-12", 1200, "payable"),
            ledger_line("P-C", "2026-11", 50000, "paid"),
        ],
        conflicts=[
            {
                "conflict_id": "X-1",
                "license_key": "LK-A-1",
                "claimant_partner_id": "P-B",
                "claim_source": "partner_registration",
                "claimed_at": "2027-01-10T09:00:00Z",
                "via": "partner_api",
                "ref": "r",
                "partner_of_record": {
                    "partner_id": "P-A",
                    "since": "2026-01-10T09:00:00Z",
                    "source": "partner_sale",
                },
                "reason": "weaker_or_equal_claim",
                "recorded_at": "2027-01-10T09:00:00Z",
            }
        ],
        deals=[
            {
                "deal_id": "D-1",
                "partner_id": "P-A",
                "customer": {"org_name": "Kunde AG", "email": "it@kunde.example", "country": "DE"},
                "product": "secure-pro",
                "expected_close": "2027-03-01",
                "estimated_amount_minor": 1250000,
                "currency": "EUR",
                "status": "submitted",
                "submitted_at": "2027-01-14T09:00:00Z",
                "protected_until": None,
            },
            {
                "deal_id": "D-2",
                "partner_id": "P-B",
                "customer": {"org_name": "Kunde AG", "email": "it@kunde.example", "country": "DE"},
                "product": "secure-pro",
                "expected_close": "2027-03-01",
                "estimated_amount_minor": 900000,
                "currency": "EUR",
                "status": "submitted",
                "submitted_at": "2027-01-14T10:00:00Z",
                "protected_until": None,
                "conflicts": True,
            },
        ],
        deliveries=[
            {
                "notification_id": "N-1",
                "notification_type": "renewal_reminder",
                "channel": "email",
                "audience": "customer",
                "status": "failed",
                "attempts": 1,
                "error": "isolation_violation",
                "error_detail": "names another partner: phone",
                "partner_scope": "P-A",
                "license_keys": ["LK-A-1"],
                "created_at": "2027-01-12T08:00:00Z",
            },
            {
                "notification_id": "N-2",
                "notification_type": "commission_earned",
                "channel": "webhook",
                "audience": "partner",
                "status": "failed",
                "attempts": 8,
                "error": "http_503",
                "error_detail": None,
                "partner_scope": "P-B",
                "license_keys": [],
                "created_at": "2027-01-13T08:00:00Z",
            },
        ],
    )
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(
    partner_apis: FakePartnerApis, admin: FakeAdminApis, clock: Clock, environment: str = "dev"
) -> Iterator[TestClient]:
    settings = Settings(
        environment=environment,
        registration_url=REGISTRATION,
        commissions_url=COMMISSIONS,
        notifications_url=NOTIFICATIONS,
        portal_session_secret="unit-test-session-secret",
    )
    app = build_app(
        settings, transport=combined(partner_apis, admin), clock=clock, today=lambda: TODAY
    )
    base = "https://portal.test" if environment == "production" else "http://portal.test"
    with TestClient(app, base_url=base, follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(
    partner_apis: FakePartnerApis, admin: FakeAdminApis, clock: Clock
) -> Iterator[TestClient]:
    yield from make_client(partner_apis, admin, clock)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def console_sign_in(client: TestClient, token: str = ADMIN_TOKEN) -> str:
    page = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in", data={"admin_token": token, "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    return form_token(client.get("/console").text)


def partner_sign_in(client: TestClient, key: str) -> None:
    page = client.get("/sign-in")
    response = client.post("/sign-in", data={"api_key": key, "csrf_token": form_token(page.text)})
    assert response.status_code == 303


# --- sign-in and the separation from partner sessions ----------------------------------


def test_console_pages_need_a_console_session(client: TestClient) -> None:
    for path in CONSOLE_PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in", path


def test_a_partner_session_opens_no_console_page(client: TestClient) -> None:
    partner_sign_in(client, "key-A")
    assert client.get("/overview").status_code == 200
    for path in CONSOLE_PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/sign-in"), path


def test_a_partner_key_is_refused_at_the_console_sign_in(
    client: TestClient, admin: FakeAdminApis
) -> None:
    page = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in", data={"admin_token": "key-A", "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 401
    assert "Partner API keys do not open the console" in response.text
    assert "portal_console=" not in response.headers.get("set-cookie", "")
    assert client.get("/console").status_code == 303


def test_a_partner_cookie_in_the_console_cookie_opens_nothing(client: TestClient) -> None:
    partner_sign_in(client, "key-A")
    partner_cookie = client.cookies["portal_session"]
    client.cookies.set("portal_console", partner_cookie)
    for path in CONSOLE_PAGES:
        assert client.get(path).status_code == 303, path


def test_a_console_cookie_is_no_partner_session(client: TestClient) -> None:
    console_sign_in(client)
    client.cookies.set("portal_session", client.cookies["portal_console"])
    response = client.get("/overview")
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_console_sign_in_needs_its_csrf_token(client: TestClient, admin: FakeAdminApis) -> None:
    client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"admin_token": ADMIN_TOKEN})
    assert response.status_code == 403
    assert not admin.requests


def test_a_token_in_a_callback_url_signs_nobody_in(client: TestClient) -> None:
    page = client.get("/console/sign-in")
    response = client.get(
        "/console/sign-in/callback",
        params={"admin_token": ADMIN_TOKEN, "state": form_token(page.text)},
    )
    assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    assert client.get("/console").status_code == 303


def test_console_cookie_is_httponly_strict_and_holds_no_token(client: TestClient) -> None:
    page = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in", data={"admin_token": ADMIN_TOKEN, "csrf_token": form_token(page.text)}
    )
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("portal_console=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert ADMIN_TOKEN not in cookie


def test_production_console_cookie_is_secure_and_host_prefixed(
    partner_apis: FakePartnerApis, admin: FakeAdminApis, clock: Clock
) -> None:
    for client in make_client(partner_apis, admin, clock, environment="production"):
        page = client.get("/console/sign-in")
        response = client.post(
            "/console/sign-in",
            data={"admin_token": ADMIN_TOKEN, "csrf_token": form_token(page.text)},
        )
        cookie = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith("__Host-portal_console=")
        )
        assert "Secure" in cookie


def test_the_token_is_sent_to_admin_routes_only(
    client: TestClient, admin: FakeAdminApis, partner_apis: FakePartnerApis
) -> None:
    console_sign_in(client)
    for path in CONSOLE_PAGES:
        assert client.get(path).status_code == 200, path
    assert {r.headers["authorization"] for r in admin.requests} == {f"Bearer {ADMIN_TOKEN}"}
    assert not partner_apis.partner_calls()


def test_sign_out_ends_the_console_session(client: TestClient) -> None:
    token = console_sign_in(client)
    stolen = client.cookies["portal_console"]
    response = client.post("/console/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    client.cookies.set("portal_console", stolen)
    assert client.get("/console").status_code == 303


def test_idle_console_session_expires(client: TestClient, clock: Clock) -> None:
    console_sign_in(client)
    clock.now += 31 * 60
    response = client.get("/console")
    assert response.headers["location"] == "/console/sign-in?expired=1"


def test_a_rotated_admin_token_signs_the_operator_out(
    client: TestClient, admin: FakeAdminApis
) -> None:
    console_sign_in(client)
    admin.admin_token = "rotated-operator-token"  # ADMIN_TOKEN changed on the services
    response = client.get("/console/partners")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?expired=1"


def test_console_posts_need_the_console_csrf_token(
    client: TestClient, admin: FakeAdminApis
) -> None:
    console_sign_in(client)
    response = client.post("/console/partners/P-A", data={"tier": "platinum"})
    assert response.status_code == 403
    assert not admin.patches


def test_an_authenticator_can_be_swapped_in(
    partner_apis: FakePartnerApis, admin: FakeAdminApis, clock: Clock
) -> None:
    class Redirecting:
        kind = "redirect"

        async def start(self, state: str) -> str | None:
            return f"https://idp.example/authorize?state={state}"

        async def finish(self, params: Mapping[str, str]) -> Operator | None:
            if params.get("code") != "good":
                return None
            return Operator("ana@vendor.example", ADMIN_TOKEN, "oidc")

    for client in make_client(partner_apis, admin, clock):
        client.app.state.operator_authenticator = Redirecting()  # type: ignore[attr-defined]
        page = client.get("/console/sign-in")
        assert "Sign in with your company account" in page.text
        started = client.get("/console/sign-in/start")
        state = started.headers["location"].split("state=")[1]
        bad = client.get("/console/sign-in/callback", params={"code": "bad", "state": state})
        assert bad.status_code == 401
        forged = client.get("/console/sign-in/callback", params={"code": "good", "state": "x"})
        assert forged.status_code == 403
        client.get("/console/sign-in")  # a failed callback showed the page: a new nonce
        state = client.get("/console/sign-in/start").headers["location"].split("state=")[1]
        good = client.get("/console/sign-in/callback", params={"code": "good", "state": state})
        assert good.status_code == 303
        assert "ana@vendor.example" in client.get("/console").text
        assert console_pages.NAV[0][0] == "/console"


# --- the areas -------------------------------------------------------------------------


def test_overview_counts_queues_and_charts_revenue_per_tier(client: TestClient) -> None:
    console_sign_in(client)
    page = client.get("/console").text
    assert "<strong>2</strong> deals awaiting approval" in page
    assert "<strong>1</strong> attribution conflict" in page
    assert "<strong>2</strong> failed deliveries" in page
    assert 'id="revenue-per-tier-eur"' in page
    assert "platinum: EUR 5,000.00" in page  # P-C's 50000 minor x 10 base


def test_partners_list_and_search(client: TestClient) -> None:
    console_sign_in(client)
    page = client.get("/console/partners").text
    assert "Nordlicht IT" in page and "Bravo Systems" in page
    assert "Charlie &lt;script&gt;" in page and "<script>" not in page.split("<main")[1]
    found = client.get("/console/partners", params={"q": "nordlicht"}).text
    assert "Nordlicht IT" in found and "Bravo Systems" not in found
    by_code = client.get("/console/partners", params={"q": "7k3m0p-b"}).text
    assert "Bravo Systems" in by_code
    by_tier = client.get("/console/partners", params={"tier": "silver"}).text
    assert "Bravo Systems" in by_tier and "Nordlicht IT" not in by_tier


def test_create_a_partner_shows_its_key_once(client: TestClient, admin: FakeAdminApis) -> None:
    token = console_sign_in(client)
    missing = client.post("/console/partners", data={"csrf_token": token, "type": "var"})
    assert missing.status_code == 422 and 'aria-invalid="true"' in missing.text
    made = client.post(
        "/console/partners",
        data={
            "csrf_token": token,
            "display_name": "Delta Net",
            "legal_name": "Delta Net SARL",
            "contact_email": "hello@delta.example",
            "type": "msp",
            "tier": "bronze",
        },
    )
    assert made.status_code == 201
    assert "ckp_shown_once_secret" in made.text and "shown only this once" in made.text
    assert made.headers["cache-control"] == "no-store"
    assert "ckp_shown_once_secret" not in client.get("/console/partners").text


def test_change_tier_status_and_renewal_mode(client: TestClient, admin: FakeAdminApis) -> None:
    token = console_sign_in(client)
    page = client.get("/console/partners/P-A").text
    assert "partner_first" in page and 'id="commissions-per-month-eur"' in page
    saved = client.post(
        "/console/partners/P-A",
        data={
            "csrf_token": token,
            "tier": "platinum",
            "status": "active",
            "renewal_mode": "vendor_direct",
        },
    )
    assert saved.status_code == 200
    assert admin.patches == [("P-A", {"tier": "platinum", "renewal_mode": "vendor_direct"})]
    assert "Saved: tier platinum, renewal mode vendor_direct." in saved.text
    same = client.post(
        "/console/partners/P-B",
        data={"csrf_token": token, "tier": "silver", "status": "active", "renewal_mode": ""},
    )
    assert "Nothing changed." in same.text and len(admin.patches) == 1
    assert client.get("/console/partners/P-NOPE").status_code == 404


def test_conflict_reassign_needs_a_reason(client: TestClient, admin: FakeAdminApis) -> None:
    token = console_sign_in(client)
    page = client.get("/console/conflicts").text
    assert "LK-A-1" in page and "Bravo Systems" in page
    refused = client.post(
        "/console/conflicts/reassign",
        data={"csrf_token": token, "license_key": "LK-A-1", "partner_id": "P-B", "reason": ""},
    )
    assert refused.status_code == 422 and not admin.reassigned
    done = client.post(
        "/console/conflicts/reassign",
        data={
            "csrf_token": token,
            "license_key": "LK-A-1",
            "partner_id": "P-B",
            "reason": "Customer confirmed Bravo sold it",
        },
    )
    assert done.status_code == 200 and "partner of record is now P-B" in done.text
    assert admin.reassigned == [
        {"license_key": "LK-A-1", "partner_id": "P-B", "reason": "Customer confirmed Bravo sold it"}
    ]
    cleared = client.post(
        "/console/conflicts/reassign",
        data={"csrf_token": token, "license_key": "LK-A-1", "partner_id": "", "reason": "void"},
    )
    assert cleared.status_code == 200 and admin.reassigned[-1]["partner_id"] is None


def test_deals_approve_reject_and_conflict(client: TestClient, admin: FakeAdminApis) -> None:
    token = console_sign_in(client)
    page = client.get("/console/deals").text
    assert "D-1" in page and "EUR 12,500.00" in page
    conflict = client.post("/console/deals/D-2/approve", data={"csrf_token": token})
    assert conflict.status_code == 409 and "already protects this customer" in conflict.text
    no_reason = client.post("/console/deals/D-2/reject", data={"csrf_token": token})
    assert no_reason.status_code == 422
    rejected = client.post(
        "/console/deals/D-2/reject", data={"csrf_token": token, "reason": "Duplicate of D-1"}
    )
    assert rejected.status_code == 200 and "D-2: Not approved" in rejected.text
    approved = client.post("/console/deals/D-1/approve", data={"csrf_token": token})
    assert "D-1: Approved, protected until 2027-04-15." in approved.text
    assert "No deals are waiting." in approved.text


def test_tiers_degrade_when_registration_has_no_rules_or_preview(client: TestClient) -> None:
    token = console_sign_in(client)
    page = client.get("/console/tiers").text
    assert 'id="rules-unavailable"' in page
    preview = client.get("/console/tiers", params={"as_of": "2027-01-31"}).text
    assert 'id="preview-unavailable"' in preview and "not available" in preview
    evaluated = client.post("/console/tiers/evaluate", data={"csrf_token": token})
    assert evaluated.status_code == 404 and "not available" in evaluated.text


def test_tier_rules_preview_save_and_evaluate(client: TestClient, admin: FakeAdminApis) -> None:
    admin.tier_rules = {
        "versions": [
            {
                "version": 1,
                "effective_from": "2026-01-01",
                "currency": "EUR",
                "fx": {"USD": "0.92"},
                "tiers": {
                    "platinum": {"min_revenue_minor": 50000000, "min_certified": 4},
                    "gold": {"min_revenue_minor": 10000000, "min_certified": 2},
                    "silver": {"min_revenue_minor": 2500000, "min_certified": 1},
                    "bronze": {"min_revenue_minor": 0, "min_certified": 0},
                },
                "demotion_grace_days": 90,
            }
        ],
        "in_force": 1,
    }
    admin.preview = {
        "as_of": "2027-01-31",
        "changes": [
            {"partner_id": "P-B", "display_name": "Bravo Systems", "from": "silver", "to": "gold"}
        ],
    }
    token = console_sign_in(client)
    page = client.get("/console/tiers").text
    assert "EUR 500,000.00" in page and "1 USD = 0.92" in page
    assert 'value="100000.00"' in page  # gold pre-filled in major units
    preview = client.get("/console/tiers", params={"as_of": "2027-01-31"}).text
    assert "Bravo Systems" in preview and "would" in preview.lower()
    form = {
        "csrf_token": token,
        "effective_from": "2027-02-01",
        "currency": "EUR",
        "fx": "USD=0.92, GBP=1.17",
        "demotion_grace_days": "90",
        "platinum_revenue": "500000",
        "platinum_certified": "4",
        "gold_revenue": "100000.50",
        "gold_certified": "2",
        "silver_revenue": "25000",
        "silver_certified": "1",
        "bronze_revenue": "0",
        "bronze_certified": "0",
    }
    bad = client.post("/console/tiers/rules", data={**form, "gold_revenue": "1.005"})
    assert bad.status_code == 422 and not admin.saved_rules
    saved = client.post("/console/tiers/rules", data=form)
    assert saved.status_code == 200 and "in force from 2027-02-01" in saved.text
    assert admin.saved_rules[0]["tiers"]["gold"] == {
        "min_revenue_minor": 10000050,
        "min_certified": 2,
    }
    assert admin.saved_rules[0]["fx"] == {"USD": "0.92", "GBP": "1.17"}
    evaluated = client.post(
        "/console/tiers/evaluate", data={"csrf_token": token, "as_of": "2027-01-31"}
    )
    assert "1 partner(s) changed tier" in evaluated.text and admin.evaluated == ["2027-01-31"]


def test_payables_run_mark_paid_and_below_minimum(client: TestClient, admin: FakeAdminApis) -> None:
    token = console_sign_in(client)
    page = client.get("/console/payables").text
    assert "EUR 120.00" in page and "EUR 12.00" in page
    run = client.post("/console/payables/run", data={"csrf_token": token, "as_of": "2027-02-20"})
    assert "2027-02-20: 1 line became payable." in run.text
    paid = client.post(
        "/console/statements/paid",
        data={"csrf_token": token, "partner_id": "P-A", "month": "2026-12"},
    )
    assert paid.status_code == 200 and "P-A 2026-12: 1 line marked paid." in paid.text
    admin.below_minimum.add("P-B")
    below = client.post(
        "/console/statements/paid",
        data={"csrf_token": token, "partner_id": "P-B", "month": "2026-12"},
    )
    assert below.status_code == 409
    assert 'id="below-minimum"' in below.text and "below_minimum_payout" in below.text
    assert "carry into the partner's next statement" in below.text
    bad_month = client.post(
        "/console/statements/paid", data={"csrf_token": token, "partner_id": "P-A", "month": "12"}
    )
    assert bad_month.status_code == 422


def test_failed_deliveries_show_isolation_refusals(client: TestClient) -> None:
    console_sign_in(client)
    page = client.get("/console/deliveries").text
    assert "2 failed deliveries" in page
    assert "isolation_violation" in page and "names another partner: phone" in page
    only = client.get("/console/deliveries", params={"error": "isolation_violation"}).text
    assert "1 failed delivery" in only and "http_503" not in only


def test_a_service_down_gives_a_console_503_page(
    client: TestClient, partner_apis: FakePartnerApis
) -> None:
    console_sign_in(client)
    partner_apis.down = True
    response = client.get("/console/deals")
    assert response.status_code == 503
    assert "Channel team console" in response.text and "Temporarily unavailable" in response.text


def test_partner_overview_charts_commissions_and_renewals(
    client: TestClient, partner_apis: FakePartnerApis
) -> None:
    partner_apis.lines["P-A"] = [
        {**line_ok, "occurred_at": f"{month}-05T10:00:00Z"}
        for month, line_ok in (
            ("2026-03", _line(1000)),
            ("2026-12", _line(4000)),
            ("2027-01", _line(2000)),
        )
    ]
    partner_sign_in(client, "key-A")
    page = client.get("/overview").text
    assert 'id="commissions-per-month-eur"' in page and 'id="renewals-per-week"' in page
    assert "2026-12: EUR 40.00" in page
    assert "1 renewal in the week from 2027-02-19" in page


def _line(amount: int) -> dict[str, object]:
    return {
        "line_id": f"L-{amount}",
        "partner_id": "P-A",
        "amount_minor": amount,
        "currency": "EUR",
        "status": "accrued",
    }
