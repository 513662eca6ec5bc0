"""The portal by key role (CONTRACT 6.7): nav and pages per role, and the Keys page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.unit.portal.fake_apis import FakePartnerApis
from tests.unit.portal.test_portal_web import (  # noqa: F401 - fixtures
    Clock,
    clock,
    fake,
    form_token,
    make_client,
    sign_in,
)

pytestmark = pytest.mark.unit

PAGES = (
    "/entitlements",
    "/register",
    "/deals",
    "/commissions",
    "/tier",
    "/settings",
    "/webhook",
    "/deliveries",
    "/keys",
)
EXPECTED = {
    "admin": set(PAGES),
    "sales": {"/entitlements", "/register", "/deals", "/tier"},
    "finance": {"/commissions", "/tier"},
}


@pytest.fixture
def client(fake: FakePartnerApis, clock: Clock) -> Iterator[TestClient]:  # noqa: F811
    fake.keys |= {"key-sales": "P-A", "key-finance": "P-A"}
    fake.roles |= {"key-sales": "sales", "key-finance": "finance"}
    yield from make_client(fake, clock)


def nav_links(html: str) -> set[str]:
    nav = html.split('<nav aria-label="Portal">', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="([^"]+)"', nav)) - {"/overview"}


@pytest.mark.parametrize("role", ["admin", "sales", "finance"])
def test_each_role_sees_and_opens_only_its_pages(client: TestClient, role: str) -> None:
    sign_in(client, "key-A" if role == "admin" else f"key-{role}")
    overview = client.get("/overview")
    assert nav_links(overview.text) == EXPECTED[role]
    assert ("Up for renewal" in overview.text) == (role != "finance")
    assert ("Commissions in" in overview.text) == (role != "sales")
    for page in PAGES:
        status = client.get(page).status_code
        assert status == (200 if page in EXPECTED[role] else 403), (role, page)
    statement = client.get("/commissions/2027-01.csv").status_code
    assert statement == (200 if role != "sales" else 403)


def test_the_api_refusing_a_role_is_a_403_page(
    client: TestClient,
    fake: FakePartnerApis,  # noqa: F811
) -> None:
    token = sign_in(client, "key-A")
    fake.roles["key-A"] = "finance"  # the key's role is the API's to say, not the portal's
    refused = client.post("/register", data={"license_key": "LK-NEW-1", "csrf_token": token})
    assert refused.status_code == 403 and "Not for this key" in refused.text


def test_keys_page_creates_shows_once_and_revokes(client: TestClient) -> None:
    token = sign_in(client, "key-A")
    page = client.get("/keys")
    assert page.status_code == 200
    assert "created with the partner" in page.text and "ckp_" not in page.text
    made = client.post(
        "/keys", data={"name": "Finance desk", "role": "finance", "csrf_token": token}
    )
    assert made.status_code == 201
    new_key = re.search(r'id="new-key" type="text" readonly value="([^"]+)"', made.text)
    assert new_key and new_key.group(1).startswith("ckp_new_")
    again = client.get("/keys")
    assert new_key.group(1) not in again.text and "Finance desk" in again.text
    key_id = re.search(
        r'action="/keys/([^"]+)/revoke"[^>]*>\s*<input[^>]*>\s*<button[^>]*'
        r'aria-label="Revoke Finance desk"',
        again.text,
    )
    assert key_id
    revoked = client.post(f"/keys/{key_id.group(1)}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    last = client.post("/keys/K-P-A-0/revoke", data={"csrf_token": token})
    assert last.status_code == 409 and "last admin key" in last.text
    bad = client.post("/keys", data={"name": "", "role": "owner", "csrf_token": token})
    assert bad.status_code == 422 and "Choose a role" in bad.text
    assert client.post("/keys", data={"name": "x", "role": "sales"}).status_code == 403  # CSRF


def test_sales_and_finance_keys_sign_in(client: TestClient) -> None:
    for key in ("key-sales", "key-finance"):
        client.cookies.clear()
        sign_in(client, key)
