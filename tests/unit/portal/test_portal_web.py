"""The portal against a fake of the three partner APIs: sessions, CSRF, cookies, isolation."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.portal.config import Settings
from services.portal.entrypoints.app import build_app
from tests.unit.portal.fake_apis import (
    COMMISSIONS,
    NOTIFICATIONS,
    REGISTRATION,
    FakePartnerApis,
    entitlement,
    line,
)

TODAY = dt.date(2027, 1, 15)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakePartnerApis:
    apis = FakePartnerApis()
    apis.entitlements["P-A"] = [
        entitlement("LK-A-1", "P-A", "2027-02-20", "Alpha Logistik GmbH"),
        entitlement("LK-A-2", "P-A", "2027-12-01", "Alpha Two AG"),
    ]
    apis.entitlements["P-B"] = [entitlement("LK-B-1", "P-B", "2027-02-01", "Bravo Bau GmbH")]
    apis.lines["P-A"] = [
        line("P-A", "LK-A-1", 18519, "accrued"),
        line("P-A", "LK-A-1", -9259, "payable"),
    ]
    apis.unregistered["LK-NEW-1"] = entitlement("LK-NEW-1", "", "2027-06-30", "Charlie SARL")
    return apis


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(
    fake: FakePartnerApis, clock: Clock, environment: str = "dev"
) -> Iterator[TestClient]:
    settings = Settings(
        environment=environment,
        registration_url=REGISTRATION,
        commissions_url=COMMISSIONS,
        notifications_url=NOTIFICATIONS,
        portal_session_secret="unit-test-session-secret",
    )
    app = build_app(settings, transport=fake.transport(), clock=clock, today=lambda: TODAY)
    base = "https://portal.test" if environment == "production" else "http://portal.test"
    with TestClient(app, base_url=base, follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(fake: FakePartnerApis, clock: Clock) -> Iterator[TestClient]:
    yield from make_client(fake, clock)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    page = client.get("/sign-in")
    response = client.post("/sign-in", data={"api_key": key, "csrf_token": form_token(page.text)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/overview"
    overview = client.get("/overview")
    assert overview.status_code == 200
    return form_token(overview.text)


def set_cookie_headers(response: object) -> list[str]:
    return response.headers.get_list("set-cookie")  # type: ignore[attr-defined,no-any-return]


# --- sign-in, cookies, sessions ------------------------------------------------------


def test_pages_need_a_session(client: TestClient) -> None:
    for path in (
        "/overview",
        "/entitlements",
        "/register",
        "/commissions",
        "/webhook",
        "/deals",
        "/deals/new",
        "/deals/D-P-A-1",
        "/settings",
    ):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in")
    assert client.get("/").headers["location"] == "/sign-in"


def test_session_cookie_is_httponly_strict_and_holds_no_key(
    client: TestClient, fake: FakePartnerApis
) -> None:
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in", data={"api_key": "key-A", "csrf_token": form_token(page.text)}
    )
    cookies = [c for c in set_cookie_headers(response) if c.startswith("portal_session=")]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # dev: plain http on 127.0.0.1
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 40
    assert "key-A" not in " ".join(set_cookie_headers(response))
    assert "key-A" not in client.get("/overview").text


def test_production_cookie_is_secure_and_host_prefixed(fake: FakePartnerApis, clock: Clock) -> None:
    for client in make_client(fake, clock, environment="production"):
        page = client.get("/sign-in")
        assert any("Secure" in c for c in set_cookie_headers(page))
        response = client.post(
            "/sign-in", data={"api_key": "key-A", "csrf_token": form_token(page.text)}
        )
        cookie = next(c for c in set_cookie_headers(response) if "portal_session=" in c)
        assert cookie.startswith("__Host-portal_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
        assert client.get("/overview").status_code == 200
        assert "Strict-Transport-Security" in client.get("/overview").headers


def test_sign_in_needs_its_csrf_token(client: TestClient, fake: FakePartnerApis) -> None:
    client.get("/sign-in")
    missing = client.post("/sign-in", data={"api_key": "key-A"})
    forged = client.post("/sign-in", data={"api_key": "key-A", "csrf_token": "0" * 64})
    assert missing.status_code == 403 and forged.status_code == 403
    assert not fake.partner_calls()
    assert client.get("/overview").status_code == 303


def test_sign_in_token_is_bound_to_the_browser_nonce(client: TestClient) -> None:
    token = form_token(client.get("/sign-in").text)
    client.cookies.clear()  # another browser: has the token (e.g. scraped), not the nonce
    client.get("/sign-in")
    client.cookies.set("portal_signin", "attacker-nonce", domain="portal.test")
    response = client.post("/sign-in", data={"api_key": "key-A", "csrf_token": token})
    assert response.status_code == 403


def test_unknown_key_is_refused_without_a_session(client: TestClient) -> None:
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in", data={"api_key": "not-a-key", "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 401
    assert "not accepted" in response.text
    assert not any("portal_session=" in c for c in set_cookie_headers(response))


def test_every_form_carries_a_csrf_token(client: TestClient) -> None:
    sign_in(client, "key-A")
    for path in ("/overview", "/register", "/webhook", "/deals/new", "/settings"):
        html = client.get(path).text
        forms = re.findall(r'<form method="post".*?</form>', html, flags=re.S)
        assert forms, path
        assert all('name="csrf_token"' in f for f in forms), path


def test_posts_without_the_session_csrf_token_are_refused(
    client: TestClient, fake: FakePartnerApis
) -> None:
    sign_in(client, "key-A")
    before = len(fake.partner_calls())
    assert client.post("/register", data={"license_key": "LK-NEW-1"}).status_code == 403
    assert (
        client.post(
            "/webhook", data={"url": "https://crm.example/hook", "csrf_token": "wrong"}
        ).status_code
        == 403
    )
    assert client.post("/sign-out", data={}).status_code == 403
    assert len(fake.partner_calls()) == before  # nothing reached the services
    assert client.get("/overview").status_code == 200  # still signed in


def test_sign_out_ends_the_session_server_side(client: TestClient) -> None:
    token = sign_in(client, "key-A")
    old_cookie = client.cookies.get("portal_session")
    response = client.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert any(
        c.startswith("portal_session=") and "Max-Age=0" in c for c in set_cookie_headers(response)
    )
    client.cookies.set("portal_session", old_cookie or "", domain="portal.test")
    assert client.get("/overview").status_code == 303  # the old id is worthless now


def test_sign_in_issues_a_new_session_id(client: TestClient) -> None:
    client.cookies.set("portal_session", "planted-by-an-attacker", domain="portal.test")
    sign_in(client, "key-A")
    first = client.cookies.get("portal_session")
    assert first and first != "planted-by-an-attacker"
    client.cookies.clear()
    sign_in(client, "key-A")
    assert client.cookies.get("portal_session") != first


def test_idle_session_expires(client: TestClient, clock: Clock) -> None:
    sign_in(client, "key-A")
    clock.now += 29 * 60
    assert client.get("/overview").status_code == 200
    clock.now += 31 * 60
    response = client.get("/overview")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?expired=1"


def test_a_refused_key_mid_session_signs_out(client: TestClient, fake: FakePartnerApis) -> None:
    sign_in(client, "key-A")
    del fake.keys["key-A"]  # the partner was suspended
    response = client.get("/entitlements")
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?expired=1"
    fake.keys["key-A"] = "P-A"
    assert client.get("/entitlements").status_code == 303


# --- only the signed-in partner's key and data ---------------------------------------


def test_the_portal_sends_only_the_signed_in_partners_key(
    fake: FakePartnerApis, clock: Clock
) -> None:
    for alice in make_client(fake, clock):
        for bob in make_client(fake, clock):
            sign_in(alice, "key-A")
            fake.requests.clear()
            for path in ("/overview", "/entitlements", "/commissions", "/deliveries"):
                assert alice.get(path).status_code == 200
            alice.get("/commissions/2027-01.csv")
            assert fake.keys_sent() == {"Bearer key-A"}

            sign_in(bob, "key-B")
            fake.requests.clear()
            pages = [
                bob.get(p).text
                for p in ("/overview", "/entitlements", "/commissions?month=2027-01", "/deliveries")
            ]
            pages.append(bob.get("/commissions/2027-01.csv").text)
            assert fake.keys_sent() == {"Bearer key-B"}
            for html in pages:
                assert "LK-A-1" not in html and "Alpha" not in html and "P-A" not in html
            assert "LK-B-1" in pages[1]
            assert not any(r.url.path.startswith("/v1/admin") for r in fake.requests)


def test_cross_partner_session_cookie_swap_is_not_possible(
    fake: FakePartnerApis, clock: Clock
) -> None:
    for alice in make_client(fake, clock):
        sign_in(alice, "key-A")
        forged = alice.cookies.get("portal_session") or ""
        for mallory in make_client(fake, clock):
            mallory.cookies.set("portal_session", forged[:-2] + "xx", domain="portal.test")
            assert mallory.get("/overview").status_code == 303


# --- pages ---------------------------------------------------------------------------


def test_overview_shows_renewals_and_this_months_totals(client: TestClient) -> None:
    sign_in(client, "key-A")
    html = client.get("/overview").text
    assert "LK-A-1" in html and "in 36 days" in html
    assert "LK-A-2" not in html  # ends after the 90-day horizon
    assert "EUR 185.19" in html and "EUR -92.59" in html and "EUR 92.60" in html


def test_entitlements_search_by_key_or_customer(client: TestClient) -> None:
    sign_in(client, "key-A")
    assert "LK-A-2" in client.get("/entitlements", params={"q": "alpha two"}).text
    by_key = client.get("/entitlements", params={"q": "lk-a-1"}).text
    assert "LK-A-1" in by_key and "LK-A-2" not in by_key
    before = client.get("/entitlements", params={"term_end_before": "2027-03-01"}).text
    assert "LK-A-1" in before and "LK-A-2" not in before
    assert "partner sale" in before


def test_register_a_licence(client: TestClient, fake: FakePartnerApis) -> None:
    token = sign_in(client, "key-A")
    created = client.post("/register", data={"license_key": "LK-NEW-1", "csrf_token": token})
    assert created.status_code == 201 and "Registered" in created.text
    again = client.post("/register", data={"license_key": "LK-NEW-1", "csrf_token": token})
    assert again.status_code == 200 and "Already registered by you" in again.text
    held = client.post("/register", data={"license_key": "LK-B-1", "csrf_token": token})
    assert held.status_code == 409 and "Another partner" in held.text
    assert "Bravo" not in held.text
    unknown = client.post("/register", data={"license_key": "LK-NOPE", "csrf_token": token})
    assert unknown.status_code == 404 and "no licence with that key" in unknown.text


def test_register_needs_all_customer_fields_when_any(
    client: TestClient, fake: FakePartnerApis
) -> None:
    token = sign_in(client, "key-A")
    before = len(fake.partner_calls())
    response = client.post(
        "/register",
        data={"license_key": "LK-NEW-1", "org_name": "Charlie SARL", "csrf_token": token},
    )
    assert response.status_code == 422
    assert 'id="email-error"' in response.text and 'aria-invalid="true"' in response.text
    assert len(fake.partner_calls()) == before


def test_statement_csv_download(client: TestClient, fake: FakePartnerApis) -> None:
    sign_in(client, "key-A")
    page = client.get("/commissions", params={"month": "2027-01"}).text
    assert 'href="/commissions/2027-01.csv"' in page
    response = client.get("/commissions/2027-01.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="commissions-2027-01.csv"' in response.headers["content-disposition"]
    assert response.text.splitlines()[0] == "line_id,amount_minor,currency"
    assert fake.requests[-1].headers["accept"] == "text/csv"
    assert client.get("/commissions/2027-13.csv").status_code == 404


def test_commissions_filter_by_status(client: TestClient) -> None:
    sign_in(client, "key-A")
    html = client.get("/commissions", params={"month": "2027-01", "status": "payable"}).text
    assert "EUR -92.59" in html and "L-LK-A-1-accrued" not in html


def test_webhook_secret_is_shown_once(client: TestClient, fake: FakePartnerApis) -> None:
    token = sign_in(client, "key-A")
    saved = client.post("/webhook", data={"url": "https://crm.example/hook", "csrf_token": token})
    assert saved.status_code == 200
    assert "whsec_P-A_secret" in saved.text
    assert saved.headers["cache-control"] == "no-store"
    assert fake.webhooks["P-A"] == "https://crm.example/hook"
    later = client.get("/webhook").text
    assert "whsec_P-A_secret" not in later and "https://crm.example/hook" in later
    refused = client.post("/webhook", data={"url": "http://10.0.0.1/x", "csrf_token": token})
    assert refused.status_code == 422 and "url must be https" in refused.text


def test_settings_show_and_change_the_renewal_mode(
    client: TestClient, fake: FakePartnerApis
) -> None:
    fake.profiles["P-A"] = {"display_name": "Alpine IT Services", "renewal_mode": "partner_first"}
    token = sign_in(client, "key-A")
    page = client.get("/settings").text
    assert 'data-mode="partner_first"' in page
    assert re.search(r'value="partner_first"[^>]*checked', page)
    saved = client.post(
        "/settings/renewal-mode", data={"renewal_mode": "partner_only", "csrf_token": token}
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    assert fake.profiles["P-A"]["renewal_mode"] == "partner_only"
    assert 'data-mode="partner_only"' in saved.text
    puts = [c for c in fake.partner_calls() if c.url.path == "/v1/partner/renewal-mode"]
    assert [c.headers["authorization"] for c in puts] == ["Bearer key-A"]
    bad = client.post(
        "/settings/renewal-mode", data={"renewal_mode": "sometimes", "csrf_token": token}
    )
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    forged = client.post(
        "/settings/renewal-mode", data={"renewal_mode": "vendor_direct", "csrf_token": "wrong"}
    )
    assert forged.status_code in (400, 403)
    assert fake.profiles["P-A"]["renewal_mode"] == "partner_only"


def test_delivery_log(client: TestClient) -> None:
    sign_in(client, "key-A")
    html = client.get("/deliveries").text
    assert "commission earned" in html and "LK-P-A-1" in html


def test_security_headers(client: TestClient) -> None:
    response = client.get("/sign-in")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_branding_from_the_partner_profile(client: TestClient, fake: FakePartnerApis) -> None:
    fake.profiles["P-A"] = {
        "display_name": "Alpine IT Services",
        "branding": {"color": "#FFD700", "logo_url": "https://alpine.example/logo.png"},
    }
    sign_in(client, "key-A")
    html = client.get("/overview").text
    assert "Alpine IT Services" in html and "https://alpine.example/logo.png" in html
    css = client.get("/brand.css").text
    assert "--brand: #FFD700" in css and "--on-brand: #000000" in css


def test_without_a_profile_route_the_header_is_generic(client: TestClient) -> None:
    sign_in(client, "key-A")
    assert "Channelkeep" in client.get("/overview").text


def test_unavailable_service_gives_a_503_page(client: TestClient, fake: FakePartnerApis) -> None:
    sign_in(client, "key-A")
    fake.down = True
    response = client.get("/overview")
    assert response.status_code == 503 and "Temporarily unavailable" in response.text


def test_health_and_readiness(client: TestClient, fake: FakePartnerApis) -> None:
    assert client.get("/healthz").json()["service"] == "portal"
    ready = client.get("/status")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    fake.down = True
    assert client.get("/status").status_code == 503
    # Readiness is the pod's own: an upstream API down does not take the portal out.
    assert client.get("/readyz").status_code == 200
    assert "http_requests_total" in client.get("/metrics").text


# --- deals (CONTRACT 6.3) ------------------------------------------------------------

DEAL_FORM = {
    "org_name": "Delta Handel GmbH",
    "email": "einkauf@delta-handel.example",
    "country": "de",
    "customer_id": "",
    "product": "secure-pro",
    "expected_close": "2027-03-31",
    "estimated_amount": "12,500.50",
    "currency": "EUR",
}


def test_register_a_deal_list_it_and_see_its_status(
    client: TestClient, fake: FakePartnerApis
) -> None:
    token = sign_in(client, "key-A")
    form = client.get("/deals/new")
    assert form.status_code == 200 and 'min="2027-01-15"' in form.text
    created = client.post("/deals", data={**DEAL_FORM, "csrf_token": token})
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/deals/D-P-A-1?submitted=1"
    sent = fake.deals["P-A"][0]
    assert sent["estimated_amount_minor"] == 1250050 and sent["customer"]["country"] == "DE"
    assert "customer_id" not in fake.requests[-1].content.decode()
    status = client.get("/deals/D-P-A-1?submitted=1")
    assert status.status_code == 200
    assert "Deal registered" in status.text and "Submitted, awaiting approval" in status.text
    assert "EUR 12,500.50" in status.text
    listing = client.get("/deals")
    assert "D-P-A-1" in listing.text and "Delta Handel GmbH" in listing.text
    assert 'aria-current="page"' in listing.text


def test_a_deal_conflict_names_nobody(client: TestClient, fake: FakePartnerApis) -> None:
    fake.deals["P-B"] = [
        {
            "deal_id": "D-B-9",
            "partner_id": "P-B",
            "status": "approved",
            "product": "secure-pro",
            "customer": {"email": "EINKAUF@delta-handel.example", "org_name": "Delta"},
        }
    ]
    token = sign_in(client, "key-A")
    refused = client.post("/deals", data={**DEAL_FORM, "csrf_token": token})
    assert refused.status_code == 409
    assert "registered deal already protects this customer" in refused.text
    assert "P-B" not in refused.text and "D-B-9" not in refused.text
    shown = client.get("/deals/D-P-A-1")
    assert "Not approved" in shown.text and "P-B" not in shown.text


def test_deal_form_errors_name_the_field(client: TestClient, fake: FakePartnerApis) -> None:
    token = sign_in(client, "key-A")
    before = len(fake.partner_calls())
    for changes, field in (
        ({"org_name": ""}, "org_name"),
        ({"expected_close": "2027-01-14"}, "expected_close"),
        ({"expected_close": "next week"}, "expected_close"),
        ({"estimated_amount": "12.345"}, "estimated_amount"),
        ({"estimated_amount": "-5"}, "estimated_amount"),
        ({"currency": "XYZ"}, "estimated_amount"),
    ):
        response = client.post("/deals", data={**DEAL_FORM, **changes, "csrf_token": token})
        assert response.status_code == 422, changes
        assert f'id="{field}-error"' in response.text, changes
    assert len(fake.partner_calls()) == before  # refused before any API call
    unknown = client.post("/deals", data={**DEAL_FORM, "product": "nope", "csrf_token": token})
    assert unknown.status_code == 422 and 'id="product-error"' in unknown.text
    assert client.post("/deals", data={**DEAL_FORM}).status_code == 403  # no CSRF token


def test_another_partners_deal_is_not_found(client: TestClient, fake: FakePartnerApis) -> None:
    fake.deals["P-B"] = [{"deal_id": "D-B-1", "partner_id": "P-B", "status": "submitted"}]
    sign_in(client, "key-A")
    response = client.get("/deals/D-B-1")
    assert response.status_code == 404 and "Deal not found" in response.text
    assert "D-B-1" not in client.get("/deals").text
