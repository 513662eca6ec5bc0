"""The dev default of `OperatorAuthenticator`: the operator token, checked against registration.

The token is valid when registration's admin directory answers it (`GET
/v1/admin/partners?limit=1`): the services are the judge, so the portal needs no copy
of `ADMIN_TOKEN`, and a partner's API key (a token of the wrong kind) is refused there
with `403`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import httpx

from services.portal.adapters.admin_api import AdminApi
from services.portal.domain.operators import Operator
from services.portal.service_layer.ports import OperatorRefused, ServiceUrls

MAX_TOKEN_CHARS = 500


class TokenAuthenticator:
    kind: Literal["form", "redirect"] = "form"

    def __init__(self, http: httpx.AsyncClient, urls: ServiceUrls) -> None:
        self._http = http
        self._urls = urls

    async def start(self, state: str) -> str | None:
        return None

    async def finish(self, params: Mapping[str, str]) -> Operator | None:
        token = params.get("admin_token", "")
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            await AdminApi(self._http, self._urls, token).check_token()
        except OperatorRefused:
            return None
        return Operator(subject="operator token", admin_credential=token, method="token")
