"""Customer self-service over HTTP on the real database (CONTRACT 6.2): sign-in, sessions,
a customer's licences across resellers, PoR and access; partners with access."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.registration.config import Settings
from tests.integration.registration.conftest import ADMIN, make_settings
from tests.integration.registration.test_api import bearer, create_partner, error, sold

pytestmark = pytest.mark.integration

JANA = "jana@mueller-logistik.example"


async def sign_in_token(client: httpx.AsyncClient, db: Any, email: str) -> str:
    response = await client.post("/v1/customer/sign-in", json={"email": email})
    assert response.status_code == 202, response.text
    outbox = [json.loads(e["value"]) for e in await db["outbox"].find().to_list()]
    events = [e for e in outbox if e["event_type"] == "customer.sign_in_requested"]
    return str(events[-1]["data"]["token"])


async def session(client: httpx.AsyncClient, db: Any, email: str) -> dict[str, str]:
    token = await sign_in_token(client, db, email)
    response = await client.post("/v1/customer/sessions", json={"token": token})
    assert response.status_code == 201, response.text
    return bearer(response.json()["session_token"])


async def test_sign_in_is_202_for_anyone_and_one_token_makes_one_session(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    await sold(mongo_db, "LK-1")
    unknown = await client.post("/v1/customer/sign-in", json={"email": "nobody@x.example"})
    assert unknown.status_code == 202
    assert await mongo_db["outbox"].count_documents({}) == 0
    token = await sign_in_token(client, mongo_db, "JANA@Mueller-Logistik.example")
    [record] = await mongo_db["outbox"].find().to_list()
    assert record["topic"] == "registration.customers.v1"
    assert len(record["key"]) == 64 and "@" not in record["key"]
    stored = [
        json.dumps(d, default=str) for d in await mongo_db["customer_sign_ins"].find().to_list()
    ]
    assert stored and all(token not in text for text in stored)
    ok = await client.post("/v1/customer/sessions", json={"token": token})
    assert ok.status_code == 201, ok.text
    assert set(ok.json()) == {"session_token", "expires_at"}
    session_token = ok.json()["session_token"]
    sessions = [
        json.dumps(d, default=str) for d in await mongo_db["customer_sessions"].find().to_list()
    ]
    assert all(session_token not in text for text in sessions)
    again = await client.post("/v1/customer/sessions", json={"token": token})
    assert again.status_code == 401 and token not in again.text
    bad = await client.post("/v1/customer/sessions", json={"token": "cki_nope"})
    assert bad.status_code == 401
    invalid = await client.post("/v1/customer/sign-in", json={"email": "not-an-address"})
    assert invalid.status_code == 422 and error(invalid).get("field") == "email"


async def test_sign_in_is_rate_limited_per_client_and_per_address(
    kafka_bootstrap: str, mongo_url: str, mongo_db: Any
) -> None:
    from services.registration.bootstrap import build_api

    settings = make_settings(
        kafka_bootstrap,
        mongo_url,
        mongo_db.name,
        CUSTOMER_SIGN_INS_PER_MINUTE=3,
        CUSTOMER_SIGN_INS_PER_ADDRESS_PER_HOUR=2,
    )
    assert isinstance(settings, Settings)
    api = build_api(settings, run_relay=False)
    async with api.router.lifespan_context(api):
        for peer, emails, limited_at in (
            ("198.51.100.1", ["a@x.example", "b@x.example", "c@x.example", "d@x.example"], 3),
            ("198.51.100.2", ["same@x.example"] * 3, 2),
        ):
            transport = httpx.ASGITransport(app=api, client=(peer, 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                codes = [
                    (await client.post("/v1/customer/sign-in", json={"email": e})).status_code
                    for e in emails
                ]
            assert codes[:limited_at] == [202] * limited_at
            assert codes[limited_at] == 429


async def test_a_customer_manages_its_licences_and_reaches_nobody_elses(
    client: httpx.AsyncClient, mongo_db: Any
) -> None:
    a = await create_partner(client, display_name="Alpha IT")
    b = await create_partner(client, display_name="Bravo IT")
    await sold(mongo_db, "LK-A", partner_code=a["seller_code"])
    await sold(mongo_db, "LK-B", partner_code=b["seller_code"])
    jana = await session(client, mongo_db, JANA)
    listed = await client.get("/v1/customer/entitlements", headers=jana)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["entitlements"]
    assert [(r["license_key"], r["partner_of_record"]["display_name"]) for r in rows] == [
        ("LK-A", "Alpha IT"),
        ("LK-B", "Bravo IT"),
    ]
    assert "partner_id" not in listed.text
    # Each reseller sees only its own.
    for partner, own in ((a, "LK-A"), (b, "LK-B")):
        mine = await client.get("/v1/partner/entitlements", headers=bearer(partner["api_key"]))
        assert [e["license_key"] for e in mine.json()["entitlements"]] == [own]

    # Grant B view access to A's licence: B sees it as "access", without A.
    granted = await client.put(
        f"/v1/customer/entitlements/LK-A/access/{b['seller_code']}",
        json={"permission": "view"},
        headers=jana,
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["partners_with_access"] == [
        {"display_name": "Bravo IT", "seller_code": b["seller_code"], "permission": "view"}
    ]
    admin_view = (await client.get("/v1/admin/entitlements/LK-A", headers=ADMIN)).json()
    assert [(x["partner_id"], x["permission"]) for x in admin_view["access"]] == [
        (b["partner_id"], "view")
    ]
    seen = (await client.get("/v1/partner/entitlements", headers=bearer(b["api_key"]))).json()
    by_key = {e["license_key"]: e for e in seen["entitlements"]}
    assert by_key["LK-A"]["relationship"] == "access"
    assert by_key["LK-A"]["partner_of_record"] is None
    assert by_key["LK-B"]["relationship"] == "partner_of_record"
    assert a["partner_id"] not in json.dumps(seen)
    one = await client.get("/v1/partner/entitlements/LK-A", headers=bearer(b["api_key"]))
    assert one.status_code == 200 and one.json()["relationship"] == "access"
    contact = {"contact_name": "Ole", "email": "ole@mueller-logistik.example"}
    view_only = await client.put(
        "/v1/partner/entitlements/LK-A/contact", json=contact, headers=bearer(b["api_key"])
    )
    assert view_only.status_code == 403
    bad_permission = await client.put(
        f"/v1/customer/entitlements/LK-A/access/{b['seller_code']}",
        json={"permission": "own"},
        headers=jana,
    )
    assert bad_permission.status_code == 422 and error(bad_permission)["field"] == "permission"

    # End A's PoR, then set B.
    ended = await client.delete("/v1/customer/entitlements/LK-A/partner-of-record", headers=jana)
    assert ended.status_code == 200 and ended.json()["partner_of_record"] is None
    held = await client.put(
        "/v1/customer/entitlements/LK-B/partner-of-record",
        json={"seller_code": a["seller_code"]},
        headers=jana,
    )
    assert held.status_code == 409 and error(held)["code"] == "partner_of_record_set"
    set_ = await client.put(
        "/v1/customer/entitlements/LK-A/partner-of-record",
        json={"seller_code": b["seller_code"]},
        headers=jana,
    )
    assert set_.status_code == 200, set_.text
    assert set_.json()["partner_of_record"]["display_name"] == "Bravo IT"
    assert set_.json()["partners_with_access"] == []
    admin = (await client.get("/v1/admin/entitlements/LK-A", headers=ADMIN)).json()
    assert admin["partner_of_record"]["source"] == "customer_registration"

    # Another customer: every route answers 404, as for a licence that does not exist.
    await seed_other(mongo_db)
    other = await session(client, mongo_db, "it@other.example")
    for method, path, body in (
        (
            "PUT",
            "/v1/customer/entitlements/{k}/partner-of-record",
            {"seller_code": a["seller_code"]},
        ),
        ("DELETE", "/v1/customer/entitlements/{k}/partner-of-record", None),
        (
            "PUT",
            f"/v1/customer/entitlements/{{k}}/access/{a['seller_code']}",
            {"permission": "view"},
        ),
        ("DELETE", f"/v1/customer/entitlements/{{k}}/access/{b['seller_code']}", None),
    ):
        answers = []
        for key in ("LK-A", "LK-NOPE"):
            response = await client.request(method, path.format(k=key), json=body, headers=other)
            answers.append((response.status_code, error(response)["code"]))
        assert answers[0] == answers[1] == (404, "unknown_license_key"), (method, path, answers)
    theirs = (await client.get("/v1/customer/entitlements", headers=other)).json()
    assert [e["license_key"] for e in theirs["entitlements"]] == ["LK-O"]

    # Tokens of another kind: 403; none or unknown: 401.
    for headers, status in (
        (ADMIN, 403),
        (bearer(a["api_key"]), 403),
        ({}, 401),
        (bearer("x"), 401),
    ):
        response = await client.get("/v1/customer/entitlements", headers=headers)
        assert response.status_code == status, (headers, response.text)


async def seed_other(db: Any) -> None:
    from tests.integration.registration.conftest import seed_orders
    from tests.unit.registration.builders import incoming, line, order

    placed = order("O-O", line("LK-O"), customer_id="C-O")
    placed = placed.model_copy(
        update={"customer": placed.customer.model_copy(update={"email": "IT@other.example"})}
    )
    await seed_orders(db, incoming(placed, "2026-01-10T09:00:00Z"))
