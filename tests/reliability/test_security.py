"""Security against the running suite: isolation matrix from OpenAPI, secrets at rest,
seller-code brute force, SSRF guard and redirects (CONTRACT 2, 4).

The matrix is generated from each service's `/openapi.json`, so a new endpoint is
covered without editing this file.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pymongo import MongoClient

from devkit.processes import ManagedProcess, free_port, wait_until
from tests.reliability.harness import (
    ADMIN_TOKEN,
    Live,
    dumps,
    envelope,
    order_data,
    produce,
    running_suite,
)

pytestmark = [pytest.mark.e2e]

SERVICES = ("registration", "commissions", "notifications")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class PartnerA:
    partner: dict[str, Any]
    license_key: str
    month: str
    webhook_secret: str
    registration_token: str
    customer_email: str
    secrets: list[str] = field(default_factory=list)
    deal_id: str = ""

    def values(self) -> dict[str, str]:
        """A's resources by the names path parameters and body fields use."""
        return {
            "license_key": self.license_key,
            "partner_id": self.partner["partner_id"],
            "month": self.month,
            "code": self.partner["seller_code"],
            "seller_code": self.partner["seller_code"],
            "url": "https://partner-a.example/hook",
            "deal_id": self.deal_id,
        }

    def identifiers(self) -> list[str]:
        """What B must never see."""
        return [
            self.partner["partner_id"],
            self.partner["seller_code"],
            self.partner["display_name"],
            self.partner["contact_email"],
            self.license_key,
            self.customer_email,
            self.deal_id,
        ]


def _wait(check: Callable[[], Any], what: str, wait_s: float = 60.0) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def _new_partner(http: httpx.Client, live: Live, name: str) -> dict[str, Any]:
    response = http.post(
        f"{live.url('registration')}/v1/admin/partners",
        headers=live.admin(),
        json={
            "display_name": name,
            "legal_name": f"{name} Ltd",
            "type": "var",
            "tier": "gold",
            "contact_email": f"{name.lower().replace(' ', '-')}@partners.example",
            "branding": {},
            "co_brand_customer_messages": True,
            "customer_ids": [],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from running_suite(
        tmp_path_factory.mktemp("security"), {"SELLER_CODE_LOOKUPS_PER_MINUTE": "30"}
    )


@pytest.fixture(scope="module")
def world(live: Live) -> tuple[PartnerA, dict[str, Any]]:
    """Partner A with an entitlement, commissions, a webhook and deliveries; partner B."""
    run = uuid.uuid4().hex[:6].upper()
    with live.http() as http:
        a = _new_partner(http, live, f"Alpha {run}")
        b = _new_partner(http, live, f"Bravo {run}")
        key_a = {"Authorization": f"Bearer {a['api_key']}"}
        hook = http.put(
            f"{live.url('notifications')}/v1/partner/webhook",
            headers=key_a,
            json={"url": "http://127.0.0.1:9/a-hook"},
        )
        assert hook.status_code == 200, hook.text
        license_key = f"LK-SEC-{run}"
        customer_id = f"C-SEC-{run}"
        sale = envelope(
            "order.placed",
            order_data(
                f"SEC-{run}-1",
                license_key,
                channel="partner",
                partner_code=a["seller_code"],
                customer_id=customer_id,
            ),
            occurred_at="2027-01-05T10:00:00Z",
        )
        renewal = envelope(
            "order.placed",
            order_data(f"SEC-{run}-2", license_key, kind="renewal", customer_id=customer_id),
            occurred_at="2027-02-05T10:00:00Z",
        )
        # Orders are keyed by order_id, so two orders may land on different
        # partitions and be applied in either order: the renewal only earns a
        # commission once the sale has made A the partner of record, as in life.
        asyncio.run(
            produce(live.bootstrap, [("checkout.orders.v1", f"SEC-{run}-1".encode(), dumps(sale))])
        )

        def attributed() -> bool:
            r = http.get(
                f"{live.url('registration')}/v1/admin/entitlements/{license_key}",
                headers=live.admin(),
            )
            return r.status_code == 200 and a["partner_id"] in r.text

        _wait(attributed, "A as partner of record")
        asyncio.run(
            produce(
                live.bootstrap,
                [("checkout.orders.v1", f"SEC-{run}-2".encode(), dumps(renewal))],
            )
        )

        def commissions() -> bool:
            r = http.get(f"{live.url('commissions')}/v1/partner/commissions", headers=key_a)
            return r.status_code == 200 and license_key in r.text

        _wait(commissions, "A's commission")
        customer = sale["data"]["customer"]
        reg = http.post(
            f"{live.url('registration')}/v1/registrations",
            json={"license_key": license_key, "customer": customer},
        )
        assert reg.status_code == 201, reg.text
        # A's deal (CONTRACT 6.3), for another customer so B learns nothing of it either.
        deal = http.post(
            f"{live.url('registration')}/v1/partner/deals",
            headers=key_a,
            json={
                "customer": {
                    "org_name": f"Deal Customer {run}",
                    "email": f"buyer-{run}@deal-customer.example",
                    "country": "DE",
                },
                "product": "secure-pro",
                "expected_close": "2199-12-31",
                "estimated_amount_minor": 100000,
                "currency": "EUR",
            },
        )
        assert deal.status_code == 201, deal.text
    partner_a = PartnerA(
        partner=a,
        license_key=license_key,
        month="2027-02",
        webhook_secret=hook.json()["secret"],
        registration_token=reg.json()["registration_token"],
        customer_email=customer["email"],
        deal_id=deal.json()["deal_id"],
    )
    return partner_a, b


def _openapi(live: Live, service: str) -> dict[str, Any]:
    with live.http() as http:
        response = http.get(f"{live.url(service)}/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        schema = _resolve(spec, options[0]) if options else schema
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = _resolve(spec, schema["allOf"][0])
    return schema


def example(spec: dict[str, Any], schema: dict[str, Any], name: str, values: dict[str, str]) -> Any:
    """A plausible value for `schema`, using A's resources where the field name matches."""
    schema = _resolve(spec, schema)
    if name in values:
        return values[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            prop: example(spec, sub, prop, values)
            for prop, sub in schema.get("properties", {}).items()
            if prop in schema.get("required", [])
        }
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date":
        return "2027-02-01"
    if schema.get("format") == "date-time":
        return "2027-02-01T00:00:00Z"
    if schema.get("format") == "email":
        return "b@partners.example"
    pattern = schema.get("pattern", "")
    if "[0-9]{4}-" in pattern or name in ("month", "period"):
        return "2027-02"
    return "x"


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str
    operation: dict[str, Any]
    spec: dict[str, Any]

    def url(self, live: Live, values: dict[str, str]) -> str:
        path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), self.path)
        return f"{live.url(self.service)}{path}"

    def body(self, values: dict[str, str]) -> Any:
        content = self.operation.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return None if media is None else example(self.spec, media["schema"], "", values)

    def query(self, values: dict[str, str]) -> dict[str, str]:
        params = {}
        for p in self.operation.get("parameters", []):
            if p.get("in") == "query" and p.get("required"):
                params[p["name"]] = str(example(self.spec, p.get("schema", {}), p["name"], values))
        return params

    def call(self, http: httpx.Client, live: Live, token: str | None, values: dict[str, str]):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        body = self.body(values)
        return http.request(
            self.method.upper(),
            self.url(live, values),
            headers=headers,
            params=self.query(values),
            json=body,
        )


def routes(live: Live, prefixes: tuple[str, ...]) -> list[Route]:
    found = []
    for service in SERVICES:
        spec = _openapi(live, service)
        for path, item in spec["paths"].items():
            if not path.startswith(prefixes):
                continue
            for method in METHODS:
                if method in item:
                    found.append(Route(service, method, path, item[method], spec))
    return found


def _error_shape(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and {"code", "message"} <= set(error)


def test_admin_and_internal_routes_refuse_partners_and_strangers(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    a, b = world
    admin_routes = routes(live, ("/v1/admin/", "/v1/internal/"))
    assert len(admin_routes) >= 10, [r.path for r in admin_routes]
    failures = []
    with live.http() as http:
        for route in admin_routes:
            for token, expected in (
                (None, 401),
                ("wrong-token", 401),
                (ADMIN_TOKEN + "x", 401),
                (b["api_key"], 403),
            ):
                response = route.call(http, live, token, a.values())
                if response.status_code != expected or not _error_shape(response):
                    failures.append(
                        f"{route.method.upper()} {route.service}{route.path} with "
                        f"{'no token' if token is None else 'bad/partner token'}: "
                        f"{response.status_code} {response.text[:120]}"
                    )
    assert not failures, "\n".join(failures)


def test_partner_b_never_sees_partner_a(live: Live, world: tuple[PartnerA, dict[str, Any]]) -> None:
    a, b = world
    partner_routes = routes(live, ("/v1/partner/",))
    assert len(partner_routes) >= 5, [r.path for r in partner_routes]
    failures = []
    with live.http() as http:
        for route in partner_routes:
            # Every partner route refuses strangers and the operator token.
            for token, expected in ((None, 401), ("wrong-token", 401), (ADMIN_TOKEN, 403)):
                response = route.call(http, live, token, a.values())
                if response.status_code != expected:
                    failures.append(f"{route.path} token={expected}: {response.status_code}")
            # Partner B with A's resources in the path, query and body.
            response = route.call(http, live, b["api_key"], a.values())
            text = response.text
            leaked = [v for v in a.identifiers() if v and v in text]
            if leaked:
                failures.append(f"{route.method.upper()} {route.path}: B saw {leaked}")
            if response.status_code >= 500:
                failures.append(f"{route.method.upper()} {route.path}: {response.status_code}")
            names = set(re.findall(r"\{(\w+)\}", route.path))
            owned = names & {"license_key", "partner_id", "notification_id", "line_id", "deal_id"}
            if route.method == "get" and owned and response.status_code != 404:
                failures.append(
                    f"GET {route.path} with A's {sorted(owned)}: {response.status_code}, not 404"
                )
            # A's own view of the same route works (the matrix is not vacuous).
        mine = http.get(
            f"{live.url('registration')}/v1/partner/entitlements/{a.license_key}",
            headers={"Authorization": f"Bearer {a.partner['api_key']}"},
        )
        assert mine.status_code == 200, mine.text
        own_deal = http.get(
            f"{live.url('registration')}/v1/partner/deals/{a.deal_id}",
            headers={"Authorization": f"Bearer {a.partner['api_key']}"},
        )
        assert own_deal.status_code == 200, own_deal.text
        assert any(r.path == "/v1/partner/deals/{deal_id}" for r in partner_routes)
    assert not failures, "\n".join(failures)


def _all_documents(mongo_url: str) -> Iterator[tuple[str, str]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        for name in client.list_database_names():
            if name in ("admin", "local", "config"):
                continue
            db = client[name]
            for collection in db.list_collection_names():
                for doc in db[collection].find():
                    yield f"{name}.{collection}", json.dumps(doc, default=str)
    finally:
        client.close()


def test_secrets_are_not_stored_in_plain_text(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    a, b = world
    secrets = {
        "partner A api key": a.partner["api_key"],
        "partner B api key": b["api_key"],
        "registration token": a.registration_token,
        "webhook secret": a.webhook_secret,
    }
    documents = list(_all_documents(live.mongo_url))
    # The scan is not vacuous: every service's database holds A's records.
    holders = {where.split(".")[0] for where, text in documents if a.partner["partner_id"] in text}
    assert len(holders) >= 3, holders
    found = [
        f"{what} in {where}"
        for where, text in documents
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not found, found


def test_seller_code_brute_force_is_stopped(live: Live) -> None:
    statuses = []
    with live.http() as http:
        for i in range(45):
            r = http.get(f"{live.url('registration')}/v1/seller-codes/{i:04d}-AAAA")
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.headers.get("retry-after"), "429 without Retry-After"
                assert _error_shape(r)
                break
    assert statuses[-1] == 429, statuses
    assert len(statuses) <= 31, f"stopped only after {len(statuses)} lookups"


def test_forwarded_for_does_not_bypass_the_rate_limit(live: Live) -> None:
    """uvicorn's own proxy headers are off and TRUSTED_PROXIES is empty (CONTRACT 6.9):
    40 lookups from 127.0.0.1, each claiming another client, are one client's."""
    statuses = []
    with live.http() as http:
        for i in range(40):
            r = http.get(
                f"{live.url('registration')}/v1/seller-codes/7K3M-9QXF",
                headers={"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.{i}"},
            )
            statuses.append(r.status_code)
    assert 429 in statuses, statuses
    assert statuses.count(429) >= 10, statuses


def _formats(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """Every `format` a parameter's schema allows (through $ref, anyOf, allOf)."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    found = {schema["format"]} if "format" in schema else set()
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            found |= _formats(spec, sub)
    return found


OUT_OF_RANGE = {
    "date": ("9999-12-31", "1999-12-31", "2200-01-01", "0001-01-01"),
    "date-time": ("9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z", "2200-01-01T00:00:00Z"),
}


def test_out_of_range_query_dates_are_json_422_naming_the_parameter(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    """CONTRACT 6.9: every date or date-time query parameter of every service, from the
    OpenAPI documents, outside 2000-01-01 .. 2199-12-31: `422` naming it, never a 500."""
    a, _ = world
    checked: list[str] = []
    failures: list[str] = []
    with live.http() as http:
        for route in routes(live, ("/v1/",)):
            token = (
                ADMIN_TOKEN
                if route.path.startswith(("/v1/admin/", "/v1/internal/"))
                else a.partner["api_key"]
                if route.path.startswith("/v1/partner/")
                else None
            )
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for parameter in route.operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                formats = _formats(route.spec, parameter.get("schema", {})) & set(OUT_OF_RANGE)
                name = parameter["name"]
                for value in [v for f in sorted(formats) for v in OUT_OF_RANGE[f]]:
                    query = {**route.query(a.values()), name: value}
                    response = http.request(
                        route.method.upper(),
                        route.url(live, a.values()),
                        headers=headers,
                        params=query,
                        json=route.body(a.values()),
                    )
                    checked.append(f"{route.method.upper()} {route.path}?{name}={value}")
                    field = (
                        response.json().get("error", {}).get("field")
                        if _error_shape(response)
                        else None
                    )
                    if response.status_code != 422 or field != name:
                        failures.append(
                            f"{checked[-1]}: {response.status_code} {response.text[:160]}"
                        )
    names = {c.split("?")[1].split("=")[0] for c in checked}
    assert {"from", "to", "as_of", "term_end_before"} <= names, checked
    assert not failures, "\n".join(failures)


class _Hooks:
    """Loopback endpoints: `/redirect` answers 302 to `/target`; every request is kept."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                hooks.hits.append(self.path)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{port}/target")
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_redirects_are_not_followed(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    hooks = _Hooks()
    try:
        with live.http() as http:
            c = _new_partner(http, live, f"Charlie {uuid.uuid4().hex[:6]}")
            key = {"Authorization": f"Bearer {c['api_key']}"}
            r = http.put(
                f"{live.url('notifications')}/v1/partner/webhook",
                headers=key,
                json={"url": f"{hooks.base}/redirect"},
            )
            assert r.status_code == 200, r.text
            # A partner registration makes C partner of record: a partner-facing webhook.
            run = uuid.uuid4().hex[:6].upper()
            sale = envelope("order.placed", order_data(f"RED-{run}", f"LK-RED-{run}"))
            asyncio.run(produce(live.bootstrap, [("checkout.orders.v1", b"RED", dumps(sale))]))
            _wait(
                lambda: (
                    http.get(
                        f"{live.url('registration')}/v1/admin/entitlements/LK-RED-{run}",
                        headers=live.admin(),
                    ).status_code
                    == 200
                ),
                "the entitlement",
            )
            reg = http.post(
                f"{live.url('registration')}/v1/partner/registrations",
                headers=key,
                json={"license_key": f"LK-RED-{run}", "customer": sale["data"]["customer"]},
            )
            assert reg.status_code in (200, 201), reg.text
            _wait(lambda: hooks.hits, "a webhook attempt", 60)
            time.sleep(3)
        assert all(h.startswith("/redirect") for h in hooks.hits), hooks.hits
    finally:
        hooks.close()


@pytest.fixture(scope="module")
def production_notifications(live: Live, world: tuple[PartnerA, dict[str, Any]]) -> Iterator[str]:
    """A second notifications API on the same stores, with production settings."""
    port = free_port()
    api = next(p for p in live.suite.services if p.name == "notifications-api")
    env = dict(api.env or {})
    env.update(
        {
            "ENVIRONMENT": "production",
            "WEBHOOK_ALLOW_LOOPBACK": "false",
            "NOTIFICATIONS_PORT": str(port),
            "UNSUBSCRIBE_SECRET": "prod-like-unsubscribe-secret-0123456789",
            "WEBHOOK_SECRET_KEYS": Fernet.generate_key().decode(),
        }
    )
    process = ManagedProcess(
        "notifications-api-production",
        [sys.executable, "-m", "services.notifications.entrypoints.api"],
        log_path=live.data_dir / "logs" / "notifications-api-production.log",
        env=env,
    )
    process.start()
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200,
            timeout=60,
            process=process,
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.0.0.8/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://100.64.0.1/hook",
        # IPv6 forms that embed an IPv4 address (CONTRACT 6.9): unwrapped, then judged.
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[64:ff9b:1:a9fe:a9:fe00::]/hook",
        "https://[::a9fe:a9fe]/hook",
        "https://[::ffff:a9fe:a9fe]/hook",
        "https://[2002:a9fe:a9fe::1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "https://0.0.0.0/hook",
        "https://2130706433/hook",
        "https://user:pw@partner.example/hook",
        "ftp://partner.example/hook",
    ],
)
def test_production_refuses_private_webhook_targets(
    production_notifications: str, world: tuple[PartnerA, dict[str, Any]], url: str
) -> None:
    a, _ = world
    r = httpx.put(
        f"{production_notifications}/v1/partner/webhook",
        headers={"Authorization": f"Bearer {a.partner['api_key']}"},
        json={"url": url},
        timeout=15,
    )
    assert r.status_code == 422, (url, r.status_code, r.text)
    assert _error_shape(r)


@pytest.mark.parametrize("service", SERVICES)
def test_a_chunked_body_over_the_limit_is_413(live: Live, service: str) -> None:
    """No Content-Length, 100 KB in 1 KB chunks: 413 like a declared one (CONTRACT 6.9)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"display_name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    path = {
        "registration": "/v1/admin/partners",
        "commissions": "/v1/admin/rate-tables",
        "notifications": "/v1/partner/webhook",
    }[service]
    method = {"commissions": "PUT", "notifications": "PUT"}.get(service, "POST")
    with live.http() as http:
        response = http.request(
            method,
            f"{live.url(service)}{path}",
            headers={**live.admin(), "Content-Type": "application/json"},
            content=chunks(),
        )
    assert response.status_code == 413, response.text
    assert _error_shape(response)


def test_a_partner_cannot_take_over_another_partners_licence(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    """CONTRACT 6.9: B with A's licence key gets 409 and learns nothing; the PoR stays;
    the claim waits for an operator."""
    a, b = world
    with live.http() as http:
        for body in (
            {"license_key": a.license_key},
            {
                "license_key": a.license_key,
                "customer": {
                    "org_name": "B's idea",
                    "contact_name": "B",
                    "email": "b@b.example",
                    "country": "DE",
                },
            },
        ):
            r = http.post(
                f"{live.url('registration')}/v1/partner/registrations",
                headers={"Authorization": f"Bearer {b['api_key']}"},
                json=body,
            )
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "attributed_elsewhere"
            for secret in a.identifiers():
                if secret != a.license_key:
                    assert secret not in r.text, secret
        view = http.get(
            f"{live.url('registration')}/v1/admin/entitlements/{a.license_key}",
            headers=live.admin(),
        ).json()
        assert view["partner_of_record"]["partner_id"] == a.partner["partner_id"]
        assert view["customer"]["email"] == a.customer_email
        conflicts = http.get(
            f"{live.url('registration')}/v1/admin/attribution-conflicts",
            params={"license_key": a.license_key},
            headers=live.admin(),
        ).json()["conflicts"]
        assert b["partner_id"] in {c["claimant_partner_id"] for c in conflicts}


def test_a_stranger_registering_a_licence_does_not_become_its_contact(live: Live) -> None:
    """CONTRACT 6.9: 201, checkout's contact kept and mailed a one-time link (vendor-branded,
    naming no partner); the token is in no log; confirming it moves the contact."""
    run = uuid.uuid4().hex[:6].upper()
    license_key, customer_id = f"LK-CON-{run}", f"C-CON-{run}"
    sale = envelope("order.placed", order_data(f"CON-{run}", license_key, customer_id=customer_id))
    checkout_email = sale["data"]["customer"]["email"]
    asyncio.run(produce(live.bootstrap, [("checkout.orders.v1", b"CON", dumps(sale))]))
    with live.http() as http:
        _wait(
            lambda: (
                http.get(
                    f"{live.url('registration')}/v1/admin/entitlements/{license_key}",
                    headers=live.admin(),
                ).status_code
                == 200
            ),
            "the entitlement",
        )
        stranger = {
            "org_name": "Mallory Ltd",
            "contact_name": "Mallory",
            "email": f"mallory-{run.lower()}@evil.example",
            "country": "GB",
        }
        r = http.post(
            f"{live.url('registration')}/v1/registrations",
            json={"license_key": license_key, "customer": stranger},
        )
        assert r.status_code == 201, r.text
        assert r.json()["contact_pending"] is True
        view = http.get(
            f"{live.url('registration')}/v1/admin/entitlements/{license_key}",
            headers=live.admin(),
        ).json()
        assert view["customer"]["email"] == checkout_email

        mail_dir = live.data_dir / "mail"

        def confirmation() -> tuple[str, str] | None:
            for path in mail_dir.glob("*.eml"):
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                body = message.get_body(preferencelist=("plain",))
                text = body.get_content() if body is not None else ""
                if license_key in text and "#token=" in text:
                    return str(message["To"]), text
            return None

        to, mail = _wait(confirmation, "the confirmation mail", 90)
        assert checkout_email in to and stranger["email"] not in to
        token = re.search(r"#token=(ckc_[A-Za-z0-9_-]+)", mail)
        assert token is not None
        for log in (live.data_dir / "logs").glob("*"):
            assert token.group(1) not in log.read_text(errors="replace"), log
        ok = http.post(
            f"{live.url('registration')}/v1/registrations/contact-confirmations",
            json={"token": token.group(1)},
        )
        assert ok.status_code == 200, ok.text
        view = http.get(
            f"{live.url('registration')}/v1/admin/entitlements/{license_key}",
            headers=live.admin(),
        ).json()
        assert view["customer"]["email"] == stranger["email"]


# --- customer sessions (CONTRACT 6.2) ---------------------------------------------------


def _customer_session(live: Live, http: httpx.Client, address: str) -> str:
    """Ask for a sign-in link, read its token from the mail sink, trade it for a session."""
    asked = http.post(f"{live.url('registration')}/v1/customer/sign-in", json={"email": address})
    assert asked.status_code == 202, asked.text
    mail_dir = live.data_dir / "mail"

    def token() -> str | None:
        for path in mail_dir.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address not in str(message["To"]).lower():
                continue
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"#token=(cki_[A-Za-z0-9_-]+)", body.get_content() if body else "")
            if found:
                return found.group(1)
        return None

    link = _wait(token, f"the sign-in mail to {address}", 90)
    for log in (live.data_dir / "logs").glob("*"):
        assert link not in log.read_text(errors="replace"), log
    session = http.post(f"{live.url('registration')}/v1/customer/sessions", json={"token": link})
    assert session.status_code == 201, session.text
    again = http.post(f"{live.url('registration')}/v1/customer/sessions", json={"token": link})
    assert again.status_code == 401, again.text
    return str(session.json()["session_token"])


def test_customer_b_reaches_nothing_of_customer_a(
    live: Live, world: tuple[PartnerA, dict[str, Any]]
) -> None:
    """The isolation matrix for customer sessions, generated from OpenAPI: with customer B's
    session, every customer route given A's licence (and A's partner's seller code) answers
    exactly as for a licence that does not exist (`404`), and shows nothing of A."""
    a, _ = world
    run = uuid.uuid4().hex[:6].upper()
    other_key, other_customer = f"LK-CUS-{run}", f"C-CUS-{run}"
    sale = envelope("order.placed", order_data(f"CUS-{run}", other_key, customer_id=other_customer))
    asyncio.run(produce(live.bootstrap, [("checkout.orders.v1", b"CUS", dumps(sale))]))
    b_email = sale["data"]["customer"]["email"]
    customer_routes = [
        r
        for r in routes(live, ("/v1/customer/",))
        if r.path not in ("/v1/customer/sign-in", "/v1/customer/sessions")
    ]
    assert len(customer_routes) >= 5, [r.path for r in customer_routes]
    failures = []
    with live.http() as http:
        _wait(
            lambda: (
                http.get(
                    f"{live.url('registration')}/v1/admin/entitlements/{other_key}",
                    headers=live.admin(),
                ).status_code
                == 200
            ),
            "customer B's licence",
        )
        session_a = _customer_session(live, http, a.customer_email.lower())
        session_b = _customer_session(live, http, b_email.lower())
        stored = "\n".join(text for _, text in _all_documents(live.mongo_url))
        assert session_a not in stored and session_b not in stored
        missing = {**a.values(), "license_key": f"LK-NOPE-{run}"}
        for route in customer_routes:
            for token, expected in (
                (None, 401),
                ("wrong-token", 401),
                (ADMIN_TOKEN, 403),
                (a.partner["api_key"], 403),
            ):
                response = route.call(http, live, token, a.values())
                if response.status_code != expected or not _error_shape(response):
                    failures.append(f"{route.method.upper()} {route.path}: {response.status_code}")
            response = route.call(http, live, session_b, a.values())
            leaked = [v for v in a.identifiers() if v and v in response.text]
            if leaked:
                failures.append(f"{route.method.upper()} {route.path}: B saw {leaked}")
            if "{license_key}" in route.path:
                unknown = route.call(http, live, session_b, missing)
                shape = (response.status_code, response.json().get("error", {}).get("code"))
                nothing = (unknown.status_code, unknown.json().get("error", {}).get("code"))
                if shape != nothing or shape[0] != 404:
                    failures.append(
                        f"{route.method.upper()} {route.path} with A's licence: {shape},"
                        f" unknown licence: {nothing}"
                    )
            elif response.status_code >= 400:
                failures.append(f"{route.method.upper()} {route.path}: {response.status_code}")
        # Not vacuous: each customer sees its own licence.
        for session, own in ((session_a, a.license_key), (session_b, other_key)):
            mine = http.get(
                f"{live.url('registration')}/v1/customer/entitlements",
                headers={"Authorization": f"Bearer {session}"},
            )
            assert mine.status_code == 200 and own in mine.text, mine.text
    assert not failures, "\n".join(failures)
    # A's licence still has A's partner of record: B's attempts changed nothing.
    with live.http() as http:
        view = http.get(
            f"{live.url('registration')}/v1/admin/entitlements/{a.license_key}",
            headers=live.admin(),
        ).json()
    assert view["partner_of_record"]["partner_id"] == a.partner["partner_id"]
