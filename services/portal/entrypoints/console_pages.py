"""The console for the vendor's channel team, under /console: admin API calls as pages.

A separate kind of session from the partners' (adapters/console_cookies.py, its own
cookie and key): a partner's session, or a partner's key typed into the console's
sign-in, opens no console page. Staff sign in through the `OperatorAuthenticator` port
(domain/operators.py; the operator token by default), and every page calls the admin
routes with the credential they signed in with, kept encrypted in the console cookie.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal.bootstrap import Portal
from services.portal.domain import charts, console
from services.portal.domain.charts import TIERS
from services.portal.domain.deals import STATUS_LABELS
from services.portal.domain.operators import OperatorAuthenticator, OperatorSession
from services.portal.domain.presentation import is_month
from services.portal.domain.sessions import tokens_match
from services.portal.entrypoints.web import PortalDep, portal, read_form
from services.portal.service_layer.ports import (
    MAX_LINES,
    OperatorRefused,
    Unavailable,
    UpstreamError,
)

router = APIRouter(prefix="/console", include_in_schema=False)

NAV = (
    ("/console", "Overview"),
    ("/console/partners", "Partners"),
    ("/console/conflicts", "Conflicts"),
    ("/console/deals", "Deals"),
    ("/console/tiers", "Tiers"),
    ("/console/payables", "Payables"),
    ("/console/deliveries", "Failed deliveries"),
)
DELIVERIES_PAGE = 50
MAX_REASON = 500
DEAL_MESSAGES = {
    "deal_conflict": "Another partner's approved deal already protects this customer and"
    " product: it cannot be approved.",
    "deal_not_pending": "This deal was already decided.",
}


class ConsoleSignInRequired(Exception):
    def __init__(self, expired: bool = False) -> None:
        self.expired = expired


class ConsoleCsrfRejected(Exception):
    """A console form without the console session's CSRF token."""


def install(app: FastAPI) -> None:
    """Add the console to the portal app: its router and its error pages.

    Its cookies are the app's `Portal.console_cookies` (services.portal.bootstrap).
    """
    app.include_router(router)

    @app.exception_handler(ConsoleSignInRequired)
    async def _sign_in(_: Request, exc: ConsoleSignInRequired) -> Response:
        target = "/console/sign-in?expired=1" if exc.expired else "/console/sign-in"
        return RedirectResponse(target, 303)

    @app.exception_handler(OperatorRefused)
    async def _refused(request: Request, _: OperatorRefused) -> Response:
        # The admin routes stopped taking the credential (ADMIN_TOKEN rotated): sign out.
        cookies = portal(request).console_cookies
        cookies.revoke(getattr(request.state, "operator_session", None))
        response = RedirectResponse("/console/sign-in?expired=1", 303)
        _delete_cookie(request.app.state.portal, response)
        return response

    @app.exception_handler(ConsoleCsrfRejected)
    async def _csrf(request: Request, _: ConsoleCsrfRejected) -> Response:
        return _render(
            request,
            "console/error.html",
            getattr(request.state, "operator_session", None),
            403,
            title="The form expired",
            message="Please go back, reload the page and try again.",
        )

    # Unavailable already has the partner pages' handler: console paths get a console page.
    partner_unavailable = app.exception_handlers.get(Unavailable)

    async def _unavailable(request: Request, error: Exception) -> Response:
        if request.url.path.startswith("/console") or partner_unavailable is None:
            return _render(
                request,
                "console/error.html",
                getattr(request.state, "operator_session", None),
                503,
                title="Temporarily unavailable",
                message="A Channelkeep service is not answering right now. Try again shortly.",
            )
        return await partner_unavailable(request, error)  # type: ignore[no-any-return,misc]

    app.add_exception_handler(Unavailable, _unavailable)


# --- sessions --------------------------------------------------------------------------


def cookie_name(p: Portal) -> str:
    return "__Host-portal_console" if p.settings.secure_cookies else "portal_console"


def _nonce_cookie(p: Portal) -> str:
    return "__Host-portal_console_signin" if p.settings.secure_cookies else "portal_console_signin"


def authenticator(request: Request) -> OperatorAuthenticator:
    """The app's `OperatorAuthenticator` (state `operator_authenticator`), else the token."""
    chosen: OperatorAuthenticator | None = getattr(
        request.app.state, "operator_authenticator", None
    )
    if chosen is not None:
        return chosen
    p: Portal = request.app.state.portal
    return p.operator_authenticator()


def _set_cookie(p: Portal, request: Request, response: Response, s: OperatorSession) -> None:
    response.set_cookie(
        cookie_name(p),
        p.console_cookies.seal(s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=p.settings.secure_cookies,
    )


def _delete_cookie(p: Portal, response: Response) -> None:
    response.delete_cookie(
        cookie_name(p), path="/", httponly=True, samesite="strict", secure=p.settings.secure_cookies
    )


def operator_session(request: Request, p: PortalDep) -> OperatorSession:
    """The console session, or a redirect to the console's sign-in. A partner session is none."""
    session = p.console_cookies.open(request.cookies.get(cookie_name(p)))
    if session is None:
        raise ConsoleSignInRequired(expired=cookie_name(p) in request.cookies)
    request.state.operator_session = session
    return session


OperatorDep = Annotated[OperatorSession, Depends(operator_session)]


async def _form(request: Request, session: OperatorSession) -> dict[str, str]:
    form = await read_form(request)
    if not tokens_match(session.csrf_token, form.get("csrf_token")):
        raise ConsoleCsrfRejected
    return form


def _render(
    request: Request,
    template: str,
    session: OperatorSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    p: Portal = request.app.state.portal
    page = p.templates.get_template(template).render(
        session=session,
        csrf_token=session.csrf_token if session is not None else "",
        path=request.url.path,
        nav=NAV if session is not None else (),
        today=p.today(),
        **context,
    )
    response = HTMLResponse(page, status_code=status_code)
    if session is not None and not p.console_cookies.revoked(session.session_id):
        _set_cookie(p, request, response, session)  # the idle timer restarts
    return response


def _redirect(request: Request, path: str, session: OperatorSession) -> Response:
    response = RedirectResponse(path, 303)
    _set_cookie(request.app.state.portal, request, response, session)
    return response


# --- sign-in and sign-out --------------------------------------------------------------


def _sign_in_page(
    request: Request, p: Portal, *, error: str | None = None, status_code: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = _render(
        request,
        "console/sign_in.html",
        None,
        status_code,
        sign_in_token=p.sign_in_csrf.token_for(nonce),
        sign_in_error=error,  # not `error`: the layout shows that one as a page alert
        expired=request.query_params.get("expired") == "1",
        kind=authenticator(request).kind,
    )
    response.set_cookie(
        _nonce_cookie(p),
        nonce,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="lax",  # the identity provider's redirect back must carry it
        secure=p.settings.secure_cookies,
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, p: PortalDep) -> Response:
    if p.console_cookies.open(request.cookies.get(cookie_name(p))) is not None:
        return RedirectResponse("/console", 303)
    return _sign_in_page(request, p)


async def _finish_sign_in(request: Request, p: Portal, params: dict[str, str]) -> Response:
    if not p.sign_in_csrf.valid(request.cookies.get(_nonce_cookie(p)), params.get("csrf_token")):
        return _sign_in_page(
            request, p, error="The form expired. Please try again.", status_code=403
        )
    operator = await authenticator(request).finish(params)
    if operator is None:
        return _sign_in_page(
            request,
            p,
            error="That is not an operator token. Partner API keys do not open the console.",
            status_code=401,
        )
    cookies = p.console_cookies
    cookies.revoke(cookies.open(request.cookies.get(cookie_name(p))))  # no fixation
    session = cookies.create(operator)
    response = RedirectResponse("/console", 303)
    _set_cookie(p, request, response, session)
    response.delete_cookie(_nonce_cookie(p), path="/")
    return response


@router.post("/sign-in")
async def sign_in(request: Request, p: PortalDep) -> Response:
    return await _finish_sign_in(request, p, await read_form(request))


@router.get("/sign-in/start")
async def sign_in_start(request: Request, p: PortalDep) -> Response:
    """A redirect authenticator (OIDC): off to the identity provider, the state signed."""
    nonce = request.cookies.get(_nonce_cookie(p))
    target = await authenticator(request).start(p.sign_in_csrf.token_for(nonce)) if nonce else None
    if target is None:
        return RedirectResponse("/console/sign-in", 303)
    return RedirectResponse(target, 303)


@router.get("/sign-in/callback")
async def sign_in_callback(request: Request, p: PortalDep) -> Response:
    """Where an identity provider sends the browser back; `state` is the CSRF token."""
    if authenticator(request).kind != "redirect":
        # A form authenticator's credential never travels in a URL (logs, history).
        return RedirectResponse("/console/sign-in", 303)
    params = dict(request.query_params)
    params["csrf_token"] = params.get("state", "")
    return await _finish_sign_in(request, p, params)


@router.post("/sign-out")
async def sign_out(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    await _form(request, session)
    p.console_cookies.revoke(session)
    response = RedirectResponse("/console/sign-in", 303)
    _delete_cookie(p, response)
    return response


# --- overview --------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    api = p.admin_api(session)
    partners, lines, deals, conflicts, failed = await asyncio.gather(
        api.partners(),
        api.commission_lines(),
        api.deals("submitted"),
        api.conflicts(),
        api.failed_deliveries(None, 1, 0),
    )
    tier_of = {str(x["partner_id"]): str(x.get("tier")) for x in partners}
    by_tier = {t: sum(1 for x in partners if x.get("tier") == t) for t in TIERS}
    by_status = {
        s: sum(1 for x in partners if x.get("status") == s) for s in console.PARTNER_STATUSES
    }
    return _render(
        request,
        "console/overview.html",
        session,
        partner_count=len(partners),
        by_tier=by_tier,
        by_status=by_status,
        deals_waiting=len(deals),
        conflicts=len(conflicts),
        failed=int(failed.get("total", 0)),
        revenue_charts=charts.tier_revenue_charts(lines, tier_of),
        line_count=len(lines),
        lines_capped=len(lines) >= MAX_LINES,
    )


# --- partners --------------------------------------------------------------------------


async def _partners_page(
    request: Request,
    p: Portal,
    session: OperatorSession,
    status_code: int = 200,
    **context: Any,
) -> Response:
    q = request.query_params.get("q", "")[:200]
    tier = request.query_params.get("tier", "")
    status = request.query_params.get("status", "")
    everyone = await p.admin_api(session).partners()
    found = console.search_partners(everyone, q, tier if tier in TIERS else "", status)
    context.setdefault("values", {"type": "var", "tier": "bronze"})
    context.setdefault("errors", {})
    return _render(
        request,
        "console/partners.html",
        session,
        status_code,
        partners=found,
        total=len(everyone),
        q=q,
        tier=tier,
        status=status,
        tiers=TIERS,
        statuses=console.PARTNER_STATUSES,
        types=console.PARTNER_TYPES,
        distributors=[x for x in everyone if x.get("type") == "distributor"],
        **context,
    )


@router.get("/partners")
async def partners(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    return await _partners_page(request, p, session)


CREATE_FIELDS = ("display_name", "legal_name", "type", "tier", "contact_email", "parent_partner_id")


@router.post("/partners")
async def create_partner(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    values = {k: form.get(k, "") for k in CREATE_FIELDS}
    errors = {
        k: "Required." for k in ("display_name", "legal_name", "contact_email") if not values[k]
    }
    if values["type"] not in console.PARTNER_TYPES:
        errors["type"] = "Choose a type."
    if values["tier"] not in TIERS:
        errors["tier"] = "Choose a tier."
    if errors:
        return await _partners_page(request, p, session, 422, values=values, errors=errors)
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    try:
        created = await p.admin_api(session).create_partner(body)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        field = (error.field or "display_name").split(".")[-1]
        errors[field if field in values else "display_name"] = error.message
        return await _partners_page(request, p, session, 422, values=values, errors=errors)
    # The key is in this one response only: never stored by the portal, never cached.
    return await _partners_page(request, p, session, 201, created=created)


async def _partner_page(
    request: Request,
    p: Portal,
    session: OperatorSession,
    partner_id: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    api = p.admin_api(session)
    partner = context.pop("partner", None) or await api.partner(partner_id)
    if partner is None:
        return _render(
            request,
            "console/error.html",
            session,
            404,
            title="No such partner",
            message=f"There is no partner {partner_id}.",
        )
    lines = await api.commission_lines(partner_id)
    return _render(
        request,
        "console/partner.html",
        session,
        status_code,
        partner=partner,
        tiers=TIERS,
        statuses=console.PARTNER_STATUSES,
        renewal_modes=console.RENEWAL_MODES,
        renewal_mode_help=console.RENEWAL_MODE_HELP,
        commission_charts=charts.commissions_charts(lines, p.today()),
        **context,
    )


@router.get("/partners/{partner_id}")
async def partner(
    partner_id: str, request: Request, p: PortalDep, session: OperatorDep
) -> Response:
    return await _partner_page(request, p, session, partner_id)


@router.post("/partners/{partner_id}")
async def change_partner(
    partner_id: str, request: Request, p: PortalDep, session: OperatorDep
) -> Response:
    """Tier, status and renewal mode: only what the form changed goes in the PATCH."""
    form = await _form(request, session)
    api = p.admin_api(session)
    current = await api.partner(partner_id)
    if current is None:
        return await _partner_page(request, p, session, partner_id)
    allowed = {
        "tier": TIERS,
        "status": console.PARTNER_STATUSES,
        "renewal_mode": console.RENEWAL_MODES,
    }
    changes = {
        name: form[name]
        for name, choices in allowed.items()
        if form.get(name) in choices and form.get(name) != current.get(name)
    }
    if not changes:
        return await _partner_page(
            request, p, session, partner_id, partner=current, notice="Nothing changed."
        )
    try:
        updated = await api.update_partner(partner_id, changes)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        return await _partner_page(
            request, p, session, partner_id, _failure_status(error),
            partner=current, error=f"Not changed: {error.message}",
        )  # fmt: skip
    done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in changes.items())
    return await _partner_page(
        request, p, session, partner_id, partner=updated, notice=f"Saved: {done}."
    )


def _display_names(partners: list[dict[str, Any]]) -> dict[str, str]:
    """partner_id -> display name, for the pages that list other records by partner."""
    return {str(x["partner_id"]): str(x.get("display_name", "")) for x in partners}


def _failure_status(error: UpstreamError) -> int:
    """The page's status for a refused change: the service's 4xx (else 400)."""
    return error.status if error.status < 500 else 400


# --- attribution conflicts -------------------------------------------------------------


async def _conflicts_page(
    request: Request, p: Portal, session: OperatorSession, status_code: int = 200, **context: Any
) -> Response:
    api = p.admin_api(session)
    found, everyone = await asyncio.gather(api.conflicts(), api.partners())
    names = _display_names(everyone)
    return _render(
        request,
        "console/conflicts.html",
        session,
        status_code,
        conflicts=found,
        names=names,
        **context,
    )


@router.get("/conflicts")
async def conflicts(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    return await _conflicts_page(request, p, session)


@router.post("/conflicts/reassign")
async def reassign(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    license_key = form.get("license_key", "")
    partner_id = form.get("partner_id", "") or None
    reason = form.get("reason", "")
    if not license_key or not reason or len(reason) > MAX_REASON:
        return await _conflicts_page(
            request, p, session, 422, error="Give a reason (up to 500 characters) for the change.",
            failed_key=license_key,
        )  # fmt: skip
    try:
        await p.admin_api(session).reassign(license_key, partner_id, reason)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        return await _conflicts_page(
            request, p, session, _failure_status(error),
            error=f"Not reassigned: {error.message}", failed_key=license_key,
        )  # fmt: skip
    who = partner_id or "no partner"
    return await _conflicts_page(
        request, p, session, notice=f"{license_key}: partner of record is now {who}."
    )


# --- deals awaiting approval -----------------------------------------------------------


async def _deals_page(
    request: Request, p: Portal, session: OperatorSession, status_code: int = 200, **context: Any
) -> Response:
    api = p.admin_api(session)
    found, everyone = await asyncio.gather(api.deals("submitted"), api.partners())
    names = _display_names(everyone)
    return _render(
        request,
        "console/deals.html",
        session,
        status_code,
        deals=found,
        names=names,
        status_labels=STATUS_LABELS,
        **context,
    )


@router.get("/deals")
async def deals(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    return await _deals_page(request, p, session)


@router.post("/deals/{deal_id}/{decision}")
async def decide_deal(
    deal_id: str, decision: str, request: Request, p: PortalDep, session: OperatorDep
) -> Response:
    form = await _form(request, session)
    api = p.admin_api(session)
    reason = form.get("reason", "")
    if decision not in ("approve", "reject"):
        return await _deals_page(request, p, session, 404, error="Approve or reject, nothing else.")
    if decision == "reject" and (not reason or len(reason) > MAX_REASON):
        return await _deals_page(
            request, p, session, 422, error="Give the partner a reason for the rejection.",
            failed_deal=deal_id,
        )  # fmt: skip
    try:
        if decision == "approve":
            decided = await api.approve_deal(deal_id)
        else:
            decided = await api.reject_deal(deal_id, reason)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        message = DEAL_MESSAGES.get(error.code, error.message)
        return await _deals_page(
            request, p, session, _failure_status(error),
            error=f"{deal_id}: {message}", failed_deal=deal_id,
        )  # fmt: skip
    status = STATUS_LABELS.get(str(decided.get("status")), str(decided.get("status")))
    until = decided.get("protected_until")
    notice = f"{deal_id}: {status}" + (f" until {str(until)[:10]}." if until else ".")
    return await _deals_page(request, p, session, notice=notice)


# --- tier rules and the evaluation preview (CONTRACT 6.4) -----------------------------


def _as_of(text: str, today: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else today
    except ValueError:
        return today


async def _tiers_page(
    request: Request,
    p: Portal,
    session: OperatorSession,
    status_code: int = 200,
    *,
    as_of: dt.date | None = None,
    preview: bool = False,
    **context: Any,
) -> Response:
    api = p.admin_api(session)
    today = p.today()
    as_of = as_of or today
    body = await api.tier_rules()
    rules = console.rules_in_force(body)
    changes = await api.tier_preview(as_of) if preview else None
    context.setdefault("values", console.tier_rules_form_values(rules, today))
    context.setdefault("errors", {})
    return _render(
        request,
        "console/tiers.html",
        session,
        status_code,
        rules_available=body is not None,
        rules=rules,
        versions=len(body.get("versions", []))
        if body and isinstance(body.get("versions"), list)
        else None,
        tiers=TIERS,
        as_of=as_of.isoformat(),
        preview=preview,
        preview_available=changes is not None,
        changes=console.preview_moves(changes),
        **context,
    )


@router.get("/tiers")
async def tiers(
    request: Request,
    p: PortalDep,
    session: OperatorDep,
    as_of: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    return await _tiers_page(
        request, p, session, as_of=_as_of(as_of, p.today()), preview=bool(as_of)
    )


@router.post("/tiers/rules")
async def put_tier_rules(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    rules, errors = console.tier_rules_from_form(form)
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    if rules is None:
        return await _tiers_page(request, p, session, 422, values=values, errors=errors)
    try:
        saved = await p.admin_api(session).put_tier_rules(rules)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        field = (error.field or "").split(".")[-1] or "tiers"
        return await _tiers_page(
            request, p, session, 422, values=values,
            errors={field: error.message}, rules_error=error.message,
        )  # fmt: skip
    if saved is None:
        return await _tiers_page(
            request, p, session, 404, values=values,
            rules_error="Registration has no tier rules yet (not available).",
        )  # fmt: skip
    return await _tiers_page(
        request, p, session, notice=f"Tier rules saved, in force from {rules['effective_from']}."
    )


@router.post("/tiers/evaluate")
async def evaluate_tiers(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    as_of = _as_of(form.get("as_of", ""), p.today())
    try:
        result = await p.admin_api(session).evaluate_tiers(as_of)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        return await _tiers_page(request, p, session, 400, as_of=as_of, rules_error=error.message)
    if result is None:
        return await _tiers_page(
            request, p, session, 404, as_of=as_of,
            rules_error="Tier evaluation is not available on this registration.",
        )  # fmt: skip
    moved = result.get("changes")
    count = len(moved) if isinstance(moved, list) else result.get("changed", "?")
    return await _tiers_page(
        request, p, session, as_of=as_of,
        notice=f"Evaluated as of {as_of.isoformat()}: {count} partner(s) changed tier.",
    )  # fmt: skip


# --- payables and statements -----------------------------------------------------------


async def _payables_page(
    request: Request, p: Portal, session: OperatorSession, status_code: int = 200, **context: Any
) -> Response:
    api = p.admin_api(session)
    lines, everyone = await asyncio.gather(api.commission_lines(), api.partners())
    names = _display_names(everyone)
    return _render(
        request,
        "console/payables.html",
        session,
        status_code,
        statements=console.payable_statements(lines),
        names=names,
        partners=sorted(everyone, key=lambda x: str(x.get("display_name", "")).casefold()),
        **context,
    )


@router.get("/payables")
async def payables(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    return await _payables_page(request, p, session)


@router.post("/payables/run")
async def run_payables(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    as_of = _as_of(form.get("as_of", ""), p.today()) if form.get("as_of") else None
    result = await p.admin_api(session).run_payables(as_of)
    count = int(result.get("payable_lines", 0))
    return await _payables_page(
        request,
        p,
        session,
        notice=f"Payables run as of {str(result.get('as_of', ''))[:10]}:"
        f" {count} line{'' if count == 1 else 's'} became payable.",
    )


@router.post("/statements/paid")
async def mark_paid(request: Request, p: PortalDep, session: OperatorDep) -> Response:
    form = await _form(request, session)
    partner_id, month = form.get("partner_id", ""), form.get("month", "")
    if not partner_id or not is_month(month):
        return await _payables_page(
            request, p, session, 422, error="Choose a partner and a month (YYYY-MM)."
        )
    try:
        paid = await p.admin_api(session).mark_paid(partner_id, month)
    except UpstreamError as error:
        if isinstance(error, OperatorRefused):
            raise
        if error.code == "below_minimum_payout":
            return await _payables_page(
                request, p, session, 409, below_minimum=True,
                error=f"{partner_id} {month} was not paid: below the minimum payout."
                f" {error.message}",
            )  # fmt: skip
        return await _payables_page(
            request, p, session, _failure_status(error),
            error=f"Not paid: {error.message}",
        )  # fmt: skip
    count = int(paid.get("paid_lines", 0))
    return await _payables_page(
        request, p, session, paid=paid,
        notice=f"{partner_id} {month}: {count} line{'' if count == 1 else 's'} marked paid.",
    )  # fmt: skip


# --- failed deliveries -----------------------------------------------------------------


@router.get("/deliveries")
async def deliveries(
    request: Request,
    p: PortalDep,
    session: OperatorDep,
    error: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    page = await p.admin_api(session).failed_deliveries(error or None, DELIVERIES_PAGE, offset)
    return _render(
        request,
        "console/deliveries.html",
        session,
        deliveries=page.get("deliveries", []),
        total=int(page.get("total", 0)),
        offset=offset,
        page_size=DELIVERIES_PAGE,
        error_filter=error,
    )
