"""The portal's customer area (CONTRACT 6.2) against a fake of registration's customer API:
sign-in with the link's token, a session apart from partners', CSRF, the licence actions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.portal.config import Settings
from services.portal.entrypoints.app import build_app
from tests.unit.portal.fake_apis import COMMISSIONS, NOTIFICATIONS, REGISTRATION, FakePartnerApis
from tests.unit.portal.test_portal_web import Clock, form_token, sign_in

pytestmark = pytest.mark.unit

LINK_TOKEN = "cki_link-token"
SESSION = "cks_session-of-jana"


def licence(key: str, por: str | None) -> dict[str, Any]:
    return {
        "license_key": key,
        "product": "secure-pro",
        "sku": "SECURE-PRO-1Y",
        "term_start": "2026-01-10",
        "term_end": "2027-01-09",
        "partner_of_record": {"display_name": por, "seller_code": f"{por[:4].upper()}-0000"}
        if por
        else None,
        "partners_with_access": [],
    }


@dataclass
class FakeCustomerApi:
    partner: FakePartnerApis = field(default_factory=FakePartnerApis)
    tokens: set[str] = field(default_factory=lambda: {LINK_TOKEN})
    licences: list[dict[str, Any]] = field(
        default_factory=lambda: [licence("LK-A", "Alpha IT"), licence("LK-B", "Bravo IT")]
    )
    sign_ins: list[str] = field(default_factory=list)
    calls: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/v1/customer/"):
            return self.partner.handle(request)
        self.calls.append(request)
        body = json.loads(request.content) if request.content else {}
        if path == "/v1/customer/sign-in":
            self.sign_ins.append(body["email"])
            return httpx.Response(202, json={"accepted": True})
        if path == "/v1/customer/sessions":
            if body.get("token") not in self.tokens:
                return _error(401, "invalid_sign_in_token")
            self.tokens.discard(body["token"])
            return httpx.Response(
                201, json={"session_token": SESSION, "expires_at": "2099-01-01T00:00:00Z"}
            )
        if request.headers.get("authorization") != f"Bearer {SESSION}":
            return _error(401, "unauthorized")
        if path == "/v1/customer/entitlements":
            return httpx.Response(200, json={"entitlements": self.licences})
        match = re.fullmatch(
            r"/v1/customer/entitlements/([^/]+)/(partner-of-record|access/.+)", path
        )
        found = [x for x in self.licences if match and x["license_key"] == match.group(1)]
        if not found:
            return _error(404, "unknown_license_key")
        target = found[0]
        assert match is not None
        if match.group(2) == "partner-of-record":
            if request.method == "DELETE":
                target["partner_of_record"] = None
            elif target["partner_of_record"] is not None:
                return _error(409, "partner_of_record_set")
            else:
                target["partner_of_record"] = {
                    "display_name": "Set IT",
                    "seller_code": body["seller_code"],
                }
        else:
            code = match.group(2).split("/", 1)[1]
            target["partners_with_access"] = [
                a for a in target["partners_with_access"] if a["seller_code"] != code
            ]
            if request.method == "PUT":
                target["partners_with_access"].append(
                    {
                        "display_name": "Bravo IT",
                        "seller_code": code,
                        "permission": body["permission"],
                    }
                )
        return httpx.Response(200, json=target)


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}})


@pytest.fixture
def fake() -> FakeCustomerApi:
    return FakeCustomerApi()


@pytest.fixture
def client(fake: FakeCustomerApi) -> Iterator[TestClient]:
    settings = Settings(
        environment="dev",
        registration_url=REGISTRATION,
        commissions_url=COMMISSIONS,
        notifications_url=NOTIFICATIONS,
        portal_session_secret="unit-test-session-secret",
    )
    app = build_app(settings, transport=httpx.MockTransport(fake.handle), clock=Clock())
    with TestClient(app, base_url="http://portal.test", follow_redirects=False) as client:
        yield client


def customer_sign_in(client: TestClient, token: str = LINK_TOKEN) -> str:
    page = client.get("/customer/sign-in")
    assert page.status_code == 200 and "data-token-from-fragment" in page.text
    response = client.post(
        "/customer/sign-in/session", data={"token": token, "csrf_token": form_token(page.text)}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/customer/licences"
    licences = client.get("/customer/licences")
    assert licences.status_code == 200
    return form_token(licences.text)


def test_the_licences_page_needs_a_customer_session(client: TestClient) -> None:
    assert client.get("/customer/licences").headers["location"] == "/customer/sign-in"
    # A partner session is not a customer session.
    sign_in(client, "key-A")
    assert client.get("/customer/licences").headers["location"] == "/customer/sign-in"


def test_sign_in_with_the_link_token_keeps_registrations_session_sealed(
    client: TestClient, fake: FakeCustomerApi
) -> None:
    csrf = customer_sign_in(client)
    cookie = client.cookies.get("portal_customer")
    assert cookie and SESSION not in cookie and LINK_TOKEN not in cookie
    page = client.get("/customer/licences").text
    assert "Alpha IT" in page and "Bravo IT" in page and "LK-A" in page and "LK-B" in page
    assert all(c.headers["authorization"] == f"Bearer {SESSION}" for c in fake.calls[1:])
    # The link works once.
    client.post("/customer/sign-out", data={"csrf_token": csrf})
    page = client.get("/customer/sign-in")
    again = client.post(
        "/customer/sign-in/session", data={"token": LINK_TOKEN, "csrf_token": form_token(page.text)}
    )
    assert again.status_code == 401 and "used already or has expired" in again.text


def test_forms_need_their_csrf_token(client: TestClient, fake: FakeCustomerApi) -> None:
    refused = client.post("/customer/sign-in/session", data={"token": LINK_TOKEN})
    assert refused.status_code == 403 and LINK_TOKEN in fake.tokens
    customer_sign_in(client)
    before = len(fake.calls)
    forged = client.post("/customer/licences/LK-A/partner-of-record/end", data={"csrf_token": "x"})
    assert forged.status_code == 403
    assert [c.method for c in fake.calls[before:]] == ["GET"]  # only the page's list


def test_ask_for_a_link(client: TestClient, fake: FakeCustomerApi) -> None:
    page = client.get("/customer/sign-in")
    sent = client.post(
        "/customer/sign-in/link",
        data={"email": "jana@example.test", "csrf_token": form_token(page.text)},
    )
    assert sent.status_code == 200 and "a sign-in link is on its way" in sent.text
    assert fake.sign_ins == ["jana@example.test"]


def test_end_and_set_the_partner_of_record_and_manage_access(
    client: TestClient, fake: FakeCustomerApi
) -> None:
    csrf = customer_sign_in(client)
    held = client.post(
        "/customer/licences/LK-A/partner-of-record", data={"csrf_token": csrf, "seller_code": "X"}
    )
    assert held.status_code == 409 and "already has a partner of record" in held.text
    ended = client.post("/customer/licences/LK-A/partner-of-record/end", data={"csrf_token": csrf})
    assert ended.headers["location"] == "/customer/licences?done=por_ended"
    assert "nobody acts for you" in client.get(ended.headers["location"]).text
    set_ = client.post(
        "/customer/licences/LK-A/partner-of-record",
        data={"csrf_token": csrf, "seller_code": "SETT-0000"},
    )
    assert set_.status_code == 303
    granted = client.post(
        "/customer/licences/LK-A/access",
        data={"csrf_token": csrf, "seller_code": "BRAV-0000", "permission": "manage"},
    )
    assert granted.status_code == 303
    page = client.get("/customer/licences").text
    assert "BRAV-0000" in page and "manage" in page
    revoked = client.post(
        "/customer/licences/LK-A/access/BRAV-0000/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    assert fake.licences[0]["partners_with_access"] == []
    unknown = client.post(
        "/customer/licences/LK-NOPE/partner-of-record/end", data={"csrf_token": csrf}
    )
    assert unknown.status_code == 404 and "no such licence among yours" in unknown.text


def test_an_expired_registration_session_signs_the_customer_out(
    client: TestClient, fake: FakeCustomerApi
) -> None:
    customer_sign_in(client)
    fake.licences = []
    import tests.unit.portal.test_customer_area as me

    me.SESSION, old = "cks_other", me.SESSION
    try:
        response = client.get("/customer/licences")
    finally:
        me.SESSION = old
    assert response.headers["location"] == "/customer/sign-in?expired=1"
