"""Partner roles on routes (CONTRACT 6.7): declared once per route, enforced, published."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from chassis import errors
from chassis.auth import PartnerKeyDeclared, PartnerPrincipal, require_partner
from chassis.partner_roles import role_requirement

pytestmark = pytest.mark.unit

ADMIN_TOKEN = "test-admin-token-0123"
KEYS = {
    "key-admin": PartnerPrincipal("P-1", role="admin", key_id="K-A"),
    "key-sales": PartnerPrincipal("P-1", role="sales", key_id="K-S"),
    "key-finance": PartnerPrincipal("P-1", role="finance", key_id="K-F"),
}


async def resolve(token: str) -> PartnerPrincipal | None:
    return KEYS.get(token)


async def partner(request: Request, _: PartnerKeyDeclared) -> PartnerPrincipal:
    return await require_partner(request, ADMIN_TOKEN, resolve)


require_partner_role = role_requirement(partner)


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/v1/partner/deals")
    async def deals(
        caller: Annotated[PartnerPrincipal, require_partner_role("sales")],
    ) -> dict[str, str]:
        return {"key_id": caller.key_id or ""}

    @app.get("/v1/partner/statements")
    async def statements(_: Annotated[PartnerPrincipal, require_partner_role("finance")]) -> None:
        return None

    @app.get("/v1/partner/keys")
    async def keys(_: Annotated[PartnerPrincipal, require_partner_role("admin")]) -> None:
        return None

    @app.get("/v1/partner/me")
    async def me(_: Annotated[PartnerPrincipal, require_partner_role("sales", "finance")]) -> None:
        return None

    @app.get("/v1/partner/forgotten")
    async def forgotten(_: Annotated[PartnerPrincipal, Depends(partner)]) -> None:
        return None

    return app


@pytest.mark.parametrize(
    ("path", "admin", "sales", "finance"),
    [
        ("/v1/partner/deals", 200, 200, 403),
        ("/v1/partner/statements", 200, 403, 200),
        ("/v1/partner/keys", 200, 403, 403),
        ("/v1/partner/me", 200, 200, 200),
        # No declaration: admin keys only, never wider.
        ("/v1/partner/forgotten", 200, 403, 403),
    ],
)
def test_each_role_gets_what_the_route_declares(
    path: str, admin: int, sales: int, finance: int
) -> None:
    with TestClient(_app()) as client:
        for role, status in (("admin", admin), ("sales", sales), ("finance", finance)):
            response = client.get(path, headers={"Authorization": f"Bearer key-{role}"})
            assert response.status_code == status, (path, role, response.text)
            if status == 403:
                assert response.json()["error"]["code"] == "role_forbidden"
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        admin_token = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.get(path, headers=admin_token).status_code == 403


def test_openapi_names_the_roles_of_each_partner_route() -> None:
    paths = _app().openapi()["paths"]
    roles = {path: item["get"]["security"] for path, item in paths.items()}
    assert roles["/v1/partner/deals"] == [{"partnerKey": ["admin", "sales"]}]
    assert roles["/v1/partner/statements"] == [{"partnerKey": ["admin", "finance"]}]
    assert roles["/v1/partner/keys"] == [{"partnerKey": ["admin"]}]
    assert roles["/v1/partner/me"] == [{"partnerKey": ["admin", "sales", "finance"]}]
    assert roles["/v1/partner/forgotten"] == [{"partnerKey": []}]


def test_an_unknown_role_is_refused_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown partner role"):
        require_partner_role("owner")  # type: ignore[arg-type]
