"""HTTP client of registration's customer self-service (CONTRACT 6.2), as one customer.

Bound to the customer's session token from `POST /v1/customer/sessions`: every call
shows that customer's licences alone. The two public calls (asking for a sign-in
link, trading its token for a session) need no token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from services.portal.adapters.partner_api import Unavailable, UpstreamError


class CustomerSignedOut(UpstreamError):
    """401/403: the customer's session is unknown or expired (or the link was used)."""


def _error(response: httpx.Response) -> UpstreamError:
    try:
        body = response.json().get("error", {})
    except (ValueError, AttributeError):
        body = {}
    code = str(body.get("code") or "http_error")
    message = str(body.get("message") or f"HTTP {response.status_code}")
    kind = CustomerSignedOut if response.status_code in (401, 403) else UpstreamError
    return kind(response.status_code, code, message, body.get("field"))


class CustomerApi:
    def __init__(
        self, http: httpx.AsyncClient, registration_url: str, session_token: str | None = None
    ) -> None:
        self._http = http
        self._base = f"{registration_url}/v1/customer"
        self._headers = {"Authorization": f"Bearer {session_token}"} if session_token else {}

    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            response = await self._http.request(
                method, f"{self._base}{path}", json=body, headers=self._headers
            )
        except httpx.HTTPError as error:
            raise Unavailable(f"{type(error).__name__} calling registration") from None
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code} from registration")
        if response.status_code >= 400:
            raise _error(response)
        found = response.json()
        return found if isinstance(found, dict) else {}

    async def request_sign_in(self, email: str) -> None:
        await self._json("POST", "/sign-in", {"email": email})

    async def start_session(self, token: str) -> dict[str, Any]:
        """`{session_token, expires_at}`; CustomerSignedOut for a used or unknown link."""
        return await self._json("POST", "/sessions", {"token": token})

    async def entitlements(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", "/entitlements")).get("entitlements", []))

    async def set_partner_of_record(self, license_key: str, seller_code: str) -> None:
        await self._json(
            "PUT",
            f"/entitlements/{_segment(license_key)}/partner-of-record",
            {"seller_code": seller_code},
        )

    async def end_partner_of_record(self, license_key: str) -> None:
        await self._json("DELETE", f"/entitlements/{_segment(license_key)}/partner-of-record")

    async def grant_access(self, license_key: str, seller_code: str, permission: str) -> None:
        await self._json(
            "PUT",
            f"/entitlements/{_segment(license_key)}/access/{_segment(seller_code)}",
            {"permission": permission},
        )

    async def revoke_access(self, license_key: str, seller_code: str) -> None:
        await self._json(
            "DELETE", f"/entitlements/{_segment(license_key)}/access/{_segment(seller_code)}"
        )


def _segment(value: str) -> str:
    return quote(value, safe="")
