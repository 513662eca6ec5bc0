"""The portal's pages: thin handlers that call the partner APIs as the signed-in partner."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from chassis import bounds
from services.portal.bootstrap import Portal
from services.portal.domain import charts, presentation, roles
from services.portal.domain.sessions import Branding, Session
from services.portal.entrypoints.web import (
    PortalDep,
    SessionDep,
    check_csrf,
    current_session,
    read_form,
    render,
    render_sign_in,
)
from services.portal.service_layer.ports import NotSignedIn, UpstreamError

router = APIRouter(include_in_schema=False)

DELIVERIES_PAGE = 50
CUSTOMER_FIELDS = ("org_name", "contact_name", "email", "country")
REGISTER_MESSAGES = {
    "attributed_elsewhere": "Another partner is already partner of record of this licence.",
    "unknown_license_key": "There is no licence with that key. Check it and try again.",
}


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def branding_of(profile: dict[str, Any] | None) -> Branding:
    if not profile:
        return Branding()
    brand = profile.get("branding") or {}
    logo = brand.get("logo_url")
    return Branding(
        display_name=profile.get("display_name"),
        color=presentation.brand_color(brand.get("color")),
        logo_url=logo if isinstance(logo, str) and logo.startswith("https://") else None,
        website=brand.get("website"),
    )


# --- sign-in and sign-out ------------------------------------------------------------


@router.get("/")
async def home(request: Request, p: PortalDep) -> Response:
    return _redirect("/overview" if current_session(request, p) else "/sign-in")


def _sign_in_page(
    request: Request, p: PortalDep, *, error: str | None = None, status_code: int = 200
) -> Response:
    return render_sign_in(request, "sign_in.html", status_code, error=error)


@router.get("/sign-in")
async def sign_in_form(request: Request, p: PortalDep) -> Response:
    if current_session(request, p) is not None:
        return _redirect("/overview")
    return _sign_in_page(request, p)


@router.post("/sign-in")
async def sign_in(request: Request, p: PortalDep) -> Response:
    form = await read_form(request)
    nonce = request.cookies.get(p.sign_in_cookie_name)
    if not p.sign_in_csrf.valid(nonce, form.get("csrf_token")):
        return _sign_in_page(
            request, p, error="The form expired. Please try again.", status_code=403
        )
    api_key = form.get("api_key", "")
    if not api_key or len(api_key) > 500:
        return _sign_in_page(request, p, error="Enter your API key.", status_code=422)
    api = p.partner_api(api_key)
    try:
        role = await api.check_key()
        profile = await api.me()
    except NotSignedIn:
        return _sign_in_page(request, p, error="That API key was not accepted.", status_code=401)
    # A fresh session id on every sign-in (no fixation); the old one, if any, ends.
    p.sessions.revoke(current_session(request, p))
    session = p.sessions.create(api_key, branding_of(profile), role)
    response = _redirect("/overview")
    p.set_session_cookie(response, session)
    response.delete_cookie(p.sign_in_cookie_name, path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, p: PortalDep, session: SessionDep) -> Response:
    check_csrf(session, await read_form(request))
    p.sessions.revoke(session)
    response = _redirect("/sign-in")
    p.delete_session_cookie(response)
    return response


@router.get("/brand.css")
async def brand_css(request: Request, p: PortalDep) -> Response:
    """The partner's colour as CSS variables (a file, so the CSP needs no inline styles)."""
    session = current_session(request, p)
    color = presentation.brand_color(session.branding.color if session else None)
    css = f":root {{ --brand: {color}; --on-brand: {presentation.text_on(color)}; }}\n"
    return Response(css, media_type="text/css")


# --- pages ---------------------------------------------------------------------------


@router.get("/overview")
async def overview(request: Request, p: PortalDep, session: SessionDep) -> Response:
    api = p.api_for(session)
    today = p.today()
    horizon = today + dt.timedelta(days=presentation.RENEWAL_HORIZON_DAYS + 1)
    month = presentation.month_of(today)
    # Each part only for a role that may see it (CONTRACT 6.7): the API would refuse.
    renewals = (
        presentation.up_for_renewal(await api.entitlements(term_end_before=horizon), today)
        if roles.sees_renewals(session.role)
        else None
    )
    statement = await api.statement(month) if roles.sees_commissions(session.role) else {}
    # Charts (domain/charts.py): renewals per week from the same entitlements, and 12
    # months of commissions from the partner's own ledger lines.
    renewal_chart = charts.renewals_chart(renewals, today) if renewals is not None else None
    commission_charts: list[tuple[str, str]] = []
    if roles.sees_commissions(session.role):
        first = dt.date.fromisoformat(charts.months_back(today, 12)[0] + "-01")
        commission_charts = charts.commissions_charts(await api.commissions(first, today), today)
    return render(
        request,
        "overview.html",
        session,
        renewals=renewals,
        days_until=presentation.days_until,
        month=month,
        totals=statement.get("totals", []),
        line_count=len(statement.get("lines", [])),
        horizon_days=presentation.RENEWAL_HORIZON_DAYS,
        renewal_chart=renewal_chart,
        commission_charts=commission_charts,
    )


@router.get("/entitlements")
async def entitlements(
    request: Request,
    p: PortalDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    term_end_before: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    error = None
    before: dt.date | None = None
    if term_end_before:
        try:
            before = dt.date.fromisoformat(term_end_before)
        except ValueError:
            error = "Term end must be a date (YYYY-MM-DD)."
        if before is not None and not bounds.MIN_DATE <= before <= bounds.MAX_DATE:
            # The API would refuse it (CONTRACT 6.9): say so here instead.
            before, error = None, f"Term end must lie in {bounds.MIN_DATE} .. {bounds.MAX_DATE}."
    found = await p.api_for(session).entitlements(term_end_before=before)
    shown = [e for e in found if presentation.matches(e, q)]
    return render(
        request,
        "entitlements.html",
        session,
        entitlements=shown,
        total=len(found),
        q=q,
        term_end_before=term_end_before,
        error=error,
    )


@router.get("/register")
async def register_form(request: Request, p: PortalDep, session: SessionDep) -> Response:
    return render(request, "register.html", session, values={}, errors={})


@router.post("/register")
async def register(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    values = {k: form.get(k, "") for k in ("license_key", "customer_id", *CUSTOMER_FIELDS)}
    errors: dict[str, str] = {}
    if not values["license_key"]:
        errors["license_key"] = "Enter the licence key."
    customer: dict[str, str] | None = None
    if any(values[k] for k in (*CUSTOMER_FIELDS, "customer_id")):
        for name in CUSTOMER_FIELDS:
            if not values[name]:
                errors[name] = "Required when you give customer details."
        customer = {k: values[k] for k in CUSTOMER_FIELDS}
        if values["customer_id"]:
            customer["customer_id"] = values["customer_id"]
    if errors:
        return render(
            request, "register.html", session, status_code=422, values=values, errors=errors
        )
    try:
        first_time, entitlement = await p.api_for(session).register(values["license_key"], customer)
    except UpstreamError as error:
        if isinstance(error, NotSignedIn) or error.status == 403:
            raise
        field = (error.field or "license_key").split(".")[-1]
        field = field if field in values else "license_key"
        errors[field] = REGISTER_MESSAGES.get(error.code, error.message)
        return render(
            request,
            "register.html",
            session,
            status_code=error.status if error.status in (404, 409, 422) else 400,
            values=values,
            errors=errors,
        )
    return render(
        request,
        "register.html",
        session,
        status_code=201 if first_time else 200,
        values={},
        errors={},
        registered=entitlement,
        first_time=first_time,
    )


@router.get("/commissions")
async def commissions(
    request: Request,
    p: PortalDep,
    session: SessionDep,
    month: Annotated[str, Query(max_length=7)] = "",
    status: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    today = p.today()
    month = month if presentation.is_month(month) else presentation.month_of(today)
    status = status if status in presentation.COMMISSION_STATUSES else ""
    api = p.api_for(session)
    statement = await api.statement(month)
    lines = statement.get("lines", [])
    if status:
        first, last = presentation.month_bounds(month)
        lines = await api.commissions(first, last, status)
    months = presentation.recent_months(today, 24)
    if month not in months:
        months.insert(0, month)
    return render(
        request,
        "commissions.html",
        session,
        month=month,
        months=months,
        status=status,
        statuses=presentation.COMMISSION_STATUSES,
        lines=lines,
        totals=statement.get("totals", []),
    )


@router.get("/commissions/{month}.csv")
async def statement_csv(month: str, p: PortalDep, session: SessionDep) -> Response:
    if not presentation.is_month(month):
        return Response("month must be YYYY-MM\n", status_code=404, media_type="text/plain")
    body = await p.api_for(session).statement_csv(month)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="commissions-{month}.csv"'},
    )


# CONTRACT 6.1: what each renewal mode means for the partner's customers, as the
# settings page explains it.
RENEWAL_MODES: tuple[tuple[str, str, str], ...] = (
    (
        "partner_first",
        "Partner first (recommended)",
        "We send your customers no reminder 90 days before the end. 30 and 7 days before,"
        " their reminder names you (name, website, phone) as the one to renew with, and"
        " also offers renewing directly. You hear of each renewal 90 days before.",
    ),
    (
        "partner_only",
        "Partner only",
        "We send your customers no renewal reminder at all (security advisories still go)."
        " You hear of each renewal 90 days before, and again 30 days before.",
    ),
    (
        "vendor_direct",
        "Vendor direct",
        "We remind your customers 90, 30 and 7 days before the end; the reminder names you"
        " only if you co-brand customer messages. You hear of each renewal 90 days before.",
    ),
)


async def _settings_page(
    request: Request,
    p: Portal,
    session: Session,
    status_code: int = 200,
    *,
    saved: bool = False,
    error: str | None = None,
) -> Response:
    profile = await p.api_for(session).me() or {}
    return render(
        request,
        "settings.html",
        session,
        status_code,
        modes=RENEWAL_MODES,
        renewal_mode=profile.get("renewal_mode"),
        saved=saved,
        error=error,
    )


@router.get("/settings")
async def settings_page(request: Request, p: PortalDep, session: SessionDep) -> Response:
    return await _settings_page(request, p, session)


@router.post("/settings/renewal-mode")
async def set_renewal_mode(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    mode = form.get("renewal_mode", "")
    if mode not in {m for m, _, _ in RENEWAL_MODES}:
        return await _settings_page(request, p, session, 422, error="Choose one of the modes.")
    try:
        await p.api_for(session).set_renewal_mode(mode)
    except UpstreamError as error:
        if isinstance(error, NotSignedIn):
            raise
        return await _settings_page(request, p, session, 422, error=error.message)
    return await _settings_page(request, p, session, saved=True)


@router.get("/webhook")
async def webhook_form(request: Request, p: PortalDep, session: SessionDep) -> Response:
    session.webhook_url = await p.api_for(session).webhook_url() or session.webhook_url
    return render(
        request, "webhook.html", session, url=session.webhook_url or "", error=None, secret=None
    )


@router.post("/webhook/test")
async def send_test_event(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    try:
        result = await p.api_for(session).test_webhook()
    except UpstreamError as error:
        if isinstance(error, NotSignedIn) or error.status == 403:
            raise
        result = {"delivered": False, "error": error.code}
    return render(
        request,
        "webhook.html",
        session,
        url=session.webhook_url or "",
        error=None,
        secret=None,
        test_result=result,
    )


@router.post("/webhook")
async def set_webhook(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    url = form.get("url", "")
    if not url:
        return render(
            request, "webhook.html", session, 422, url=url, error="Enter a URL.", secret=None
        )
    try:
        answer = await p.api_for(session).set_webhook(url)
    except UpstreamError as error:
        if isinstance(error, NotSignedIn) or error.status == 403:
            raise
        return render(
            request, "webhook.html", session, 422, url=url, error=error.message, secret=None
        )
    session.webhook_url = str(answer.get("url", url))
    # The secret is in this one response only: not stored, and the page is never cached.
    return render(
        request,
        "webhook.html",
        session,
        url=session.webhook_url,
        error=None,
        secret=answer.get("secret"),
        scheme=answer.get("signature_scheme"),
    )


@router.get("/deliveries")
async def deliveries(
    request: Request,
    p: PortalDep,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    page = await p.api_for(session).deliveries(DELIVERIES_PAGE, offset)
    total = int(page.get("total", 0))
    return render(
        request,
        "deliveries.html",
        session,
        deliveries=page.get("deliveries", []),
        total=total,
        offset=offset,
        page_size=DELIVERIES_PAGE,
    )
