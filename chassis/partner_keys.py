"""Partner API keys for services that do not own them.

Registration issues the keys and keeps only their hashes. Commissions and
notifications ask it, service to service with the operator token
(`POST /v1/internal/api-keys/introspect`, in the spirit of RFC 7662), and cache
the answer briefly, keyed by a digest of the key: a burst of requests costs one
look-up, a revoked key (CONTRACT 6.7) or a suspended partner's key stops working
within `ttl_s`, and unknown keys are cached too (shorter), so guessing keys costs
registration little. Revocation is bounded by that TTL alone, with no event to
miss: `MAX_POSITIVE_TTL_S` (60 s) caps it, and the services' settings refuse more.
The answer carries the key's `role` and `key_id`, so every service enforces roles.
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
MAX_POSITIVE_TTL_S = 60.0
"""CONTRACT 6.7: a revoked key is refused everywhere within 60 s."""

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
        if not 0 <= ttl_s <= MAX_POSITIVE_TTL_S:
            raise ValueError(f"ttl_s must lie in 0..{MAX_POSITIVE_TTL_S} (revocation bound)")
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
        if not body.get("active"):
            return None
        # No role in the answer: a registration from before roles, whose keys are all
        # the creation key, an admin one.
        return PartnerPrincipal(
            str(body["partner_id"]),
            role=str(body.get("role") or "admin"),
            key_id=str(body["key_id"]) if body.get("key_id") else None,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "partner_keys_unavailable",
        "partner keys cannot be checked right now; try again shortly",
        headers={"Retry-After": "5"},
    )
