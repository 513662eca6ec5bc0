"""Partner teams and keys on the real database (CONTRACT 6.7): roles, revocation, recovery,
last use, the audit trail, and the migration of keys from before roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.registration.adapters.partner_keys import MongoPartnerKeyStore
from services.registration.domain.partner_keys import creation_key_id
from tests.integration.registration.conftest import ADMIN
from tests.integration.registration.test_api import bearer, create_partner, error

pytestmark = pytest.mark.integration

INTROSPECT = "/v1/internal/api-keys/introspect"


async def new_key(
    client: httpx.AsyncClient, admin_key: str, name: str, role: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/partner/keys", json={"name": name, "role": role}, headers=bearer(admin_key)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_creation_key_is_an_admin_key_and_listed(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    listed = await client.get("/v1/partner/keys", headers=bearer(partner["api_key"]))
    assert listed.status_code == 200, listed.text
    (key,) = listed.json()["keys"]
    assert key["role"] == "admin" and key["key_id"] == creation_key_id(partner["partner_id"])
    assert partner["api_key"] not in listed.text and "hash" not in listed.text


async def test_roles_decide_what_a_key_may_do(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    sales = await new_key(client, partner["api_key"], "Sales desk", "sales")
    finance = await new_key(client, partner["api_key"], "Finance desk", "finance")
    assert sales["api_key"].startswith("ckp_") and sales["role"] == "sales"
    expected = {
        ("GET", "/v1/partner/me"): {"admin": 200, "sales": 200, "finance": 200},
        ("GET", "/v1/partner/entitlements"): {"admin": 200, "sales": 200, "finance": 403},
        ("GET", "/v1/partner/keys"): {"admin": 200, "sales": 403, "finance": 403},
        ("GET", "/v1/partner/audit"): {"admin": 200, "sales": 403, "finance": 403},
    }
    keys = {"admin": partner["api_key"], "sales": sales["api_key"], "finance": finance["api_key"]}
    for (method, path), by_role in expected.items():
        for role, status in by_role.items():
            response = await client.request(method, path, headers=bearer(keys[role]))
            assert response.status_code == status, (method, path, role, response.text)
            if status == 403:
                assert error(response)["code"] == "role_forbidden"
    refused = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-X"}, headers=bearer(keys["finance"])
    )
    assert refused.status_code == 403
    made = await client.post(
        "/v1/partner/keys", json={"name": "x", "role": "admin"}, headers=bearer(keys["sales"])
    )
    assert made.status_code == 403
    for token, role in ((sales, "sales"), (finance, "finance")):
        answer = (
            await client.post(INTROSPECT, json={"api_key": token["api_key"]}, headers=ADMIN)
        ).json()
        assert answer == {
            "active": True,
            "partner_id": partner["partner_id"],
            "key_id": token["key_id"],
            "role": role,
        }


async def test_bad_key_requests_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    for body, field in (
        ({"name": "x", "role": "owner"}, "role"),
        ({"role": "sales"}, "name"),
        ({"name": "bad\u202ename", "role": "sales"}, "name"),
    ):
        response = await client.post(
            "/v1/partner/keys", json=body, headers=bearer(partner["api_key"])
        )
        assert response.status_code == 422, body
        assert field in response.text


async def test_a_revoked_key_is_refused_at_once_and_never_the_last_admin(
    client: httpx.AsyncClient,
) -> None:
    partner = await create_partner(client)
    admin_key = partner["api_key"]
    creation = creation_key_id(partner["partner_id"])
    last = await client.delete(f"/v1/partner/keys/{creation}", headers=bearer(admin_key))
    assert last.status_code == 409 and error(last)["code"] == "last_admin_key"
    sales = await new_key(client, admin_key, "Temp", "sales")
    gone = await client.delete(f"/v1/partner/keys/{sales['key_id']}", headers=bearer(admin_key))
    assert gone.status_code == 204
    assert (
        await client.get("/v1/partner/entitlements", headers=bearer(sales["api_key"]))
    ).status_code == 401
    answer = await client.post(INTROSPECT, json={"api_key": sales["api_key"]}, headers=ADMIN)
    assert answer.json()["active"] is False
    again = await client.delete(f"/v1/partner/keys/{sales['key_id']}", headers=bearer(admin_key))
    assert again.status_code == 404
    # Another partner's key id is not found, exactly as one that does not exist.
    other = await create_partner(client)
    theirs = creation_key_id(other["partner_id"])
    assert (
        await client.delete(f"/v1/partner/keys/{theirs}", headers=bearer(admin_key))
    ).status_code == 404
    # A second admin key: now the creation key may go, and a key may revoke itself.
    second = await new_key(client, admin_key, "Second admin", "admin")
    assert (
        await client.delete(f"/v1/partner/keys/{creation}", headers=bearer(second["api_key"]))
    ).status_code == 204
    assert (await client.get("/v1/partner/me", headers=bearer(admin_key))).status_code == 401
    listed = (await client.get("/v1/partner/keys", headers=bearer(second["api_key"]))).json()
    revoked = {k["key_id"] for k in listed["keys"] if k["revoked_at"]}
    assert revoked == {creation, sales["key_id"]}


async def test_recovery_key_for_a_locked_out_partner(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    url = f"/v1/admin/partners/{partner['partner_id']}/keys"
    assert (
        await client.post(url, json={"name": "x"}, headers=bearer(partner["api_key"]))
    ).status_code == 403
    made = await client.post(url, json={"name": "Recovered"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "admin"
    assert (
        await client.get("/v1/partner/keys", headers=bearer(made.json()["api_key"]))
    ).status_code == 200
    missing = await client.post("/v1/admin/partners/P-NOPE/keys", json={}, headers=ADMIN)
    assert missing.status_code == 404


async def test_last_used_and_the_audit_trail(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    admin_key = partner["api_key"]
    sales = await new_key(client, admin_key, "Sales desk", "sales")
    await client.get("/v1/partner/entitlements", headers=bearer(sales["api_key"]))
    await client.delete(f"/v1/partner/keys/{sales['key_id']}", headers=bearer(admin_key))
    keys = (await client.get("/v1/partner/keys", headers=bearer(admin_key))).json()["keys"]
    used = {k["key_id"]: k["last_used_at"] for k in keys}
    assert used[sales["key_id"]] is not None
    assert used[creation_key_id(partner["partner_id"])] is not None
    trail = (await client.get("/v1/partner/audit", headers=bearer(admin_key))).json()["entries"]
    actions = [(e["action"], e["target"], e["actor_key_id"]) for e in trail]
    creation = creation_key_id(partner["partner_id"])
    assert actions == [
        ("key.revoked", sales["key_id"], creation),
        ("key.created", sales["key_id"], creation),
    ]
    assert sales["api_key"] not in str(trail)


async def test_keys_from_before_roles_become_admin_keys(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    partner = await create_partner(client)
    await mongo_db["partner_keys"].delete_many({})  # as before roles: the hash on the partner
    # First use adopts it ...
    assert (
        await client.get("/v1/partner/me", headers=bearer(partner["api_key"]))
    ).status_code == 200
    assert await mongo_db["partner_keys"].count_documents({"role": "admin"}) == 1
    # ... and so does the start-up migration, once.
    await mongo_db["partner_keys"].delete_many({})
    store = MongoPartnerKeyStore(mongo_db)
    assert await store.migrate_creation_keys() == 1
    assert await store.migrate_creation_keys() == 0
    listed = (await client.get("/v1/partner/keys", headers=bearer(partner["api_key"]))).json()
    assert [k["role"] for k in listed["keys"]] == ["admin"]


async def test_a_contact_change_by_the_operator_is_in_the_partners_audit(
    client: httpx.AsyncClient,
) -> None:
    partner = await create_partner(client)
    url = f"/v1/admin/partners/{partner['partner_id']}"
    await client.patch(url, json={"tier": "silver"}, headers=ADMIN)
    await client.patch(url, json={"contact_email": "new@nordlicht-it.example"}, headers=ADMIN)
    trail = await client.get("/v1/partner/audit", headers=bearer(partner["api_key"]))
    (entry,) = trail.json()["entries"]
    assert entry["action"] == "contact.changed" and entry["actor_key_id"] == "operator"
    assert "new@nordlicht-it.example" not in trail.text
