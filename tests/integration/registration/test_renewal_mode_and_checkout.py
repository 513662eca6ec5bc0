"""CONTRACT 6.1 on the real database: renewal mode in the admin and partner APIs, and the
checkout's steer-back read with its own service token (401/403/404/200)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.registration.config import Settings
from tests.integration.registration.conftest import ADMIN, ADMIN_TOKEN, make_settings
from tests.integration.registration.test_api import bearer, create_partner, error, sold

CHECKOUT_TOKEN = "integration-checkout-token"
CHECKOUT = bearer(CHECKOUT_TOKEN)


@pytest.fixture
def settings(kafka_bootstrap: str, mongo_url: str, mongo_db: Any) -> Settings:
    return make_settings(kafka_bootstrap, mongo_url, mongo_db.name, checkout_token=CHECKOUT_TOKEN)


async def test_renewal_mode_in_the_admin_api_and_partner_events(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    created = await create_partner(client)
    assert created["renewal_mode"] == "partner_first"
    pid = created["partner_id"]
    other = await create_partner(client, display_name="Direct", renewal_mode="vendor_direct")
    assert other["renewal_mode"] == "vendor_direct"
    future = await client.patch(
        f"/v1/admin/partners/{pid}",
        json={"renewal_mode": "partner_only", "effective_at": "2099-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert future.status_code == 200, future.text
    body = future.json()
    assert body["renewal_mode"] == "partner_first"  # not yet in force
    assert [h["value"] for h in body["renewal_mode_history"]] == ["partner_first", "partner_only"]
    outbox = await mongo_db["outbox"].find({"key": pid}).sort("created_at", 1).to_list()
    last = json.loads(outbox[-1]["value"])
    assert last["data"]["renewal_mode"] == "partner_only"
    assert last["data"]["effective_at"] == "2099-01-01T00:00:00Z"
    for bad in ({"renewal_mode": "partner_later"}, {"renewal_mode": None, "tier": "x"}):
        refused = await client.patch(f"/v1/admin/partners/{pid}", json=bad, headers=ADMIN)
        assert refused.status_code == 422
    refused = await client.post(
        "/v1/admin/partners",
        json={
            "display_name": "X",
            "legal_name": "X GmbH",
            "type": "var",
            "tier": "gold",
            "contact_email": "x@example.com",
            "renewal_mode": "sometimes",
        },
        headers=ADMIN,
    )
    assert refused.status_code == 422 and "renewal_mode" in error(refused)["field"]


async def test_a_partner_sets_its_own_renewal_mode(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    created = await create_partner(client)
    key = created["api_key"]
    changed = await client.put(
        "/v1/partner/renewal-mode", json={"renewal_mode": "partner_only"}, headers=bearer(key)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["renewal_mode"] == "partner_only"
    me = await client.get("/v1/partner/me", headers=bearer(key))
    assert me.json()["renewal_mode"] == "partner_only"
    stored = await mongo_db["partners"].find_one({"_id": created["partner_id"]})
    [entry] = stored["audit"]
    # The actor is the calling key's public id (CONTRACT 6.7), never the key.
    key_id = (await client.get("/v1/partner/key", headers=bearer(key))).json()["key_id"]
    assert entry["actor"] == key_id and key not in json.dumps(entry, default=str)
    audit = await client.get("/v1/partner/audit", headers=bearer(key))
    assert audit.status_code == 200, audit.text
    assert any(
        e["action"] == "renewal_mode.changed" and e["actor_key_id"] == key_id
        for e in audit.json()["entries"]
    ), audit.text
    bad = await client.put(
        "/v1/partner/renewal-mode", json={"renewal_mode": "whenever"}, headers=bearer(key)
    )
    assert bad.status_code == 422 and error(bad)["field"].endswith("renewal_mode")
    missing = await client.put("/v1/partner/renewal-mode", json={}, headers=bearer(key))
    assert missing.status_code == 422 and error(missing)["field"].endswith("renewal_mode")
    extra = await client.put(
        "/v1/partner/renewal-mode",
        json={"renewal_mode": "vendor_direct", "effective_at": "2030-01-01T00:00:00Z"},
        headers=bearer(key),
    )
    assert extra.status_code == 422
    for headers, status in (({}, 401), (ADMIN, 403), (bearer("ckp_nobody"), 401)):
        response = await client.put(
            "/v1/partner/renewal-mode", json={"renewal_mode": "vendor_direct"}, headers=headers
        )
        assert response.status_code == status


PATH = "/v1/checkout/entitlements/{}/partner-of-record"


async def test_checkout_steer_back_auth_matrix_and_answers(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    partner = await create_partner(
        client,
        branding={"website": "https://nordlicht-it.example", "phone": "+49 30 1234567"},
    )
    await sold(mongo_db, "LK-P", partner_code=partner["seller_code"])
    await sold(mongo_db, "LK-D")

    # Auth first, for any licence, known or not: nothing is read before it.
    for license_key in ("LK-P", "LK-D", "LK-UNKNOWN"):
        for headers, status in (
            ({}, 401),
            (bearer("not-a-token"), 401),
            ({"Authorization": "Basic Zm9vOmJhcg=="}, 401),
            (ADMIN, 403),
            (bearer(partner["api_key"]), 403),
        ):
            response = await client.get(PATH.format(license_key), headers=headers)
            assert response.status_code == status, (license_key, headers, response.text)
            assert "unknown_license_key" not in response.text

    unknown = await client.get(PATH.format("LK-UNKNOWN"), headers=CHECKOUT)
    assert unknown.status_code == 404 and error(unknown)["code"] == "unknown_license_key"

    steered = await client.get(PATH.format("LK-P"), headers=CHECKOUT)
    assert steered.status_code == 200, steered.text
    assert steered.json() == {
        "license_key": "LK-P",
        "partner": {
            "display_name": "Nordlicht IT",
            "seller_code": partner["seller_code"],
            "website": "https://nordlicht-it.example",
            "phone": "+49 30 1234567",
            "renewal_mode": "partner_first",
        },
    }
    for secret in ("jana", "Müller", partner["partner_id"], partner["contact_email"]):
        assert secret not in steered.text  # no customer data, no internal ids
    direct = await client.get(PATH.format("LK-D"), headers=CHECKOUT)
    assert direct.json() == {"license_key": "LK-D", "partner": None}

    await client.put(
        "/v1/partner/renewal-mode",
        json={"renewal_mode": "partner_only"},
        headers=bearer(partner["api_key"]),
    )
    mode = await client.get(PATH.format("LK-P"), headers=CHECKOUT)
    assert mode.json()["partner"]["renewal_mode"] == "partner_only"
    await client.patch(
        f"/v1/admin/partners/{partner['partner_id']}", json={"status": "suspended"}, headers=ADMIN
    )
    suspended = await client.get(PATH.format("LK-P"), headers=CHECKOUT)
    assert suspended.json() == {"license_key": "LK-P", "partner": None}
    # A suspended partner's key is nobody's: 401, not 403.
    gone = await client.get(PATH.format("LK-P"), headers=bearer(partner["api_key"]))
    assert gone.status_code == 401


async def test_without_a_configured_checkout_token_nobody_gets_in(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    from services.registration.bootstrap import build_api

    api = build_api(make_settings(kafka_bootstrap, mongo_url, mongo_db.name), run_relay=False)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
            for headers, status in (({}, 401), (bearer(""), 401), (ADMIN, 403)):
                response = await c.get(PATH.format("LK-1"), headers=headers)
                assert response.status_code == status
    assert ADMIN_TOKEN
