"""Partner API keys for services that do not own them.

Registration issues the keys and keeps only their hashes. Commissions and
notifications ask it, service to service with the operator token
(`POST /v1/internal/api-keys/introspect`, in the spirit of RFC 7662), and cache
the answer briefly, keyed by a digest of the key: a burst of requests costs one
look-up, a suspended partner's key stops working within `ttl_s`, and unknown
keys are cached too (shorter), so guessing keys costs registration little.
Registration unreachable is a 503, never a 401 that would blame the caller's key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx

from chassis.auth import PartnerPrincipal
from chassis.errors import ApiError

INTROSPECT_PATH = "/v1/internal/api-keys/introspect"

log = logging.getLogger(__name__)


class RegistrationKeyIntrospector:
    def __init__(
        self,
        base_url: str,
        admin_token: str,
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = base_url.rstrip("/") + INTROSPECT_PATH
        self._admin_token = admin_token
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._client = client or httpx.AsyncClient(timeout=3.0, follow_redirects=False)
        self._cache: OrderedDict[str, tuple[float, PartnerPrincipal | None]] = OrderedDict()
        self._max_entries = max_entries
        self._now = monotonic

    async def __call__(self, api_key: str) -> PartnerPrincipal | None:
        # Keyed by a digest: raw keys are not kept in memory longer than a call.
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._now():
            self._cache.move_to_end(digest)
            return cached[1]
        principal = await self._ask(api_key)
        ttl = self._ttl_s if principal is not None else self._negative_ttl_s
        self._cache[digest] = (self._now() + ttl, principal)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return principal

    async def _ask(self, api_key: str) -> PartnerPrincipal | None:
        try:
            response = await self._client.post(
                self._url,
                json={"api_key": api_key},
                headers={"Authorization": f"Bearer {self._admin_token}"},
            )
        except httpx.HTTPError as error:
            log.warning("partner key check failed", extra={"error": type(error).__name__})
            raise _unavailable() from None
        if response.status_code != 200:
            log.warning("partner key check failed", extra={"status": response.status_code})
            raise _unavailable()
        body = response.json()
        return PartnerPrincipal(str(body["partner_id"])) if body.get("active") else None

    async def close(self) -> None:
        await self._client.aclose()


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "partner_keys_unavailable",
        "partner keys cannot be checked right now; try again shortly",
        headers={"Retry-After": "5"},
    )
