"""The chassis app: error shape, 422 naming the field, body limit, auth, health."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, EmailStr, Field, ValidationError

from chassis.auth import PartnerPrincipal, require_admin, require_partner
from chassis.errors import ApiError
from chassis.http import create_app
from services.registration.config import Settings

TOKEN = "test-admin-token-123"


class Customer(BaseModel):
    email: EmailStr
    country: str = Field(pattern=r"^[A-Z]{2}$")


class Body(BaseModel):
    customer: Customer


def make_client() -> TestClient:
    # A database that is never there: unit tests must not need one.
    settings = Settings(
        admin_token=TOKEN,
        mongo_url="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200",
        kafka_bootstrap="127.0.0.1:9",
        max_body_bytes=2048,
    )
    app = create_app(settings, title="t", description="d", topics=[])

    async def resolve(token: str) -> PartnerPrincipal | None:
        return PartnerPrincipal("P-1") if token == "partner-key" else None

    @app.post("/v1/admin/things")
    async def create(body: Body, request: Request) -> dict[str, str]:
        await require_admin(request, TOKEN, resolve)
        return {"country": body.customer.country}

    @app.get("/v1/partner/things/{thing_id}")
    async def read(thing_id: str, request: Request) -> dict[str, str]:
        principal = await require_partner(request, TOKEN, resolve)
        if thing_id != "mine":
            raise ApiError(404, "not_found", "no such thing")
        return {"partner_id": principal.partner_id}

    return TestClient(app)


def test_healthz_answers_without_broker_or_database() -> None:
    with make_client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_is_503_and_says_why_when_nothing_is_reachable() -> None:
    with make_client() as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    # Only the database: a broker or a worker is not this pod's to answer for.
    assert list(checks) == ["database"]
    assert checks["database"].startswith("unreachable")


@pytest.mark.parametrize("path", ["/status", "/readyz?full=1"])
def test_status_reports_broker_and_workers(path: str) -> None:
    with make_client() as client:
        response = client.get(path)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["broker"] != "ok"
    assert checks["consumers"] == checks["alarms"] == "unknown"


def test_validation_error_names_the_field() -> None:
    body = {"customer": {"email": "not-an-email", "country": "DE"}}
    with make_client() as client:
        response = client.post(
            "/v1/admin/things", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == "customer.email"
    assert "customer.email" in error["message"]


def test_body_over_the_limit_is_413() -> None:
    body = {"customer": {"email": "a@b.example", "country": "D" * 5000}}
    with make_client() as client:
        response = client.post(
            "/v1/admin/things", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/v1/partner/things/mine", None, 401),
        ("/v1/partner/things/mine", "nonsense", 401),
        ("/v1/partner/things/mine", TOKEN, 403),
        ("/v1/partner/things/mine", "partner-key", 200),
        ("/v1/partner/things/theirs", "partner-key", 404),
    ],
)
def test_partner_auth(path: str, token: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with make_client() as client:
        response = client.get(path, headers=headers)
    assert response.status_code == status
    if status != 200:
        assert set(response.json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("x", 401), ("partner-key", 403)])
def test_admin_route_refuses_partner_keys_and_bad_tokens(token: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"customer": {"email": "a@b.example", "country": "DE"}}
    with make_client() as client:
        response = client.post("/v1/admin/things", json=body, headers=headers)
    assert response.status_code == status


def test_metrics_are_prometheus_text_with_route_templates() -> None:
    with make_client() as client:
        client.get("/v1/partner/things/abc", headers={"Authorization": "Bearer partner-key"})
        response = client.get("/metrics")
    assert response.status_code == 200
    assert 'route="/v1/partner/things/{thing_id}"' in response.text
    assert "http_requests_total" in response.text


def test_services_refuse_to_start_without_an_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="admin_token"):
        Settings()


def test_chunked_body_over_the_limit_is_413_not_400() -> None:
    """No Content-Length: the limit is found while FastAPI reads the body (CONTRACT 6.9)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"customer": {"email": "a@b.example", "country": "'
        for _ in range(10):
            yield b"D" * 512
        yield b'"}}'

    with make_client() as client:
        response = client.post(
            "/v1/admin/things",
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_chunked_body_under_the_limit_is_read() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"customer": {"email": "a@b.example",'
        yield b' "country": "DE"}}'

    with make_client() as client:
        response = client.post(
            "/v1/admin/things",
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
