"""Roles on notifications' partner routes and its audit of webhook changes (CONTRACT 6.7)."""

from __future__ import annotations

import httpx

from chassis.auth import PartnerPrincipal
from services.notifications.bootstrap import build_api
from tests.integration.notifications.harness import Receiver, Service

KEYS = {
    "key-admin": PartnerPrincipal("P-ROLES1", role="admin", key_id="K-ADMIN"),
    "key-sales": PartnerPrincipal("P-ROLES1", role="sales", key_id="K-SALES"),
    "key-finance": PartnerPrincipal("P-ROLES1", role="finance", key_id="K-FIN"),
}


def auth(role: str) -> dict[str, str]:
    return {"authorization": f"Bearer key-{role}"}


async def test_webhook_settings_are_admin_keys_and_audited(
    service: Service, receiver: Receiver
) -> None:
    async def resolve(key: str) -> PartnerPrincipal | None:
        return KEYS.get(key)

    app = build_api(service.settings, partner_keys=resolve)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notif") as api:
            for role in ("sales", "finance"):
                for method, path in (
                    ("PUT", "/v1/partner/webhook"),
                    ("GET", "/v1/partner/deliveries"),
                    ("GET", "/v1/partner/audit"),
                ):
                    refused = await api.request(
                        method, path, json={"url": receiver.url}, headers=auth(role)
                    )
                    assert refused.status_code == 403, (role, path)
                    assert refused.json()["error"]["code"] == "role_forbidden"
            put = await api.put(
                "/v1/partner/webhook", json={"url": receiver.url}, headers=auth("admin")
            )
            assert put.status_code == 200, put.text
            trail = await api.get("/v1/partner/audit", headers=auth("admin"))
    assert trail.status_code == 200, trail.text
    (entry,) = trail.json()["entries"]
    assert entry["action"] == "webhook.set" and entry["actor_key_id"] == "K-ADMIN"
    assert entry["detail"] == {"host": "127.0.0.1"}
    assert put.json()["secret"] not in trail.text
