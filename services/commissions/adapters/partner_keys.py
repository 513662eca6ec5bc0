"""Partner API keys: asked of registration, which issued them (chassis introspection port)."""

from __future__ import annotations

import logging

import httpx

from chassis.auth import PartnerKeyResolver, PartnerPrincipal, is_admin_token
from chassis.errors import ApiError

log = logging.getLogger(__name__)


def partner_resolver(remote: PartnerKeyResolver, admin_token: str) -> PartnerKeyResolver:
    """Never sends the operator token out as if it were a partner key; maps outages to 503."""

    async def resolve(token: str) -> PartnerPrincipal | None:
        if is_admin_token(token, admin_token):
            return None
        try:
            return await remote(token)
        except httpx.HTTPError as error:
            # Logged by kind only: the request carried the key.
            log.warning("partner key introspection failed", extra={"error": type(error).__name__})
            raise ApiError(
                503, "auth_unavailable", "partner keys cannot be checked right now; retry"
            ) from None

    return resolve
