"""The committed openapi/<service>.json are what the code generates, and every route names
the bearer token it takes (securitySchemes), while the checks keep the contract's errors.

`python -m devkit.openapi_export` regenerates the documents; `--check` is the lint step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from chassis import errors
from chassis.auth import (
    AdminTokenDeclared,
    PartnerKeyDeclared,
    PartnerPrincipal,
    require_admin,
    require_partner,
)
from devkit import openapi_export

pytestmark = pytest.mark.unit

SERVICES = tuple(openapi_export.BUILDERS)
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}
# Routes anyone may call: operations, the customer's own registration, the rate-limited
# seller-code lookup, and unsubscribe links (the signed token is in the path).
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/status"),
    ("post", "/v1/registrations"),
    ("post", "/v1/registrations/contact-confirmations"),
    # CONTRACT 6.2: asking for a sign-in link, and trading its token for a session.
    ("post", "/v1/customer/sign-in"),
    ("post", "/v1/customer/sessions"),
    ("get", "/v1/seller-codes/{code}"),
    ("get", "/v1/unsubscribe/{token}"),
    ("post", "/v1/unsubscribe/{token}"),
}
ADMIN_TOKEN = "test-admin-token-0123"


def _committed(service: str) -> dict[str, Any]:
    document = json.loads(openapi_export.path_of(service).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_committed_documents_are_fresh() -> None:
    stale = openapi_export.check()
    assert not stale, f"stale: {stale}; run: python -m devkit.openapi_export"


def test_generation_is_deterministic() -> None:
    for service in SERVICES:
        assert openapi_export.render(service) == openapi_export.render(service), service


def _expected_scheme(method: str, path: str) -> str | None:
    if (method, path) in PUBLIC:
        return None
    if path.startswith(("/v1/admin/", "/v1/internal/")):
        return "adminToken"
    if path.startswith("/v1/partner/"):
        return "partnerKey"
    if path.startswith("/v1/customer/"):
        return "customerSession"
    if path == "/v1/registrations/{license_key}/seller-code":
        return "registrationToken"
    if path.startswith("/v1/checkout/"):
        return "checkoutToken"
    raise AssertionError(f"{method.upper()} {path}: say which token it takes")


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_names_the_token_it_takes(service: str) -> None:
    document = _committed(service)
    schemes = document["components"]["securitySchemes"]
    for name, scheme in schemes.items():
        assert scheme["type"] == "http" and scheme["scheme"] == "bearer", name
        assert scheme["description"], name
    # No document-wide default: a route without `security` is public, by choice.
    assert "security" not in document
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            expected = _expected_scheme(method, path)
            security = operation.get("security")
            if expected is None:
                assert not security, f"{method.upper()} {path} is public: {security}"
            elif expected == "partnerKey":
                # CONTRACT 6.7: every partner route declares its roles, e.g.
                # `caller: Annotated[PartnerPrincipal, require_partner_role("sales")]`.
                assert security and list(security[0]) == [expected], f"{method} {path}"
                roles = security[0][expected]
                assert roles, (
                    f"{method.upper()} {path} declares no partner role: add"
                    ' require_partner_role("sales"|"finance"|"admin") (chassis/partner_roles.py)'
                )
                assert "admin" in roles and set(roles) <= {"admin", "sales", "finance"}, roles
            else:
                assert security == [{expected: []}], f"{method.upper()} {path}: {security}"
                assert expected in schemes


def test_the_services_use_the_schemes_they_need() -> None:
    used = {svc: set(_committed(svc)["components"]["securitySchemes"]) for svc in SERVICES}
    assert used["registration"] == {
        "adminToken",
        "partnerKey",
        "registrationToken",
        "customerSession",
        "checkoutToken",
    }
    assert used["commissions"] == used["notifications"] == {"adminToken", "partnerKey"}


# --------------------------------------------- the schemes only describe; checks unchanged


def _app() -> FastAPI:
    async def resolve(token: str) -> PartnerPrincipal | None:
        return PartnerPrincipal("P-1") if token == "partner-key-1" else None

    app = FastAPI()
    errors.install(app)

    @app.get("/admin")
    async def admin_route(request: Request, _: AdminTokenDeclared) -> dict[str, str]:
        await require_admin(request, ADMIN_TOKEN, resolve)
        return {"ok": "admin"}

    @app.get("/partner")
    async def partner_route(request: Request, _: PartnerKeyDeclared) -> dict[str, str]:
        return {"partner_id": (await require_partner(request, ADMIN_TOKEN, resolve)).partner_id}

    return app


@pytest.mark.parametrize(
    ("path", "header", "status", "code"),
    [
        ("/admin", None, 401, "unauthorized"),
        ("/admin", "Basic abc", 401, "unauthorized"),
        ("/admin", "Bearer wrong-token", 401, "unauthorized"),
        ("/admin", "Bearer partner-key-1", 403, "forbidden"),
        ("/admin", f"Bearer {ADMIN_TOKEN}", 200, None),
        ("/partner", None, 401, "unauthorized"),
        ("/partner", f"Bearer {ADMIN_TOKEN}", 403, "forbidden"),
        ("/partner", "Bearer partner-key-1", 200, None),
    ],
)
def test_missing_or_wrong_tokens_keep_the_contract_errors(
    path: str, header: str | None, status: int, code: str | None
) -> None:
    with TestClient(_app()) as client:
        response = client.get(path, headers={"Authorization": header} if header else {})
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
