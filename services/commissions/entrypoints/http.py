"""The commissions API's routers: thin adapters from HTTP to the use cases.

Partner routes show the caller's own lines only (another partner's data is
simply not found); admin routes take the operator token.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from chassis import bounds, spreadsheets
from chassis.auth import (
    AdminTokenDeclared,
    PartnerKeyDeclared,
    PartnerKeyResolver,
    PartnerPrincipal,
    require_admin,
    require_partner,
)
from chassis.errors import ApiError
from chassis.partner_roles import role_requirement
from services.commissions.domain.periods import Month, end_of_day, start_of_day
from services.commissions.domain.rates import RateTableError
from services.commissions.domain.statements import CSV_COLUMNS, csv_row, totals
from services.commissions.entrypoints.schemas import (
    AdjustmentIn,
    CommissionLineOut,
    CommissionList,
    DecisionList,
    PaidOut,
    PayablesRunOut,
    RateOverrideList,
    RateOverridesIn,
    RateTableIn,
    RateTableList,
    RateTableOut,
    StatementOut,
    decision_out,
    line_out,
    rate_override_out,
    rate_table_out,
    totals_out,
)
from services.commissions.service_layer.adjustments import (
    AdjustmentError,
    AdjustmentRequest,
    Adjustments,
    IdempotencyConflictError,
)
from services.commissions.service_layer.lifecycle import LedgerLifecycle
from services.commissions.service_layer.ports import Clock, HorizonUnavailableError
from services.commissions.service_layer.queries import LedgerQueries
from services.commissions.service_layer.rate_tables import (
    OverrideEntry,
    RateTableConflictError,
    RateTables,
)
from shared.events import CommissionStatus, format_timestamp

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class ApiServices:
    """What the routers need, built once per app by bootstrap."""

    queries: LedgerQueries
    lifecycle: LedgerLifecycle
    rate_tables: RateTables
    adjustments: Adjustments
    resolve_partner: PartnerKeyResolver
    admin_token: str
    clock: Clock


def services(request: Request) -> ApiServices:
    found: ApiServices | None = getattr(request.app.state, "commissions", None)
    if found is None:
        raise ApiError(503, "starting", "the service is starting")
    return found


Services = Annotated[ApiServices, Depends(services)]


async def admin(request: Request, svc: Services, _: AdminTokenDeclared) -> None:
    await require_admin(request, svc.admin_token, svc.resolve_partner)


async def partner(request: Request, svc: Services, _: PartnerKeyDeclared) -> PartnerPrincipal:
    return await require_partner(request, svc.admin_token, svc.resolve_partner)


require_partner_role = role_requirement(partner)
"""CONTRACT 6.7: `caller: Annotated[PartnerPrincipal, require_partner_role("finance")]`."""

# Commissions and statements are finance's (and admin's); sales keys get 403.
Partner = Annotated[PartnerPrincipal, require_partner_role("finance")]


def parse_instant(value: str, field: str, *, end: bool) -> dt.datetime:
    """`YYYY-MM-DD` (the start, or with `end` the end, of that UTC day) or an RFC 3339 instant."""
    parsed: dt.datetime | None
    try:
        if _DATE.fullmatch(value):
            day = dt.date.fromisoformat(value)
            parsed = end_of_day(day) if end else start_of_day(day)
        else:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(
            422,
            "validation_error",
            f"{field}: expected YYYY-MM-DD or an RFC 3339 UTC instant",
            field=field,
        )
    if not bounds.in_bounds(parsed):
        # CONTRACT 6.9; `to=9999-12-31` plus its last millisecond overflowed (a 500).
        raise ApiError(
            422,
            "validation_error",
            f"{field}: must lie in {bounds.MIN_DATE} .. {bounds.MAX_DATE} (UTC)",
            field=field,
        )
    return parsed.astimezone(dt.UTC)


def _range(
    start_text: str | None, end_text: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = parse_instant(start_text, "from", end=False) if start_text else None
    # `to` is inclusive: the end of that day, or that very instant (millisecond precision).
    last = parse_instant(end_text, "to", end=True) if end_text else None
    end = last + dt.timedelta(milliseconds=1) if last else None
    if start and end and end <= start:
        raise ApiError(422, "validation_error", "to: must not be before from", field="to")
    return start, end


partner_router = APIRouter(prefix="/v1/partner", tags=["partner"])
admin_router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin)])


@partner_router.get("/commissions", response_model=CommissionList, summary="the caller's lines")
async def partner_commissions(
    svc: Services,
    caller: Partner,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="YYYY-MM-DD or instant",
            json_schema_extra=bounds.DATE_OR_INSTANT_SCHEMA,
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            description="YYYY-MM-DD or instant, inclusive",
            json_schema_extra=bounds.DATE_OR_INSTANT_SCHEMA,
        ),
    ] = None,
    status: CommissionStatus | None = None,
) -> CommissionList:
    lower, upper = _range(start, end)
    lines = await svc.queries.partner_lines(
        caller.partner_id, start=lower, end=upper, status=status
    )
    return CommissionList(lines=[line_out(line) for line in lines])


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as error:
        raise ApiError(422, "validation_error", f"month: {error}", field="month") from None


@partner_router.get(
    "/statements/{month}",
    response_model=StatementOut,
    summary="the month's lines and totals; Accept: text/csv for CSV",
    responses={200: {"content": {"text/csv": {}}}},
)
async def partner_statement(
    request: Request,
    svc: Services,
    caller: Partner,
    month: Annotated[str, Path(pattern=MONTH_PATTERN, description="YYYY-MM")],
) -> Response | StatementOut:
    statement = await svc.queries.statement(caller.partner_id, _month(month))
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            spreadsheets.to_csv(
                CSV_COLUMNS, [csv_row(line, statement.month) for line in statement.lines]
            ),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="commissions-{month}.csv"'},
        )
    return StatementOut(
        partner_id=statement.partner_id,
        month=str(statement.month),
        lines=[line_out(line, statement.month) for line in statement.lines],
        totals=totals_out(statement.totals),
    )


@admin_router.get(
    "/commissions", response_model=CommissionList, summary="lines by partner or order"
)
async def admin_commissions(
    svc: Services,
    partner_id: str | None = None,
    order_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> CommissionList:
    lines = await svc.queries.admin_lines(partner_id=partner_id, order_id=order_id, limit=limit)
    return CommissionList(lines=[line_out(line) for line in lines])


@admin_router.get("/decisions", response_model=DecisionList, summary="one decision per order line")
async def admin_decisions(
    svc: Services,
    order_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> DecisionList:
    views = await svc.queries.decisions(order_id=order_id, limit=limit)
    return DecisionList(decisions=[decision_out(view) for view in views])


@admin_router.get("/rate-tables", response_model=RateTableList, summary="every version")
async def list_rate_tables(svc: Services) -> RateTableList:
    book = await svc.rate_tables.book()
    return RateTableList(
        versions=[rate_table_out(t) for t in sorted(book.tables, key=lambda t: t.version)],
        in_force=book.in_force(svc.clock()).version,
    )


@admin_router.put(
    "/rate-tables", response_model=RateTableOut, status_code=201, summary="add a version"
)
async def add_rate_table(svc: Services, body: RateTableIn) -> RateTableOut:
    try:
        table = await svc.rate_tables.add(
            effective_from=body.effective_from,
            rates={
                tier: {"new": r.new, "renewal": r.renewal, "upgrade": r.upgrade}
                for tier, r in body.rates.items()
            },
            distributor_override_bps=body.distributor_override_bps,
        )
    except RateTableError as error:
        raise ApiError(
            422, "validation_error", f"{error.field}: {error}", field=error.field
        ) from None
    except RateTableConflictError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return rate_table_out(table)


@admin_router.get(
    "/rate-overrides", response_model=RateOverrideList, summary="every override entry"
)
async def list_rate_overrides(svc: Services) -> RateOverrideList:
    book = await svc.rate_tables.book()
    return RateOverrideList(entries=[rate_override_out(entry) for entry in book.overrides])


@admin_router.put(
    "/rate-overrides",
    response_model=RateOverrideList,
    status_code=201,
    summary="add override entries (a new version; never edits one)",
)
async def add_rate_overrides(svc: Services, body: RateOverridesIn) -> RateOverrideList:
    try:
        added = await svc.rate_tables.add_overrides(
            [
                OverrideEntry(
                    partner_id=entry.partner_id,
                    product=entry.product,
                    kind=entry.kind,
                    rate_bps=entry.rate_bps,
                    effective_from=entry.effective_from,
                )
                for entry in body.entries
            ]
        )
    except RateTableError as error:
        raise ApiError(
            422, "validation_error", f"{error.field}: {error}", field=error.field
        ) from None
    except RateTableConflictError as error:
        raise ApiError(409, "conflict", str(error)) from None
    return RateOverrideList(entries=[rate_override_out(entry) for entry in added])


@admin_router.post(
    "/adjustments",
    response_model=CommissionLineOut,
    status_code=201,
    summary="a manual ledger line, payable at once; idempotent per Idempotency-Key",
)
async def make_adjustment(
    svc: Services,
    body: AdjustmentIn,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="names the request: the same key and body answer the first result",
        ),
    ],
) -> CommissionLineOut:
    try:
        line = await svc.adjustments.make(
            idempotency_key,
            AdjustmentRequest(
                partner_id=body.partner_id,
                amount_minor=body.amount_minor,
                currency=body.currency,
                reason=body.reason,
                reference=body.reference,
            ),
        )
    except AdjustmentError as error:
        raise ApiError(422, "validation_error", str(error), field=error.field) from None
    except IdempotencyConflictError as error:
        raise ApiError(409, "idempotency_key_reused", str(error)) from None
    return line_out(line)


@admin_router.post("/payables/run", response_model=PayablesRunOut, summary="release held lines")
async def run_payables(
    svc: Services,
    as_of: Annotated[
        str | None,
        Query(
            description="YYYY-MM-DD (end of that day) or instant",
            json_schema_extra=bounds.DATE_OR_INSTANT_SCHEMA,
        ),
    ] = None,
) -> PayablesRunOut:
    cutoff = parse_instant(as_of, "as_of", end=True) if as_of else svc.clock()
    try:
        changed = await svc.lifecycle.run_payables(cutoff)
    except HorizonUnavailableError as error:
        raise ApiError(503, "broker_unavailable", str(error)) from None
    return PayablesRunOut(as_of=format_timestamp(cutoff), payable_lines=len(changed))


@admin_router.post(
    "/statements/{partner_id}/{month}/paid", response_model=PaidOut, summary="mark a statement paid"
)
async def mark_paid(
    svc: Services,
    partner_id: str,
    month: Annotated[str, Path(pattern=MONTH_PATTERN, description="YYYY-MM")],
) -> PaidOut:
    paid = await svc.lifecycle.mark_paid(partner_id, _month(month))
    if paid.held:
        held = ", ".join(f"{currency} {total}" for currency, total in paid.held.items())
        others = f"; {len(paid.lines)} lines in other currencies were paid" if paid.lines else ""
        raise ApiError(
            409,
            "below_minimum_payout",
            f"payable total below MIN_PAYOUT_MINOR ({held} minor units): those lines stay"
            f" payable and carry into the next statement{others}",
        )
    return PaidOut(
        partner_id=partner_id,
        month=month,
        paid_lines=len(paid.lines),
        totals=totals_out(totals(paid.lines)),
    )
