"""Earned tiers (CONTRACT 6.4): tier rules, certifications, evaluation and its preview, a
partner's own tier and what the next one needs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from chassis.auth import PartnerPrincipal
from chassis.bounds import AmountMinor, BoundedDate, BoundedInstant
from services.registration.domain.tiers import (
    MAX_CERTIFIED,
    MAX_GRACE_DAYS,
    Revenue,
    Threshold,
    TierRules,
)
from services.registration.entrypoints.dependencies import (
    AdminDep,
    Services,
    ServicesDep,
    require_partner_role,
)
from services.registration.entrypoints.validation import Name
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.tiers import (
    Certification,
    Evaluation,
    PartnerStanding,
    TierService,
)
from shared.events import PartnerTier, format_timestamp

admin = APIRouter(prefix="/v1/admin", tags=["admin: tiers"])
partner = APIRouter(prefix="/v1/partner", tags=["partner"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ThresholdIn(_Strict):
    min_revenue_minor: AmountMinor
    min_certified: Annotated[StrictInt, Field(ge=0, le=MAX_CERTIFIED)]


class TierRulesIn(_Strict):
    """A new version; a PUT adds one and never edits one."""

    effective_from: BoundedInstant
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    fx: dict[
        Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")],
        Annotated[StrictStr, Field(max_length=30, description='decimal string, e.g. "0.92"')],
    ] = Field(
        default_factory=dict,
        max_length=200,
        description="one unit of each currency in the programme currency",
    )
    tiers: dict[PartnerTier, ThresholdIn]
    demotion_grace_days: Annotated[StrictInt, Field(ge=0, le=MAX_GRACE_DAYS)] = 90


class ThresholdOut(BaseModel):
    min_revenue_minor: int
    min_certified: int


class TierRulesOut(BaseModel):
    version: int
    effective_from: str
    currency: str
    fx: dict[str, str]
    tiers: dict[str, ThresholdOut]
    demotion_grace_days: int

    @classmethod
    def of(cls, r: TierRules) -> TierRulesOut:
        return cls(
            version=r.version,
            effective_from=format_timestamp(r.effective_from),
            currency=r.currency,
            fx={code: str(rate) for code, rate in r.fx.items()},
            tiers={
                tier: ThresholdOut(
                    min_revenue_minor=t.min_revenue_minor, min_certified=t.min_certified
                )
                for tier, t in r.tiers.items()
            },
            demotion_grace_days=r.demotion_grace_days,
        )


class TierRulesList(BaseModel):
    versions: list[TierRulesOut]
    in_force: int | None = Field(description="the version in force now, null when none")


class CertificationIn(_Strict):
    name: Name
    holder: Name = Field(description="the certified person (personal data: never logged)")
    expires_on: BoundedDate


class CertificationOut(BaseModel):
    certification_id: str
    partner_id: str
    name: str
    holder: str
    expires_on: dt.date

    @classmethod
    def of(cls, c: Certification) -> CertificationOut:
        return cls(
            certification_id=c.certification_id,
            partner_id=c.partner_id,
            name=c.name,
            holder=c.holder,
            expires_on=c.expires_on,
        )


class RevenueOut(BaseModel):
    amount_minor: int
    currency: str
    by_currency: dict[str, int] = Field(description="net minor units per currency sold in")
    unconverted: list[str] = Field(description="currencies with no fx rate: left out")


class GapOut(BaseModel):
    tier: PartnerTier
    min_revenue_minor: int
    min_certified: int
    revenue_minor_missing: int
    certified_missing: int


class PartnerMoveOut(BaseModel):
    partner_id: str
    tier: PartnerTier
    qualifies_for: PartnerTier
    move: Literal["promotion", "demotion", "pending_demotion", "none"]
    new_tier: PartnerTier | None
    below_since: dt.date | None
    revenue: RevenueOut
    certified: int


class EvaluationOut(BaseModel):
    as_of: dt.date
    rules_version: int
    applied: bool = Field(description="false for a preview: nothing changed")
    evaluated: int
    promotions: int
    demotions: int
    pending_demotions: int
    changes: list[PartnerMoveOut]


class PartnerTierOut(BaseModel):
    as_of: dt.date
    tier: PartnerTier
    qualifies_for: PartnerTier
    revenue: RevenueOut
    certified: int
    certifications: list[CertificationOut]
    next_tier: GapOut | None = Field(description="what the tier above qualifies_for needs")
    below_since: dt.date | None = Field(
        description="first evaluation that found the partner below its tier, if pending"
    )
    demotion_grace_days: int
    rules_version: int


def _revenue(revenue: Revenue) -> RevenueOut:
    return RevenueOut(
        amount_minor=revenue.amount_minor,
        currency=revenue.currency,
        by_currency=dict(revenue.by_currency),
        unconverted=list(revenue.unconverted),
    )


def _move(s: PartnerStanding) -> PartnerMoveOut:
    return PartnerMoveOut(
        partner_id=s.partner_id,
        tier=s.tier,
        qualifies_for=s.qualifies_for,
        move=s.move.kind,
        new_tier=s.move.new_tier,
        below_since=s.move.below_since,
        revenue=_revenue(s.revenue),
        certified=s.certified,
    )


def _evaluation(e: Evaluation) -> EvaluationOut:
    return EvaluationOut(
        as_of=e.as_of,
        rules_version=e.rules_version,
        applied=e.applied,
        evaluated=e.evaluated,
        promotions=e.promotions,
        demotions=e.demotions,
        pending_demotions=e.pending_demotions,
        changes=[_move(s) for s in e.changes],
    )


def _tiers(svc: Services) -> TierService:
    if svc.tiers is None:  # pragma: no cover - bootstrap always wires it
        raise UseCaseError("unavailable", "tiers_unavailable", "tier evaluation is not set up")
    return svc.tiers


AsOf = Annotated[
    BoundedDate | None, Query(description="YYYY-MM-DD (end of that day, UTC); default today")
]


@admin.get("/tier-rules", response_model=TierRulesList, summary="every version of the tier rules")
async def list_tier_rules(_: AdminDep, svc: ServicesDep) -> TierRulesList:
    book = await _tiers(svc).book()
    in_force = book.in_force(svc.clock())
    return TierRulesList(
        versions=[TierRulesOut.of(r) for r in sorted(book.versions, key=lambda r: r.version)],
        in_force=in_force.version if in_force else None,
    )


@admin.put("/tier-rules", status_code=201, response_model=TierRulesOut, summary="add a version")
async def add_tier_rules(body: TierRulesIn, _: AdminDep, svc: ServicesDep) -> TierRulesOut:
    """Thresholds must not fall as tiers rise; fx rates are decimal strings."""
    rules = await _tiers(svc).add_rules(
        effective_from=body.effective_from,
        currency=body.currency,
        fx=body.fx,
        tiers={
            tier: Threshold(t.min_revenue_minor, t.min_certified) for tier, t in body.tiers.items()
        },
        demotion_grace_days=body.demotion_grace_days,
    )
    return TierRulesOut.of(rules)


@admin.post(
    "/partners/{partner_id}/certifications",
    status_code=201,
    response_model=CertificationOut,
    summary="record a certified person of a partner",
)
async def add_certification(
    partner_id: str, body: CertificationIn, _: AdminDep, svc: ServicesDep, response: Response
) -> CertificationOut:
    """The same name, holder and expiry again is the same certification (`200`)."""
    certification, new = await _tiers(svc).certify(
        partner_id, name=body.name, holder=body.holder, expires_on=body.expires_on
    )
    if not new:
        response.status_code = 200
    return CertificationOut.of(certification)


@admin.post(
    "/tiers/evaluate", response_model=EvaluationOut, summary="evaluate earned tiers (idempotent)"
)
async def evaluate(_: AdminDep, svc: ServicesDep, as_of: AsOf = None) -> EvaluationOut:
    """Promotions at `as_of`; demotions after the grace period. Lists who moved."""
    day = as_of or svc.clock().astimezone(dt.UTC).date()
    return _evaluation(await _tiers(svc).evaluate(day, apply=True))


@admin.get("/tiers/preview", response_model=EvaluationOut, summary="who an evaluation would move")
async def preview(_: AdminDep, svc: ServicesDep, as_of: AsOf = None) -> EvaluationOut:
    """The same verdicts as `POST /v1/admin/tiers/evaluate`, changing nothing."""
    day = as_of or svc.clock().astimezone(dt.UTC).date()
    return _evaluation(await _tiers(svc).evaluate(day, apply=False))


# Every key of the partner may read its tier (CONTRACT 6.7: a programme fact, not sales
# or finance work).
AnyKey = Annotated[PartnerPrincipal, require_partner_role("sales", "finance")]


@partner.get("/tier", response_model=PartnerTierOut, summary="the caller's tier and the next")
async def my_tier(caller: AnyKey, svc: ServicesDep, as_of: AsOf = None) -> PartnerTierOut:
    view = await _tiers(svc).partner_view(caller.partner_id, as_of)
    gap = view.next_tier
    return PartnerTierOut(
        as_of=view.as_of,
        tier=view.tier,
        qualifies_for=view.qualifies_for,
        revenue=_revenue(view.revenue),
        certified=view.certified,
        certifications=[CertificationOut.of(c) for c in view.certifications],
        next_tier=GapOut(
            tier=gap.tier,
            min_revenue_minor=gap.min_revenue_minor,
            min_certified=gap.min_certified,
            revenue_minor_missing=gap.revenue_minor,
            certified_missing=gap.certified,
        )
        if gap
        else None,
        below_since=view.below_since,
        demotion_grace_days=view.demotion_grace_days,
        rules_version=view.rules_version,
    )
