"""What the portal's HTTP clients of the services share (partner, admin and customer APIs).

One request path: a transport failure or a 5xx is `Unavailable`; a 4xx is an
`UpstreamError` carrying the contract's error code, or the client's own
"signed out" subclass of it when the credential was refused. Each client adds its
credential header, its routes and its own idea of "signed out".
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from services.portal.service_layer.ports import Unavailable, UpstreamError


def segment(value: str) -> str:
    """A value quoted as one path segment."""
    return quote(value, safe="")


class UpstreamClient:
    """Sends requests with one credential and maps the answers to the errors above."""

    # The UpstreamError subclass raised when the credential is refused.
    signed_out: ClassVar[type[UpstreamError]] = UpstreamError
    # The Accept header of every request (None: send none).
    default_accept: ClassVar[str | None] = "application/json"

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self._http = http
        self._headers = headers

    def _is_signed_out(self, status: int, code: str) -> bool:
        return status in (401, 403)

    def _origin(self, url: str) -> str:
        """How an Unavailable message names the service (never the path or query)."""
        return url.split("/v1/")[0]

    def _error(self, response: httpx.Response) -> UpstreamError:
        try:
            body = response.json().get("error", {})
        except (ValueError, AttributeError):
            body = {}
        code = str(body.get("code") or "http_error")
        message = str(body.get("message") or f"HTTP {response.status_code}")
        signed_out = self._is_signed_out(response.status_code, code)
        kind = self.signed_out if signed_out else UpstreamError
        return kind(response.status_code, code, message, body.get("field"))

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        accept: str | None = None,
    ) -> httpx.Response:
        accept = accept or self.default_accept
        headers = {**self._headers, "Accept": accept} if accept else self._headers
        try:
            response = await self._http.request(
                method, url, params=params, json=json, headers=headers
            )
        except httpx.HTTPError as error:
            raise Unavailable(f"{type(error).__name__} calling {self._origin(url)}") from None
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code} from {self._origin(url)}")
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _object(self, body: Any) -> dict[str, Any]:
        """A JSON answer that is not an object, as an object."""
        return {}

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body = (await self._send(method, url, **kwargs)).json()
        return body if isinstance(body, dict) else self._object(body)

    async def _json_or_none(
        self, method: str, url: str, *, missing: tuple[int, ...] = (404,), **kwargs: Any
    ) -> dict[str, Any] | None:
        """The answer, or None when the service answers one of `missing` (not signed out)."""
        try:
            return await self._json(method, url, **kwargs)
        except UpstreamError as error:
            if error.status in missing and not isinstance(error, self.signed_out):
                return None
            raise

    async def _pages(
        self, url: str, items: str, params: dict[str, Any], most: int
    ) -> list[dict[str, Any]]:
        """`items` of every page (`next_after` keyed), up to about `most` of them."""
        found: list[dict[str, Any]] = []
        params = dict(params)
        while len(found) < most:
            page = await self._json("GET", url, params=params)
            found.extend(page.get(items, []))
            if not page.get("next_after"):
                break
            params["after"] = page["next_after"]
        return found
