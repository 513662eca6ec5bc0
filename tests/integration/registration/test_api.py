"""Every registration endpoint on the real database: happy paths, errors, auth, isolation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.registration.config import Settings
from shared import seller_code
from tests.integration.registration.conftest import (
    ADMIN,
    make_settings,
    seed_orders,
)
from tests.unit.registration.builders import incoming, line, order

CUSTOMER = {
    "org_name": "Müller Logistik GmbH",
    "contact_name": "Jana Müller",
    "email": "jana@mueller-logistik.example",
    "country": "DE",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_partner(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "display_name": "Nordlicht IT",
        "legal_name": "Nordlicht IT-Systemhaus GmbH",
        "type": "var",
        "tier": "gold",
        "contact_email": "partners@nordlicht-it.example",
        "branding": {"color": "#0B3D91", "website": "https://nordlicht-it.example"},
        "co_brand_customer_messages": True,
        "customer_ids": ["C-17"],
        **fields,
    }
    response = await client.post("/v1/admin/partners", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def sold(db: Any, *keys: str, partner_code: str | None = None) -> None:
    await seed_orders(
        db,
        *[
            incoming(
                order(f"O-{k}", line(k), channel="partner", partner_code=partner_code)
                if partner_code
                else order(f"O-{k}", line(k)),
                "2026-01-10T09:00:00Z",
            )
            for k in keys
        ],
    )


def error(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


# --- partner directory ---------------------------------------------------------------


async def test_create_read_and_patch_a_partner(client: httpx.AsyncClient, mongo_db: Any) -> None:
    created = await create_partner(client)
    assert created["api_key"].startswith("ckp_")
    assert seller_code.is_valid(created["seller_code"])
    assert (created["tier"], created["status"], created["type"]) == ("gold", "active", "var")
    pid = created["partner_id"]

    got = await client.get(f"/v1/admin/partners/{pid}", headers=ADMIN)
    assert got.status_code == 200
    body = got.json()
    assert "api_key" not in body and "api_key_hash" not in body
    assert body["branding"]["color"] == "#0B3D91"

    patched = await client.patch(
        f"/v1/admin/partners/{pid}",
        json={"tier": "platinum", "branding": {"phone": "+49 30 1234567"}},
        headers=ADMIN,
    )
    assert patched.status_code == 200
    assert patched.json()["tier"] == "platinum"
    assert patched.json()["branding"] == {
        "logo_url": None,
        "color": "#0B3D91",
        "phone": "+49 30 1234567",
        "website": "https://nordlicht-it.example",
    }
    assert [h["value"] for h in patched.json()["tier_history"]] == ["gold", "platinum"]
    future = await client.patch(
        f"/v1/admin/partners/{pid}",
        json={"status": "suspended", "effective_at": "2199-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert future.json()["status"] == "active"  # not yet in force
    assert [h["value"] for h in future.json()["status_history"]] == ["active", "suspended"]

    outbox = await mongo_db["outbox"].find({"key": pid}).sort("created_at", 1).to_list()
    kinds = [json.loads(d["value"])["event_type"] for d in outbox]
    assert kinds == ["partner.created", "partner.updated", "partner.updated"]
    assert all(created["api_key"].encode() not in d["value"] for d in outbox)
    assert await mongo_db["partners"].count_documents({"api_key_hash": {"$exists": True}}) == 1


async def test_the_partner_directory_pages_without_keys(client: httpx.AsyncClient) -> None:
    made = sorted([(await create_partner(client))["partner_id"] for _ in range(3)])
    first = await client.get("/v1/admin/partners", params={"limit": 2}, headers=ADMIN)
    assert first.status_code == 200
    body = first.json()
    assert [p["partner_id"] for p in body["partners"]] == made[:2]
    assert all("api_key" not in p and "api_key_hash" not in p for p in body["partners"])
    rest = await client.get(
        "/v1/admin/partners", params={"after": body["next_after"]}, headers=ADMIN
    )
    assert [p["partner_id"] for p in rest.json()["partners"]] == made[2:]
    assert rest.json()["next_after"] is None
    assert (await client.get("/v1/admin/partners")).status_code == 401


async def test_partner_validation_names_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"type": "reseller"}, "type"),
        ({"display_name": ""}, "display_name"),
        ({"branding": {"color": "blue"}}, "branding.color"),
        ({"branding": {"logo_url": "javascript:alert(1)"}}, "branding.logo_url"),
        ({"co_brand_customer_messages": "yes"}, "co_brand_customer_messages"),
        ({"surprise": 1}, "surprise"),
        ({"effective_at": "2026-01-01T00:00:00"}, "effective_at"),
    ]
    for fields, field in cases:
        body = {
            "display_name": "X",
            "legal_name": "X GmbH",
            "type": "var",
            "tier": "gold",
            "contact_email": "x@example.com",
            **fields,
        }
        response = await client.post("/v1/admin/partners", json=body, headers=ADMIN)
        assert response.status_code == 422, (fields, response.text)
        assert error(response)["field"] == field, fields


async def test_parent_must_be_an_existing_distributor(client: httpx.AsyncClient) -> None:
    var = await create_partner(client)
    for parent in ("P-NOTHERE", var["partner_id"]):
        response = await client.post(
            "/v1/admin/partners",
            json={
                "display_name": "Child",
                "legal_name": "Child GmbH",
                "type": "var",
                "tier": "silver",
                "contact_email": "c@example.com",
                "parent_partner_id": parent,
            },
            headers=ADMIN,
        )
        assert response.status_code == 422
        assert error(response) | {"message": ""} == {
            "code": "invalid_parent",
            "message": "",
            "field": "parent_partner_id",
        }
    dist = await create_partner(client, type="distributor", display_name="Distri")
    child = await create_partner(client, parent_partner_id=dist["partner_id"])
    assert child["parent_partner_id"] == dist["partner_id"]


async def test_partner_read_and_patch_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/admin/partners/P-NOPE", headers=ADMIN)
    assert missing.status_code == 404 and error(missing)["code"] == "partner_not_found"
    pid = (await create_partner(client))["partner_id"]
    empty = await client.patch(f"/v1/admin/partners/{pid}", json={}, headers=ADMIN)
    assert empty.status_code == 422
    bad = await client.patch(f"/v1/admin/partners/{pid}", json={"status": "gone"}, headers=ADMIN)
    assert bad.status_code == 422 and error(bad)["field"] == "status"
    await client.patch(f"/v1/admin/partners/{pid}", json={"status": "terminated"}, headers=ADMIN)
    final = await client.patch(
        f"/v1/admin/partners/{pid}", json={"status": "active"}, headers=ADMIN
    )
    assert final.status_code == 409 and error(final)["code"] == "partner_terminated"
    nobody = await client.patch("/v1/admin/partners/P-NOPE", json={"tier": "gold"}, headers=ADMIN)
    assert nobody.status_code == 404


# --- auth ---------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("POST", "/v1/admin/partners", {}),
    ("GET", "/v1/admin/partners/P-1", None),
    ("PATCH", "/v1/admin/partners/P-1", {"tier": "gold"}),
    ("GET", "/v1/admin/entitlements/LK-1", None),
    ("GET", "/v1/admin/attribution-conflicts", None),
    ("PUT", "/v1/admin/entitlements/LK-1/partner-of-record", {"partner_id": None, "reason": "x"}),
    ("POST", "/v1/internal/api-keys/introspect", {"api_key": "x"}),
]
PARTNER_ROUTES = [
    ("POST", "/v1/partner/registrations", {"license_key": "LK-1"}),
    ("GET", "/v1/partner/entitlements", None),
    ("GET", "/v1/partner/entitlements/LK-1", None),
]


async def test_admin_routes_refuse_partner_keys_and_missing_tokens(
    client: httpx.AsyncClient,
) -> None:
    key = (await create_partner(client))["api_key"]
    for method, path, body in ADMIN_ROUTES:
        for headers, status in (({}, 401), (bearer("wrong-token-xyz"), 401), (bearer(key), 403)):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == status, (method, path, headers)
            assert error(response)["code"] in ("unauthorized", "forbidden")


async def test_partner_routes_refuse_admin_token_missing_and_suspended_keys(
    client: httpx.AsyncClient,
) -> None:
    partner = await create_partner(client)
    await client.patch(
        f"/v1/admin/partners/{partner['partner_id']}", json={"status": "suspended"}, headers=ADMIN
    )
    for method, path, body in PARTNER_ROUTES:
        for headers, status in (({}, 401), (ADMIN, 403), (bearer(partner["api_key"]), 401)):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == status, (method, path, headers)


async def test_introspection_answers_for_active_keys_only(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    url = "/v1/internal/api-keys/introspect"
    active = await client.post(url, json={"api_key": partner["api_key"]}, headers=ADMIN)
    answer = active.json()
    assert answer["active"] is True and answer["partner_id"] == partner["partner_id"]
    assert answer["role"] == "admin" and answer["key_id"].startswith("K-")  # CONTRACT 6.7
    unknown = await client.post(url, json={"api_key": "ckp_nope"}, headers=ADMIN)
    assert unknown.json() == {"active": False, "partner_id": None, "key_id": None, "role": None}


async def test_a_partner_reads_its_own_record_and_never_its_key(
    client: httpx.AsyncClient,
) -> None:
    partner = await create_partner(client)
    other = await create_partner(client)
    response = await client.get("/v1/partner/me", headers=bearer(partner["api_key"]))
    assert response.status_code == 200
    me = response.json()
    assert me["partner_id"] == partner["partner_id"]
    assert me["display_name"] == partner["display_name"]
    assert "api_key" not in me and partner["api_key"] not in response.text
    assert other["partner_id"] not in response.text
    assert (await client.get("/v1/partner/me", headers=ADMIN)).status_code == 403
    assert (await client.get("/v1/partner/me")).status_code == 401


# --- seller codes ----------------------------------------------------------------------


async def test_seller_code_lookup(client: httpx.AsyncClient) -> None:
    partner = await create_partner(client)
    code = partner["seller_code"]
    found = await client.get(f"/v1/seller-codes/{code.lower().replace('-', '')}")
    assert found.status_code == 200
    assert found.json() == {"valid": True, "seller_code": code, "display_name": "Nordlicht IT"}
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    invalid = await client.get(f"/v1/seller-codes/{typo}")
    assert invalid.status_code == 422 and error(invalid)["code"] == "invalid_seller_code"
    unknown = "7K3M-9QXF" if code != "7K3M-9QXF" else "0000-0000"
    missing = await client.get(f"/v1/seller-codes/{unknown}")
    assert missing.status_code == 404 and error(missing)["code"] == "unknown_seller_code"


async def test_seller_code_lookup_is_rate_limited_per_client(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    from services.registration.bootstrap import build_api

    settings = make_settings(
        kafka_bootstrap, mongo_url, mongo_db.name, seller_code_lookups_per_minute=3
    )
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        for address, allowed in (("198.51.100.1", 3), ("198.51.100.2", 3)):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
                statuses = [
                    (await c.get("/v1/seller-codes/7K3M-9QXF")).status_code for _ in range(4)
                ]
                assert statuses == [404] * allowed + [429]
                limited = await c.get("/v1/seller-codes/7K3M-9QXF")
                assert int(limited.headers["Retry-After"]) >= 1
                assert error(limited)["code"] == "rate_limited"


async def test_rotating_forwarded_for_from_an_untrusted_peer_is_still_rate_limited(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    """40 lookups with a new X-Forwarded-For each: one client, 429 after 30 (CONTRACT 6.9)."""
    from services.registration.bootstrap import build_api

    app = build_api(make_settings(kafka_bootstrap, mongo_url, mongo_db.name), run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
            statuses = [
                (
                    await c.get(
                        "/v1/seller-codes/7K3M-9QXF",
                        headers={"X-Forwarded-For": f"198.51.100.{i}"},
                    )
                ).status_code
                for i in range(40)
            ]
    assert statuses[:30] == [404] * 30
    assert set(statuses[30:]) == {429}


async def test_a_trusted_proxy_names_the_client(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    from services.registration.bootstrap import build_api

    settings = make_settings(
        kafka_bootstrap,
        mongo_url,
        mongo_db.name,
        seller_code_lookups_per_minute=2,
        trusted_proxies="10.0.0.0/8",
    )
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:

            async def lookup(forwarded: str) -> int:
                headers = {"X-Forwarded-For": forwarded}
                return (await c.get("/v1/seller-codes/7K3M-9QXF", headers=headers)).status_code

            # Each client has its own bucket; what the client wrote left of it is ignored.
            assert [await lookup(f"6.6.6.{i}, 198.51.100.1") for i in range(3)] == [404, 404, 429]
            assert [await lookup("198.51.100.2") for _ in range(3)] == [404, 404, 429]


async def test_public_registration_is_rate_limited_per_client(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    from services.registration.bootstrap import build_api

    settings = make_settings(kafka_bootstrap, mongo_url, mongo_db.name, registrations_per_minute=3)
    app = build_api(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        for address in ("198.51.100.1", "198.51.100.2"):
            transport = httpx.ASGITransport(app=app, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
                statuses = [
                    (
                        await c.post(
                            "/v1/registrations",
                            json={"license_key": f"LK-NONE-{i}", "customer": CUSTOMER},
                            headers={"X-Forwarded-For": f"6.6.6.{i}"},
                        )
                    ).status_code
                    for i in range(4)
                ]
                assert statuses == [404, 404, 404, 429]
                limited = await c.post("/v1/registrations", json={})
                assert limited.status_code == 429
                assert int(limited.headers["Retry-After"]) >= 1
                assert error(limited)["code"] == "rate_limited"


# --- customer registrations --------------------------------------------------------------


async def test_customer_registration_happy_path_and_errors(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    partner = await create_partner(client)
    await sold(mongo_db, "LK-1", "LK-2")
    response = await client.post(
        "/v1/registrations",
        json={"license_key": "LK-1", "customer": CUSTOMER, "seller_code": partner["seller_code"]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["registration_token"].startswith("ckr_")
    assert body["display_name"] == "Nordlicht IT"
    assert body["partner_of_record"] == {"display_name": "Nordlicht IT"}
    stored = await mongo_db["entitlements"].find_one({"_id": "LK-1"})
    assert body["registration_token"] not in json.dumps(stored, default=str)

    no_code = await client.post(
        "/v1/registrations", json={"license_key": "LK-2", "customer": CUSTOMER}
    )
    assert no_code.status_code == 201 and no_code.json()["display_name"] is None

    cases = [
        ({"license_key": "LK-1", "customer": CUSTOMER}, 409, "already_registered", None),
        ({"license_key": "LK-9", "customer": CUSTOMER}, 404, "unknown_license_key", None),
        (
            {"license_key": "LK-9", "customer": CUSTOMER, "seller_code": "7K3M-9QXE"},
            422,
            "invalid_seller_code",
            "seller_code",
        ),
        (
            {"license_key": "LK-1", "customer": {**CUSTOMER, "email": "jana@"}},
            422,
            "validation_error",
            "customer.email",
        ),
        (
            {"license_key": "LK-1", "customer": {**CUSTOMER, "country": "XX"}},
            422,
            "validation_error",
            "customer.country",
        ),
        (
            {"license_key": "LK-1", "customer": {**CUSTOMER, "org_name": "x" * 201}},
            422,
            "validation_error",
            "customer.org_name",
        ),
        ({"license_key": "", "customer": CUSTOMER}, 422, "validation_error", "license_key"),
    ]
    for body_in, status, code, field in cases:
        got = await client.post("/v1/registrations", json=body_in)
        assert got.status_code == status, (body_in, got.text)
        assert error(got)["code"] == code
        if field:
            assert error(got)["field"] == field


async def test_unknown_seller_code_at_registration(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    await sold(mongo_db, "LK-1")
    response = await client.post(
        "/v1/registrations",
        json={"license_key": "LK-1", "customer": CUSTOMER, "seller_code": "7K3M-9QXF"},
    )
    assert response.status_code == 404 and error(response)["code"] == "unknown_seller_code"


async def test_a_conflicting_seller_code_still_registers_and_is_listed(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    seller = await create_partner(client, display_name="Seller")
    other = await create_partner(client, display_name="Other")
    await sold(mongo_db, "LK-1", partner_code=seller["seller_code"])
    response = await client.post(
        "/v1/registrations",
        json={"license_key": "LK-1", "customer": CUSTOMER, "seller_code": other["seller_code"]},
    )
    assert response.status_code == 201
    assert response.json()["display_name"] == "Seller"
    assert response.json()["attribution"] == "conflict"
    conflicts = (await client.get("/v1/admin/attribution-conflicts", headers=ADMIN)).json()
    [conflict] = conflicts["conflicts"]
    assert conflict["claimant_partner_id"] == other["partner_id"]
    assert conflict["partner_of_record"]["partner_id"] == seller["partner_id"]
    assert conflict["claim_source"] == "customer_registration"
    by_partner = await client.get(
        "/v1/admin/attribution-conflicts",
        params={"partner_id": seller["partner_id"]},
        headers=ADMIN,
    )
    assert len(by_partner.json()["conflicts"]) == 1


async def test_late_seller_code(client: httpx.AsyncClient, mongo_db: Any) -> None:
    partner = await create_partner(client)
    await sold(mongo_db, "LK-1")
    token = (
        await client.post("/v1/registrations", json={"license_key": "LK-1", "customer": CUSTOMER})
    ).json()["registration_token"]
    url = "/v1/registrations/LK-1/seller-code"
    code = partner["seller_code"]
    wrong = await client.post(url, json={"seller_code": code, "registration_token": "ckr_x"})
    assert wrong.status_code == 401 and error(wrong)["code"] == "invalid_registration_token"
    missing = await client.post(url, json={"seller_code": code})
    assert missing.status_code == 401
    invalid = await client.post(url, json={"seller_code": "7K3M-9QXE", "registration_token": token})
    assert invalid.status_code == 422 and error(invalid)["field"] == "seller_code"
    unknown_key = await client.post(
        "/v1/registrations/LK-9/seller-code",
        json={"seller_code": code, "registration_token": token},
    )
    assert unknown_key.status_code == 404
    ok = await client.post(url, json={"seller_code": code}, headers=bearer(token))
    assert ok.status_code == 200, ok.text
    assert ok.json()["display_name"] == "Nordlicht IT"
    again = await client.post(url, json={"seller_code": code, "registration_token": token})
    assert again.status_code == 409 and error(again)["code"] == "seller_code_already_set"
    admin_view = (await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)).json()
    assert admin_view["registration"]["seller_code"] == code
    assert admin_view["attribution_history"][-1]["via"] == "customer_registration"


# --- partner routes and isolation ------------------------------------------------------


async def test_partner_registration_and_entitlements(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    a = await create_partner(client, display_name="A")
    b = await create_partner(client, display_name="B")
    await sold(mongo_db, "LK-1", "LK-2", "LK-3")
    created = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-1"}, headers=bearer(a["api_key"])
    )
    assert created.status_code == 201, created.text
    assert created.json()["partner_of_record"]["partner_id"] == a["partner_id"]
    repeat = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-1"}, headers=bearer(a["api_key"])
    )
    assert repeat.status_code == 200
    taken = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-1"}, headers=bearer(b["api_key"])
    )
    assert taken.status_code == 409
    assert error(taken)["code"] == "attributed_elsewhere"
    for leaked in (a["partner_id"], "A", a["seller_code"]):
        assert leaked not in taken.text.replace("attributed_elsewhere", "")
    unknown = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-9"}, headers=bearer(a["api_key"])
    )
    assert unknown.status_code == 404 and error(unknown)["code"] == "unknown_license_key"
    with_customer = await client.post(
        "/v1/partner/registrations",
        json={"license_key": "LK-2", "customer": {**CUSTOMER, "country": "AT"}},
        headers=bearer(a["api_key"]),
    )
    assert with_customer.json()["customer"]["country"] == "AT"

    listed = await client.get("/v1/partner/entitlements", headers=bearer(a["api_key"]))
    assert [e["license_key"] for e in listed.json()["entitlements"]] == ["LK-1", "LK-2"]
    before = await client.get(
        "/v1/partner/entitlements",
        params={"term_end_before": "2027-01-09"},
        headers=bearer(a["api_key"]),
    )
    assert before.json()["entitlements"] == []
    paged = await client.get(
        "/v1/partner/entitlements", params={"limit": 1}, headers=bearer(a["api_key"])
    )
    assert paged.json()["next_after"] == "LK-1"
    bad_date = await client.get(
        "/v1/partner/entitlements",
        params={"term_end_before": "next week"},
        headers=bearer(a["api_key"]),
    )
    assert bad_date.status_code == 422 and error(bad_date)["field"] == "term_end_before"
    one = await client.get("/v1/partner/entitlements/LK-1", headers=bearer(a["api_key"]))
    assert one.status_code == 200 and one.json()["license_key"] == "LK-1"


async def test_isolation_matrix_another_partners_data_is_a_404_like_a_missing_one(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    a = await create_partner(client, display_name="A")
    b = await create_partner(client, display_name="B")
    await sold(mongo_db, "LK-A1", "LK-A2", partner_code=a["seller_code"])
    await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-A2"}, headers=bearer(a["api_key"])
    )
    missing = await client.get("/v1/partner/entitlements/LK-NOPE", headers=bearer(b["api_key"]))
    assert missing.status_code == 404
    for key in ("LK-A1", "LK-A2"):
        theirs = await client.get(f"/v1/partner/entitlements/{key}", headers=bearer(b["api_key"]))
        assert theirs.status_code == 404
        assert theirs.json() == missing.json()
        mine = await client.get(f"/v1/partner/entitlements/{key}", headers=bearer(a["api_key"]))
        assert mine.status_code == 200
    listed = await client.get("/v1/partner/entitlements", headers=bearer(b["api_key"]))
    assert listed.json() == {"entitlements": [], "next_after": None}
    for key in ("LK-A1", "LK-A2"):
        listed_filtered = await client.get(
            "/v1/partner/entitlements",
            params={"after": key[:-1], "term_end_before": "2199-01-01"},
            headers=bearer(b["api_key"]),
        )
        assert listed_filtered.json()["entitlements"] == []


# --- admin entitlements ------------------------------------------------------------------


async def test_admin_entitlement_history_and_reassignment(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    a = await create_partner(client, display_name="A")
    b = await create_partner(client, display_name="B")
    await sold(mongo_db, "LK-1", partner_code=a["seller_code"])
    url = "/v1/admin/entitlements/LK-1/partner-of-record"
    no_reason = await client.put(url, json={"partner_id": b["partner_id"]}, headers=ADMIN)
    assert no_reason.status_code == 422 and error(no_reason)["field"] == "reason"
    blank = await client.put(
        url, json={"partner_id": b["partner_id"], "reason": "  "}, headers=ADMIN
    )
    assert blank.status_code == 422 and error(blank)["field"] == "reason"
    no_partner_field = await client.put(url, json={"reason": "x"}, headers=ADMIN)
    assert no_partner_field.status_code == 422 and error(no_partner_field)["field"] == "partner_id"
    unknown = await client.put(url, json={"partner_id": "P-NOPE", "reason": "x"}, headers=ADMIN)
    assert unknown.status_code == 422 and error(unknown)["field"] == "partner_id"
    missing = await client.put(
        "/v1/admin/entitlements/LK-9/partner-of-record",
        json={"partner_id": None, "reason": "x"},
        headers=ADMIN,
    )
    assert missing.status_code == 404

    moved = await client.put(
        url, json={"partner_id": b["partner_id"], "reason": "customer switched"}, headers=ADMIN
    )
    assert moved.status_code == 200
    assert moved.json()["partner_of_record"]["partner_id"] == b["partner_id"]
    assert moved.json()["partner_of_record"]["source"] == "operator"
    cleared = await client.put(url, json={"partner_id": None, "reason": "fraud"}, headers=ADMIN)
    assert cleared.json()["partner_of_record"] is None

    view = await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)
    assert view.status_code == 200
    history = view.json()["attribution_history"]
    assert [(h["kind"], h["via"]) for h in history] == [
        ("set", "order"),
        ("reassign", "operator"),
        ("clear", "operator"),
    ]
    assert history[0]["ref"] == "O-LK-1/1" and history[1]["reason"] == "customer switched"
    assert history[1]["previous_partner_id"] == a["partner_id"]
    assert view.json()["orders"][0]["order_id"] == "O-LK-1"
    events = await mongo_db["outbox"].find({"key": "LK-1"}).to_list()
    assert [json.loads(e["value"])["event_type"] for e in events] == [
        "entitlement.attribution_changed",
        "entitlement.attribution_changed",
    ]
    nothing = await client.get("/v1/admin/entitlements/LK-9", headers=ADMIN)
    assert nothing.status_code == 404 and error(nothing)["code"] == "unknown_license_key"


async def test_a_partner_cannot_take_a_licence_attributed_by_a_seller_code(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    """CONTRACT 6.9: 409 naming and showing nothing, PoR unchanged, conflict for an operator;
    a licence that is not the caller's own answers 404 or 409, nothing else."""
    a = await create_partner(client, display_name="Alpha IT", contact_email="a@alpha.example")
    b = await create_partner(client, display_name="Beta IT", contact_email="b@beta.example")
    await sold(mongo_db, "LK-1")
    registered = await client.post(
        "/v1/registrations",
        json={"license_key": "LK-1", "customer": CUSTOMER, "seller_code": a["seller_code"]},
    )
    assert registered.status_code == 201, registered.text
    for body in ({"license_key": "LK-1"}, {"license_key": "LK-1", "customer": CUSTOMER}):
        taken = await client.post(
            "/v1/partner/registrations", json=body, headers=bearer(b["api_key"])
        )
        assert taken.status_code == 409, taken.text
        assert set(taken.json()) == {"error"}
        assert error(taken)["code"] == "attributed_elsewhere"
        for leaked in (a["partner_id"], a["display_name"], "Müller", "jana@", "C-"):
            assert leaked not in taken.text
    unknown = await client.post(
        "/v1/partner/registrations", json={"license_key": "LK-NOPE"}, headers=bearer(b["api_key"])
    )
    assert unknown.status_code == 404
    view = await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)
    assert view.json()["partner_of_record"]["partner_id"] == a["partner_id"]
    conflicts = await client.get(
        "/v1/admin/attribution-conflicts", params={"license_key": "LK-1"}, headers=ADMIN
    )
    [conflict] = conflicts.json()["conflicts"]
    assert conflict["claimant_partner_id"] == b["partner_id"]
    assert conflict["reason"] == "attributed_elsewhere"
    # A partner-channel sale by B still replaces the PoR (the customer switched).
    switch = order(
        "O-SWITCH",
        line("LK-1", "renewal", term=("2027-01-10", "2028-01-09")),
        channel="partner",
        partner_code=b["seller_code"],
    )
    await seed_orders(mongo_db, incoming(switch, "2026-12-20T09:00:00Z"))
    view = await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)
    assert view.json()["partner_of_record"]["partner_id"] == b["partner_id"]


async def test_a_public_registration_with_another_email_waits_for_checkouts_contact(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    """CONTRACT 6.9 (contacts): 201, contact unchanged, a one-time link to checkout's contact,
    stored hashed; confirming it through the public endpoint makes the change."""
    await sold(mongo_db, "LK-1")
    stranger = {**CUSTOMER, "email": "mallory@evil.example", "contact_name": "Mallory"}
    response = await client.post(
        "/v1/registrations", json={"license_key": "LK-1", "customer": stranger}
    )
    assert response.status_code == 201, response.text
    assert response.json()["contact_pending"] is True
    view = (await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)).json()
    assert view["customer"]["email"] == "jana@mueller-logistik.example"
    outbox = [json.loads(e["value"]) for e in await mongo_db["outbox"].find().to_list()]
    [request] = [
        e for e in outbox if e["event_type"] == "entitlement.contact_confirmation_requested"
    ]
    assert request["data"]["customer"]["email"] == "jana@mueller-logistik.example"
    token = request["data"]["confirmation_token"]
    stored = await mongo_db["entitlements"].find_one({"_id": "LK-1"})
    assert token not in json.dumps(stored, default=str)
    assert stored["pending_contact"]["customer"]["email"] == "mallory@evil.example"

    bad = await client.post("/v1/registrations/contact-confirmations", json={"token": "ckc_nope"})
    assert bad.status_code == 404 and error(bad)["code"] == "unknown_confirmation_token"
    assert "ckc_nope" not in bad.text
    ok = await client.post("/v1/registrations/contact-confirmations", json={"token": token})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"license_key": "LK-1", "confirmed": True}
    view = (await client.get("/v1/admin/entitlements/LK-1", headers=ADMIN)).json()
    assert view["customer"]["email"] == "mallory@evil.example"
    again = await client.post("/v1/registrations/contact-confirmations", json={"token": token})
    assert again.status_code == 404


async def test_body_size_limit(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(
        "/v1/registrations",
        content=b"{" + b" " * settings.max_body_bytes + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json"])
async def test_operational_endpoints(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
