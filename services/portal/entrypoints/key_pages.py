"""The Keys page (CONTRACT 6.7): an admin key creates keys with a role, sees when each was
last used, and revokes them. A new key is shown once, in the answer to its creation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.domain import roles
from services.portal.entrypoints.web import PortalDep, SessionDep, check_csrf, read_form, render
from services.portal.service_layer.ports import NotSignedIn, UpstreamError

router = APIRouter(include_in_schema=False)

ROLE_HELP = {
    "admin": "everything, and managing keys and the webhook",
    "sales": "entitlements and registering licences",
    "finance": "commissions and statements",
}
MESSAGES = {
    "last_admin_key": "This is your last admin key: create another admin key before revoking it.",
    "key_not_found": "That key is already revoked.",
    "too_many_keys": "You have the most keys a partner may have: revoke one first.",
}


async def _page(
    request: Request,
    p: PortalDep,
    session: SessionDep,
    status_code: int = 200,
    **context: object,
) -> Response:
    keys = await p.api_for(session).keys()
    context.setdefault("values", {})
    context.setdefault("errors", {})
    return render(
        request,
        "keys.html",
        session,
        status_code,
        keys=[k for k in keys if not k.get("revoked_at")],
        revoked=[k for k in keys if k.get("revoked_at")],
        roles=roles.ROLES,
        role_help=ROLE_HELP,
        **context,
    )


@router.get("/keys")
async def keys_page(request: Request, p: PortalDep, session: SessionDep) -> Response:
    return await _page(request, p, session)


@router.post("/keys")
async def create_key(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    values = {"name": form.get("name", ""), "role": form.get("role", "")}
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "Give the key a name, e.g. who uses it."
    if values["role"] not in roles.ROLES:
        errors["role"] = "Choose a role."
    if errors:
        return await _page(request, p, session, 422, values=values, errors=errors)
    try:
        made = await p.api_for(session).create_key(values["name"], values["role"])
    except UpstreamError as error:
        if isinstance(error, NotSignedIn) or error.status == 403:
            raise
        field = (error.field or "name").split(".")[-1]
        errors[field if field in values else "name"] = MESSAGES.get(error.code, error.message)
        return await _page(request, p, session, 422, values=values, errors=errors)
    # The key is in this one response only: never stored by the portal, never cached.
    return await _page(request, p, session, 201, created=made)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    try:
        await p.api_for(session).revoke_key(key_id)
    except UpstreamError as error:
        if isinstance(error, NotSignedIn) or error.status == 403:
            raise
        message = MESSAGES.get(error.code, error.message)
        return await _page(request, p, session, error.status, revoke_error=message)
    return await _page(request, p, session, revoked_key=key_id)
