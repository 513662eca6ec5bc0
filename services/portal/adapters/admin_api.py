"""HTTP client of the three services' admin routes, bound to one signed-in operator's token.

The console (entrypoints/console_pages.py) calls these on the operator's behalf with
the token the operator signed in with, kept encrypted in the console cookie: the
portal holds no admin token of its own (its settings have none).

Routes that other work adds in parallel (tier rules, the evaluation preview) may be
missing on an older registration: those answer `None` on a 404 or 405, and the page
says "not available" rather than failing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import httpx

from services.portal.adapters.upstream import UpstreamClient
from services.portal.adapters.upstream import segment as _segment
from services.portal.service_layer.ports import (
    MAX_LINES,
    OperatorRefused,
    ServiceUrls,
    UpstreamError,
)

MAX_PARTNERS = 5000  # pages of 1000: the console lists and searches at most this many


class AdminApi(UpstreamClient):
    """The admin routes of registration, commissions and notifications, as one operator."""

    signed_out: ClassVar[type[UpstreamError]] = OperatorRefused

    def __init__(self, http: httpx.AsyncClient, urls: ServiceUrls, admin_token: str) -> None:
        super().__init__(http, {"Authorization": f"Bearer {admin_token}"})
        self._urls = urls

    def _object(self, body: Any) -> dict[str, Any]:
        return {"items": body}

    async def _optional(self, method: str, url: str, **kwargs: Any) -> dict[str, Any] | None:
        """None where this deployment lacks the route (FastAPI: 404, or 405 on a known path)."""
        return await self._json_or_none(method, url, missing=(404, 405), **kwargs)

    # --- registration: partners (CONTRACT 2.1) --------------------------------------

    async def check_token(self) -> None:
        """Raises OperatorRefused unless the token opens an admin route."""
        await self._send("GET", f"{self._urls.registration}/v1/admin/partners", params={"limit": 1})

    async def partners(self) -> list[dict[str, Any]]:
        return await self._pages(
            f"{self._urls.registration}/v1/admin/partners",
            "partners",
            {"limit": 1000},
            MAX_PARTNERS,
        )

    async def partner(self, partner_id: str) -> dict[str, Any] | None:
        return await self._json_or_none(
            "GET", f"{self._urls.registration}/v1/admin/partners/{_segment(partner_id)}"
        )

    async def create_partner(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The new partner with its `api_key`: in this answer only."""
        return await self._json("POST", f"{self._urls.registration}/v1/admin/partners", json=fields)

    async def update_partner(self, partner_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._json(
            "PATCH",
            f"{self._urls.registration}/v1/admin/partners/{_segment(partner_id)}",
            json=changes,
        )

    # --- registration: attribution conflicts -----------------------------------------

    async def conflicts(self, limit: int = 200) -> list[dict[str, Any]]:
        body = await self._json(
            "GET",
            f"{self._urls.registration}/v1/admin/attribution-conflicts",
            params={"limit": limit},
        )
        return list(body.get("conflicts", []))

    async def reassign(self, license_key: str, partner_id: str | None, reason: str) -> None:
        await self._send(
            "PUT",
            f"{self._urls.registration}/v1/admin/entitlements/"
            f"{_segment(license_key)}/partner-of-record",
            json={"partner_id": partner_id, "reason": reason},
        )

    # --- registration: deals (CONTRACT 6.3) ------------------------------------------

    async def deals(self, status: str = "submitted") -> list[dict[str, Any]]:
        return await self._pages(
            f"{self._urls.registration}/v1/admin/deals",
            "deals",
            {"status": status, "limit": 1000},
            MAX_PARTNERS,
        )

    async def approve_deal(self, deal_id: str) -> dict[str, Any]:
        return await self._json(
            "POST", f"{self._urls.registration}/v1/admin/deals/{_segment(deal_id)}/approve"
        )

    async def reject_deal(self, deal_id: str, reason: str) -> dict[str, Any]:
        return await self._json(
            "POST",
            f"{self._urls.registration}/v1/admin/deals/{_segment(deal_id)}/reject",
            json={"reason": reason},
        )

    # --- registration: earned tiers (CONTRACT 6.4; may not be deployed yet) ----------

    async def tier_rules(self) -> dict[str, Any] | None:
        return await self._optional("GET", f"{self._urls.registration}/v1/admin/tier-rules")

    async def put_tier_rules(self, rules: dict[str, Any]) -> dict[str, Any] | None:
        return await self._optional(
            "PUT", f"{self._urls.registration}/v1/admin/tier-rules", json=rules
        )

    async def tier_preview(self, as_of: dt.date) -> dict[str, Any] | None:
        """Registration's preview (`{"as_of", "changes": [{"partner_id", "tier", "move",
        "new_tier", ...}]}`), or None where it has none."""
        return await self._optional(
            "GET",
            f"{self._urls.registration}/v1/admin/tiers/preview",
            params={"as_of": as_of.isoformat()},
        )

    async def evaluate_tiers(self, as_of: dt.date) -> dict[str, Any] | None:
        return await self._optional(
            "POST",
            f"{self._urls.registration}/v1/admin/tiers/evaluate",
            params={"as_of": as_of.isoformat()},
        )

    # --- commissions -----------------------------------------------------------------

    async def commission_lines(self, partner_id: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": MAX_LINES}
        if partner_id:
            params["partner_id"] = partner_id
        body = await self._json(
            "GET", f"{self._urls.commissions}/v1/admin/commissions", params=params
        )
        return list(body.get("lines", []))

    async def run_payables(self, as_of: dt.date | None) -> dict[str, Any]:
        params = {"as_of": as_of.isoformat()} if as_of is not None else None
        return await self._json(
            "POST", f"{self._urls.commissions}/v1/admin/payables/run", params=params
        )

    async def mark_paid(self, partner_id: str, month: str) -> dict[str, Any]:
        """`409 below_minimum_payout` raises UpstreamError with that code."""
        return await self._json(
            "POST",
            f"{self._urls.commissions}/v1/admin/statements/"
            f"{_segment(partner_id)}/{_segment(month)}/paid",
        )

    # --- notifications ---------------------------------------------------------------

    async def failed_deliveries(self, error: str | None, limit: int, offset: int) -> dict[str, Any]:
        params: dict[str, Any] = {"status": "failed", "limit": limit, "offset": offset}
        if error:
            params["error"] = error
        return await self._json(
            "GET", f"{self._urls.notifications}/v1/admin/deliveries", params=params
        )
