"""HTTP client of the three services' partner APIs, bound to one signed-in partner's key.

Every call carries that partner's key and no other: the services then show that
partner's data alone (CONTRACT 2). The partner pages never call an admin route (the
staff console does, adapters/admin_api.py, with the token its operator signed in with).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import httpx

from services.portal.adapters.upstream import UpstreamClient
from services.portal.adapters.upstream import segment as _segment
from services.portal.service_layer.ports import NotSignedIn, ServiceUrls, UpstreamError

MAX_ENTITLEMENTS = 5000  # pages of 1000; a portal page shows at most this many


class PartnerApi(UpstreamClient):
    """The partner routes of registration, commissions and notifications, as one partner."""

    signed_out: ClassVar[type[UpstreamError]] = NotSignedIn

    def __init__(self, http: httpx.AsyncClient, urls: ServiceUrls, api_key: str) -> None:
        super().__init__(http, {"Authorization": f"Bearer {api_key}"})
        self._urls = urls

    def _is_signed_out(self, status: int, code: str) -> bool:
        return status == 401 or (status == 403 and code != "role_forbidden")

    # --- registration ------------------------------------------------------------

    async def check_key(self) -> str:
        """The key's role (CONTRACT 6.7); raises NotSignedIn unless it is an active key."""
        body = await self._json("GET", f"{self._urls.registration}/v1/partner/key")
        return str(body.get("role") or "admin")

    async def me(self) -> dict[str, Any] | None:
        """The partner's own profile (name, branding) where registration offers it."""
        return await self._json_or_none(
            "GET", f"{self._urls.registration}/v1/partner/me", missing=(404, 405)
        )

    async def tier(self) -> dict[str, Any] | None:
        """The partner's earned tier (CONTRACT 6.4); None while no tier rules are in force."""
        try:
            return await self._json("GET", f"{self._urls.registration}/v1/partner/tier")
        except UpstreamError as error:
            if isinstance(error, NotSignedIn) or error.code != "no_tier_rules":
                raise
            return None

    async def set_renewal_mode(self, renewal_mode: str) -> dict[str, Any]:
        """`PUT /v1/partner/renewal-mode` (CONTRACT 6.1): effective now."""
        return await self._json(
            "PUT",
            f"{self._urls.registration}/v1/partner/renewal-mode",
            json={"renewal_mode": renewal_mode},
        )

    async def entitlements(self, term_end_before: dt.date | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1000}
        if term_end_before is not None:
            params["term_end_before"] = term_end_before.isoformat()
        return await self._pages(
            f"{self._urls.registration}/v1/partner/entitlements",
            "entitlements",
            params,
            MAX_ENTITLEMENTS,
        )

    async def entitlement(self, license_key: str) -> dict[str, Any] | None:
        return await self._json_or_none(
            "GET", f"{self._urls.registration}/v1/partner/entitlements/{_segment(license_key)}"
        )

    async def register(
        self, license_key: str, customer: dict[str, str] | None
    ) -> tuple[bool, dict[str, Any]]:
        """(first_time, entitlement); 409 attributed_elsewhere etc. raise UpstreamError."""
        body: dict[str, Any] = {"license_key": license_key}
        if customer is not None:
            body["customer"] = customer
        response = await self._send(
            "POST", f"{self._urls.registration}/v1/partner/registrations", json=body
        )
        return response.status_code == 201, response.json()

    # --- deals (CONTRACT 6.3) -----------------------------------------------------

    async def deals(self) -> list[dict[str, Any]]:
        return await self._pages(
            f"{self._urls.registration}/v1/partner/deals",
            "deals",
            {"limit": 1000},
            MAX_ENTITLEMENTS,
        )

    async def deal(self, deal_id: str) -> dict[str, Any] | None:
        return await self._json_or_none(
            "GET", f"{self._urls.registration}/v1/partner/deals/{_segment(deal_id)}"
        )

    async def submit_deal(self, deal: dict[str, Any]) -> dict[str, Any]:
        """`{"deal_id", "status"}`; a 409 deal_conflict or a 422 raise UpstreamError."""
        return await self._json("POST", f"{self._urls.registration}/v1/partner/deals", json=deal)

    # --- commissions -------------------------------------------------------------

    async def commissions(
        self, start: dt.date, end: dt.date, status: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"from": start.isoformat(), "to": end.isoformat()}
        if status:
            params["status"] = status
        page = await self._json(
            "GET", f"{self._urls.commissions}/v1/partner/commissions", params=params
        )
        return list(page.get("lines", []))

    async def statement(self, month: str) -> dict[str, Any]:
        return await self._json(
            "GET", f"{self._urls.commissions}/v1/partner/statements/{_segment(month)}"
        )

    async def statement_csv(self, month: str) -> bytes:
        response = await self._send(
            "GET",
            f"{self._urls.commissions}/v1/partner/statements/{_segment(month)}",
            accept="text/csv",
        )
        return response.content

    # --- notifications -----------------------------------------------------------

    async def set_webhook(self, url: str) -> dict[str, Any]:
        return await self._json(
            "PUT", f"{self._urls.notifications}/v1/partner/webhook", json={"url": url}
        )

    async def webhook_url(self) -> str | None:
        """The URL in use, or None when the partner has not set one."""
        answer = await self._json_or_none("GET", f"{self._urls.notifications}/v1/partner/webhook")
        if answer is None:
            return None
        return str(answer.get("url") or "") or None

    async def test_webhook(self) -> dict[str, Any]:
        return await self._json("POST", f"{self._urls.notifications}/v1/partner/webhook/test")

    async def deliveries(self, limit: int, offset: int) -> dict[str, Any]:
        return await self._json(
            "GET",
            f"{self._urls.notifications}/v1/partner/deliveries",
            params={"limit": limit, "offset": offset},
        )

    # --- keys (CONTRACT 6.7, admin keys only) -------------------------------------

    async def keys(self) -> list[dict[str, Any]]:
        body = await self._json("GET", f"{self._urls.registration}/v1/partner/keys")
        return list(body.get("keys", []))

    async def create_key(self, name: str, role: str) -> dict[str, Any]:
        """`{"key_id", "api_key", ...}`: the key is in this answer only."""
        return await self._json(
            "POST", f"{self._urls.registration}/v1/partner/keys", json={"name": name, "role": role}
        )

    async def revoke_key(self, key_id: str) -> None:
        await self._send("DELETE", f"{self._urls.registration}/v1/partner/keys/{_segment(key_id)}")
