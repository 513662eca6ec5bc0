"""The portal's deals pages (CONTRACT 6.3): register a deal, the list, one deal's status.

Thin handlers over registration's `/v1/partner/deals` with the signed-in
partner's key; another partner's deal is a 404 page like a missing one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.portal.domain import deals as deal_rules
from services.portal.entrypoints.web import PortalDep, SessionDep, check_csrf, read_form, render
from services.portal.service_layer.ports import NotSignedIn, UpstreamError

router = APIRouter(include_in_schema=False)

FIELDS = (
    "org_name",
    "email",
    "country",
    "customer_id",
    "product",
    "expected_close",
    "estimated_amount",
    "currency",
)
REQUIRED = ("org_name", "email", "country", "product", "expected_close", "estimated_amount")
DEAL_MESSAGES = {
    "deal_conflict": "Another partner's registered deal already protects this customer and"
    " product, so this deal was recorded as not approved.",
    "unknown_product": "We do not sell a product of that name. Check the spelling.",
    "expected_close_in_past": "The expected close date must be today or later.",
}
# An API field (`customer.org_name`) to the form's field.
API_FIELDS = {"estimated_amount_minor": "estimated_amount"}


def _form_field(api_field: str | None) -> str:
    name = (api_field or "").split(".")[-1]
    name = API_FIELDS.get(name, name)
    return name if name in FIELDS else "product"


def _form(
    request: Request, session: SessionDep, status_code: int = 200, **context: Any
) -> Response:
    context.setdefault("values", {"currency": "EUR"})
    context.setdefault("errors", {})
    return render(request, "deal_form.html", session, status_code=status_code, **context)


@router.get("/deals")
async def list_deals(request: Request, p: PortalDep, session: SessionDep) -> Response:
    found = await p.api_for(session).deals()
    found.sort(key=lambda d: str(d.get("submitted_at", "")), reverse=True)
    return render(request, "deals.html", session, deals=found, labels=deal_rules.STATUS_LABELS)


@router.get("/deals/new")
async def deal_form(request: Request, session: SessionDep) -> Response:
    return _form(request, session)


@router.post("/deals")
async def submit_deal(request: Request, p: PortalDep, session: SessionDep) -> Response:
    form = await read_form(request)
    check_csrf(session, form)
    values = {k: form.get(k, "") for k in FIELDS}
    values["currency"] = values["currency"].upper() or "EUR"
    values["country"] = values["country"].upper()
    errors: dict[str, str] = {}
    for name in REQUIRED:
        if not values[name]:
            errors[name] = "Required."
    try:
        close = (
            dt.date.fromisoformat(values["expected_close"]) if values["expected_close"] else None
        )
    except ValueError:
        close = None
        errors["expected_close"] = "Enter a date as YYYY-MM-DD."
    if close is not None and close < p.today():
        errors["expected_close"] = DEAL_MESSAGES["expected_close_in_past"]
    amount = deal_rules.amount_minor(values["estimated_amount"], values["currency"])
    if values["estimated_amount"] and amount is None:
        errors["estimated_amount"] = (
            "Enter an amount such as 12500.00 in the currency's units (no more decimals"
            " than it has)."
        )
    if errors:
        return _form(request, session, status_code=422, values=values, errors=errors)
    customer = {k: values[k] for k in ("org_name", "email", "country")}
    if values["customer_id"]:
        customer["customer_id"] = values["customer_id"]
    body = {
        "customer": customer,
        "product": values["product"],
        "expected_close": values["expected_close"],
        "estimated_amount_minor": amount,
        "currency": values["currency"],
    }
    try:
        created = await p.api_for(session).submit_deal(body)
    except UpstreamError as error:
        if isinstance(error, NotSignedIn):
            raise
        if error.code == "deal_conflict":
            return _form(
                request,
                session,
                status_code=409,
                values=values,
                errors={},
                conflict=DEAL_MESSAGES["deal_conflict"],
            )
        field = _form_field(error.field)
        errors[field] = DEAL_MESSAGES.get(error.code, error.message)
        return _form(
            request,
            session,
            status_code=error.status if error.status in (404, 409, 422) else 400,
            values=values,
            errors=errors,
        )
    return RedirectResponse(f"/deals/{created['deal_id']}?submitted=1", status_code=303)


@router.get("/deals/{deal_id}")
async def show_deal(request: Request, p: PortalDep, session: SessionDep, deal_id: str) -> Response:
    deal = await p.api_for(session).deal(deal_id[:100])
    if deal is None:
        return render(
            request,
            "error.html",
            session,
            status_code=404,
            title="Deal not found",
            message="There is no deal of yours with this id.",
        )
    return render(
        request,
        "deal.html",
        session,
        deal=deal,
        labels=deal_rules.STATUS_LABELS,
        submitted=request.query_params.get("submitted") == "1",
        reason_text=(
            "another partner's registered deal already protects this customer and product"
            if deal.get("reason") == "deal_conflict"
            else deal.get("reason")
        ),
    )
