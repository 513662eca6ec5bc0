"""The role matrix and key revocation against the running suite (CONTRACT 6.7).

Generated from each service's `/openapi.json`, like the isolation matrix of
test_security.py: every `/v1/partner/*` route declares the roles it admits in its
`security` (`[{"partnerKey": ["admin", "sales"]}]`, from
`require_partner_role("sales")`), and every route x every role gets its expected
2xx or 403; a revoked key gets 401 everywhere. A partner route without a
declaration fails here. A new route that needs a resource to answer 2xx gets it
in `RoleWorld.values` (by the name its path parameter or body field uses).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.reliability.harness import Live, dumps, envelope, order_data, produce, running_suite
from tests.reliability.test_security import _new_partner, _wait, routes

pytestmark = [pytest.mark.e2e]

ROLES = ("admin", "sales", "finance")
CACHE_TTL_S = 2.0
"""PARTNER_KEY_CACHE_SECONDS of this suite: the revocation bound under test (60 s in life)."""


@dataclass
class RoleWorld:
    partner: dict[str, Any]
    keys: dict[str, str]
    license_key: str
    disposable_key_id: str
    deal_id: str

    def values(self) -> dict[str, str]:
        return {
            "license_key": self.license_key,
            "partner_id": self.partner["partner_id"],
            "month": "2027-02",
            "key_id": self.disposable_key_id,
            "url": "http://127.0.0.1:9/role-hook",
            "name": "Matrix key",
            "deal_id": self.deal_id,
            # A deal the generated body can submit (CONTRACT 6.3): a known product, a
            # country code and a close date still ahead.
            "country": "DE",
            "product": "secure-pro",
            "expected_close": "2199-12-31",
            "currency": "EUR",
        }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_suite(
        tmp_path_factory.mktemp("roles"), {"PARTNER_KEY_CACHE_SECONDS": str(CACHE_TTL_S)}
    )


def _key(http: httpx.Client, live: Live, admin_key: str, name: str, role: str) -> dict[str, Any]:
    made = http.post(
        f"{live.url('registration')}/v1/partner/keys",
        headers=bearer(admin_key),
        json={"name": name, "role": role},
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


@pytest.fixture(scope="module")
def world(live: Live) -> RoleWorld:
    """A partner with a key of each role, a licence of its own and a webhook."""
    run = uuid.uuid4().hex[:6].upper()
    with live.http() as http:
        partner = _new_partner(http, live, f"Roles {run}")
        admin_key = partner["api_key"]
        keys = {"admin": admin_key}
        for role in ("sales", "finance"):
            keys[role] = _key(http, live, admin_key, f"{role} desk", role)["api_key"]
        disposable = _key(http, live, admin_key, "to be revoked by the matrix", "sales")
        license_key = f"LK-ROLE-{run}"
        sale = envelope("order.placed", order_data(f"ROLE-{run}", license_key))
        asyncio.run(
            produce(live.bootstrap, [("checkout.orders.v1", f"ROLE-{run}".encode(), dumps(sale))])
        )

        def registered() -> bool:
            r = http.post(
                f"{live.url('registration')}/v1/partner/registrations",
                headers=bearer(admin_key),
                json={"license_key": license_key},
            )
            return r.status_code in (200, 201)

        _wait(registered, "the partner's licence")
        hook = http.put(
            f"{live.url('notifications')}/v1/partner/webhook",
            headers=bearer(admin_key),
            json={"url": "http://127.0.0.1:9/role-hook"},
        )
        assert hook.status_code == 200, hook.text
        deal = http.post(
            f"{live.url('registration')}/v1/partner/deals",
            headers=bearer(admin_key),
            json={
                "customer": {
                    "org_name": f"Role Customer {run}",
                    "email": f"buyer-{run}@role-customer.example",
                    "country": "DE",
                },
                "product": "secure-pro",
                "expected_close": "2199-12-31",
                "estimated_amount_minor": 100000,
                "currency": "EUR",
            },
        )
        assert deal.status_code == 201, deal.text
        # Tier rules in force, so GET /v1/partner/tier has a tier to show (CONTRACT 6.4).
        tiers = {
            name: {"min_revenue_minor": floor, "min_certified": 0}
            for name, floor in (
                ("bronze", 0),
                ("silver", 10**6),
                ("gold", 10**7),
                ("platinum", 10**8),
            )
        }
        rules = http.put(
            f"{live.url('registration')}/v1/admin/tier-rules",
            headers=live.admin(),
            json={
                "effective_from": "2020-01-01T00:00:00Z",
                "currency": "EUR",
                "fx": {},
                "tiers": tiers,
                "demotion_grace_days": 90,
            },
        )
        assert rules.status_code in (200, 201), rules.text
    return RoleWorld(partner, keys, license_key, disposable["key_id"], deal.json()["deal_id"])


def test_every_partner_route_declares_its_roles(live: Live) -> None:
    undeclared = [
        f"{r.method.upper()} {r.service}{r.path}"
        for r in routes(live, ("/v1/partner/",))
        if not (r.operation.get("security") or [{}])[0].get("partnerKey")
    ]
    assert not undeclared, (
        "partner routes without a role; declare one with"
        ' `caller: Annotated[PartnerPrincipal, require_partner_role("sales")]`'
        f" (chassis/partner_roles.py): {undeclared}"
    )


def test_every_partner_route_by_every_role(live: Live, world: RoleWorld) -> None:
    partner_routes = routes(live, ("/v1/partner/",))
    assert len(partner_routes) >= 12, [r.path for r in partner_routes]
    failures = []
    allowed_somewhere = {role: 0 for role in ROLES}
    with live.http() as http:
        # Refusals first: a route a role may use (DELETE of the disposable key) is
        # called by the roles it refuses before the one that succeeds.
        for route in partner_routes:
            admitted = set((route.operation.get("security") or [{}])[0].get("partnerKey", []))
            for role in sorted(ROLES, key=lambda r: r in admitted):
                response = route.call(http, live, world.keys[role], world.values())
                where = f"{route.method.upper()} {route.service}{route.path} as {role}"
                if role in admitted:
                    allowed_somewhere[role] += 1
                    if not 200 <= response.status_code < 300:
                        failures.append(f"{where}: {response.status_code} {response.text[:160]}")
                elif response.status_code != 403:
                    failures.append(f"{where}: {response.status_code}, not 403")
                elif response.json()["error"]["code"] != "role_forbidden":
                    failures.append(f"{where}: {response.text[:160]}")
    assert not failures, "\n".join(failures)
    # The matrix is not vacuous: each role may use some routes and not others.
    assert all(allowed_somewhere.values()), allowed_somewhere
    assert allowed_somewhere["admin"] == len(partner_routes)


def test_contract_roles(live: Live) -> None:
    """CONTRACT 6.7's areas: sales entitlements and registrations, finance commissions and
    statements, admin keys, webhooks and audit."""
    declared = {
        (r.method, r.path): set(r.operation["security"][0]["partnerKey"])
        for r in routes(live, ("/v1/partner/",))
    }
    assert declared[("get", "/v1/partner/entitlements")] == {"admin", "sales"}
    assert declared[("post", "/v1/partner/registrations")] == {"admin", "sales"}
    assert declared[("get", "/v1/partner/commissions")] == {"admin", "finance"}
    assert declared[("get", "/v1/partner/statements/{month}")] == {"admin", "finance"}
    for path in ("/v1/partner/keys", "/v1/partner/webhook", "/v1/partner/audit"):
        assert declared[("get", path)] == {"admin"}, path


def test_a_revoked_key_gets_401_on_every_service_within_the_cache_ttl(
    live: Live, world: RoleWorld
) -> None:
    with live.http() as http:
        doomed = _key(http, live, world.keys["admin"], "leaver", "admin")
        probes = {
            "registration": "/v1/partner/me",
            "commissions": "/v1/partner/commissions",
            "notifications": "/v1/partner/deliveries",
        }
        for service, path in probes.items():  # warm every cache with a positive answer
            used = http.get(f"{live.url(service)}{path}", headers=bearer(doomed["api_key"]))
            assert used.status_code == 200, (service, used.text)
        gone = http.delete(
            f"{live.url('registration')}/v1/partner/keys/{doomed['key_id']}",
            headers=bearer(world.keys["admin"]),
        )
        assert gone.status_code == 204, gone.text
        revoked_at = time.monotonic()
        refused_after: dict[str, float] = {}
        while len(refused_after) < len(probes) and time.monotonic() - revoked_at < 30:
            for service, path in probes.items():
                if service in refused_after:
                    continue
                r = http.get(f"{live.url(service)}{path}", headers=bearer(doomed["api_key"]))
                if r.status_code == 401:
                    refused_after[service] = time.monotonic() - revoked_at
            time.sleep(0.2)
        assert set(refused_after) == set(probes), refused_after
        assert refused_after["registration"] < 1.0  # it owns the keys: at once
        assert max(refused_after.values()) <= CACHE_TTL_S + 1.5, refused_after
        # And on every partner route of every service.
        still = [
            f"{r.method.upper()} {r.service}{r.path}: {r.call(http, live, doomed['api_key'], world.values()).status_code}"  # noqa: E501
            for r in routes(live, ("/v1/partner/",))
        ]
        assert all(line.endswith(": 401") for line in still), still
