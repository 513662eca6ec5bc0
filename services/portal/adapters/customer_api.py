"""HTTP client of registration's customer self-service (CONTRACT 6.2), as one customer.

Bound to the customer's session token from `POST /v1/customer/sessions`: every call
shows that customer's licences alone. The two public calls (asking for a sign-in
link, trading its token for a session) need no token.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from services.portal.adapters.upstream import UpstreamClient
from services.portal.adapters.upstream import segment as _segment
from services.portal.service_layer.ports import CustomerSignedOut, UpstreamError


class CustomerApi(UpstreamClient):
    signed_out: ClassVar[type[UpstreamError]] = CustomerSignedOut
    default_accept: ClassVar[str | None] = None

    def __init__(
        self, http: httpx.AsyncClient, registration_url: str, session_token: str | None = None
    ) -> None:
        super().__init__(
            http, {"Authorization": f"Bearer {session_token}"} if session_token else {}
        )
        self._base = f"{registration_url}/v1/customer"

    def _origin(self, url: str) -> str:
        return "registration"

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        return await self._json(method, f"{self._base}{path}", json=body)

    async def request_sign_in(self, email: str) -> None:
        await self._call("POST", "/sign-in", {"email": email})

    async def start_session(self, token: str) -> dict[str, Any]:
        """`{session_token, expires_at}`; CustomerSignedOut for a used or unknown link."""
        return await self._call("POST", "/sessions", {"token": token})

    async def entitlements(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/entitlements")).get("entitlements", []))

    async def set_partner_of_record(self, license_key: str, seller_code: str) -> None:
        await self._call(
            "PUT",
            f"/entitlements/{_segment(license_key)}/partner-of-record",
            {"seller_code": seller_code},
        )

    async def end_partner_of_record(self, license_key: str) -> None:
        await self._call("DELETE", f"/entitlements/{_segment(license_key)}/partner-of-record")

    async def grant_access(self, license_key: str, seller_code: str, permission: str) -> None:
        await self._call(
            "PUT",
            f"/entitlements/{_segment(license_key)}/access/{_segment(seller_code)}",
            {"permission": permission},
        )

    async def revoke_access(self, license_key: str, seller_code: str) -> None:
        await self._call(
            "DELETE", f"/entitlements/{_segment(license_key)}/access/{_segment(seller_code)}"
        )
