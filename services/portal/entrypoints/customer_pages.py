"""The portal's customer area (CONTRACT 6.2): sign in with the e-mailed link, see every
licence with its partner of record and partners with access, set or end the partner of
record, grant or revoke access.

Customer sessions are apart from partner sessions: their own sealed cookie, holding
registration's customer session token (adapters/customer_cookies.py). Every form
carries a CSRF token; the sign-in forms, before there is a session, the signed
double-submit token of the partner sign-in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.portal.bootstrap import Portal
from services.portal.domain.sessions import CustomerSession, tokens_match
from services.portal.entrypoints.web import PortalDep, read_form, render, render_sign_in
from services.portal.service_layer.ports import CustomerSignedOut, UpstreamError

router = APIRouter(prefix="/customer", include_in_schema=False)

DONE = {
    "por_set": "The partner of record is set.",
    "por_ended": "The partner of record is ended. Nobody acts for you on this licence now.",
    "access_granted": "Access granted.",
    "access_revoked": "Access revoked.",
}
ERRORS = {
    "partner_of_record_set": "This licence already has a partner of record. End it first.",
    "no_partner_of_record": "This licence has no partner of record.",
    "unknown_seller_code": "No active partner has that seller code.",
    "invalid_seller_code": "That is not a valid seller code (XXXX-XXXX). Check it and try again.",
    "partner_of_record": "That partner is already the partner of record of this licence.",
    "no_access": "That partner has no access to this licence.",
    "unknown_license_key": "There is no such licence among yours.",
}


def _cookie_name(p: Portal) -> str:
    return "__Host-portal_customer" if p.settings.secure_cookies else "portal_customer"


def _session(request: Request, p: Portal) -> CustomerSession | None:
    return p.customer_cookies.open(request.cookies.get(_cookie_name(p)))


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _signed_out(request: Request, p: Portal, *, expired: bool = True) -> Response:
    p.customer_cookies.revoke(_session(request, p))
    response = _redirect("/customer/sign-in?expired=1" if expired else "/customer/sign-in")
    response.delete_cookie(
        _cookie_name(p),
        path="/",
        httponly=True,
        samesite="strict",
        secure=p.settings.secure_cookies,
    )
    return response


def _sign_in_page(
    request: Request,
    p: Portal,
    *,
    error: str | None = None,
    sent: bool = False,
    status_code: int = 200,
) -> Response:
    return render_sign_in(
        request,
        "customer_sign_in.html",
        status_code,
        error=error,
        sent=sent,
        customer_area=True,
    )


def _pre_session_csrf(request: Request, p: Portal, form: dict[str, str]) -> bool:
    return p.sign_in_csrf.valid(request.cookies.get(p.sign_in_cookie_name), form.get("csrf_token"))


@router.get("")
async def customer_home(request: Request, p: PortalDep) -> Response:
    return _redirect("/customer/licences" if _session(request, p) else "/customer/sign-in")


@router.get("/sign-in")
async def sign_in_page(request: Request, p: PortalDep) -> Response:
    """The e-mailed link lands here with `#token=...`; portal.js posts it (the fragment
    never reaches a server log). Without JavaScript the code can be pasted."""
    return _sign_in_page(request, p)


@router.post("/sign-in/link")
async def ask_for_link(request: Request, p: PortalDep) -> Response:
    form = await read_form(request)
    if not _pre_session_csrf(request, p, form):
        return _sign_in_page(
            request, p, error="The form expired. Please try again.", status_code=403
        )
    email = form.get("email", "")
    if not email or len(email) > 320 or "@" not in email:
        return _sign_in_page(request, p, error="Enter your e-mail address.", status_code=422)
    try:
        await p.customer_api().request_sign_in(email)
    except UpstreamError as error:
        if error.status == 429:
            message = "Too many sign-in requests. Please wait a few minutes and try again."
            return _sign_in_page(request, p, error=message, status_code=429)
        return _sign_in_page(request, p, error="Enter a valid e-mail address.", status_code=422)
    return _sign_in_page(request, p, sent=True)


@router.post("/sign-in/session")
async def start_session(request: Request, p: PortalDep) -> Response:
    form = await read_form(request)
    if not _pre_session_csrf(request, p, form):
        return _sign_in_page(
            request, p, error="The form expired. Please try again.", status_code=403
        )
    token = form.get("token", "")
    if not token or len(token) > 200:
        return _sign_in_page(request, p, error="Open the link from your e-mail.", status_code=422)
    try:
        issued = await p.customer_api().start_session(token)
    except UpstreamError as error:
        if error.status in (401, 403, 422, 429):
            message = "This sign-in link was used already or has expired. Ask for a new one."
            return _sign_in_page(request, p, error=message, status_code=401)
        raise
    expires_at = dt.datetime.fromisoformat(str(issued["expires_at"]).replace("Z", "+00:00"))
    cookies = p.customer_cookies
    cookies.revoke(_session(request, p))  # a new session id on every sign-in
    session = cookies.create(str(issued["session_token"]), expires_at.timestamp())
    response = _redirect("/customer/licences")
    response.set_cookie(
        _cookie_name(p),
        cookies.seal(session),
        path="/",
        httponly=True,
        samesite="strict",
        secure=p.settings.secure_cookies,
    )
    response.delete_cookie(p.sign_in_cookie_name, path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, p: PortalDep) -> Response:
    session = _session(request, p)
    form = await read_form(request)
    if session is not None and not tokens_match(session.csrf_token, form.get("csrf_token")):
        return _redirect("/customer/licences")
    return _signed_out(request, p, expired=False)


async def _licences_page(
    request: Request,
    p: Portal,
    session: CustomerSession,
    *,
    error: str | None = None,
    error_key: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        licences = await p.customer_api(session).entitlements()
    except CustomerSignedOut:
        return _signed_out(request, p)
    if error_key not in {str(x.get("license_key")) for x in licences}:
        error_key = None  # shown above the list, not next to a licence
    done = DONE.get(request.query_params.get("done", ""))
    return render(
        request,
        "customer_licences.html",
        None,
        status_code=status_code,
        licences=licences,
        customer_csrf=session.csrf_token,
        notice=done,
        error=error,
        error_key=error_key,
        customer_area=True,
    )


@router.get("/licences")
async def licences(request: Request, p: PortalDep) -> Response:
    session = _session(request, p)
    if session is None:
        return _redirect("/customer/sign-in")
    return await _licences_page(request, p, session)


async def _act(request: Request, p: Portal, license_key: str, action: str, **args: Any) -> Response:
    session = _session(request, p)
    if session is None:
        return _redirect("/customer/sign-in?expired=1")
    form = await read_form(request)
    if not tokens_match(session.csrf_token, form.get("csrf_token")):
        return await _licences_page(
            request, p, session, error="The form expired. Please try again.", status_code=403
        )
    api = p.customer_api(session)
    values = {name: form.get(name, "") for name in args.get("fields", ())}
    try:
        if action == "por_set":
            await api.set_partner_of_record(license_key, values["seller_code"])
        elif action == "por_ended":
            await api.end_partner_of_record(license_key)
        elif action == "access_granted":
            await api.grant_access(license_key, values["seller_code"], values["permission"])
        else:
            await api.revoke_access(license_key, str(args["seller_code"]))
    except CustomerSignedOut:
        return _signed_out(request, p)
    except UpstreamError as error:
        message = ERRORS.get(error.code) or (
            "Check the seller code and permission." if error.status == 422 else error.message
        )
        return await _licences_page(
            request, p, session, error=message, error_key=license_key, status_code=error.status
        )
    return _redirect(f"/customer/licences?done={action}")


@router.post("/licences/{license_key}/partner-of-record")
async def set_partner_of_record(license_key: str, request: Request, p: PortalDep) -> Response:
    return await _act(request, p, license_key, "por_set", fields=("seller_code",))


@router.post("/licences/{license_key}/partner-of-record/end")
async def end_partner_of_record(license_key: str, request: Request, p: PortalDep) -> Response:
    return await _act(request, p, license_key, "por_ended")


@router.post("/licences/{license_key}/access")
async def grant_access(license_key: str, request: Request, p: PortalDep) -> Response:
    return await _act(
        request, p, license_key, "access_granted", fields=("seller_code", "permission")
    )


@router.post("/licences/{license_key}/access/{seller_code}/revoke")
async def revoke_access(
    license_key: str, seller_code: str, request: Request, p: PortalDep
) -> Response:
    return await _act(request, p, license_key, "access_revoked", seller_code=seller_code)
