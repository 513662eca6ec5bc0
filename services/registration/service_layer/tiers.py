"""Earned tiers (CONTRACT 6.4): tier rules, certifications, revenue, evaluation, a partner's view.

Revenue lines come from the orders this service applies (the partner of record
of each line as `entitlement.order_applied` names it) and the refunds it reads
from checkout; they are kept per order line, so a refund that arrives before
its order still lands on the line (both writes are idempotent upserts).
Evaluation reads them as per-partner, per-currency integer sums, so its memory
grows with the number of partners, never with the history.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.registration.domain.partners import Partner, PartnerTier
from services.registration.domain.tiers import (
    RANK,
    Gap,
    Move,
    Revenue,
    Standing,
    Threshold,
    TierRuleBook,
    TierRules,
    TierRulesError,
    convert,
    decide_tier,
    end_of_day,
    next_tier_gap,
    parse_fx,
    qualifying_tier,
    window_start,
)
from services.registration.service_layer.errors import UseCaseError, conflict, invalid, not_found
from services.registration.service_layer.events import partner_event
from services.registration.service_layer.partners import retrying
from services.registration.service_layer.unit_of_work import (
    Clock,
    StoredRecord,
    UnitOfWorkFactory,
)
from shared.ids import derive_id
from shared.topics import REGISTRATION_ENTITLEMENTS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Certification:
    """A certified person of a partner; `holder` is personal data: shown, never logged."""

    certification_id: str
    partner_id: str
    name: str
    holder: str
    expires_on: dt.date
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RevenueLine:
    """One order line a partner was partner of record of, as registration applied it."""

    line_ref: str  # "<order_id>/<line_id>"
    partner_id: str
    currency: str
    occurred_at: dt.datetime
    net_amount_minor: int


@dataclass(frozen=True, slots=True)
class RefundEntry:
    refund_id: str
    line_ref: str
    currency: str
    amount_minor: int
    occurred_at: dt.datetime


class TierStore(Protocol):
    """The port of everything tier evaluation keeps (adapters/tiers.py, and a fake)."""

    async def rule_versions(self) -> list[TierRules]: ...

    async def add_rules(self, rules: TierRules) -> bool:
        """Insert a version; False if that version number exists already."""
        ...

    async def add_certification(self, certification: Certification) -> bool:
        """Upsert by id; True when it was new."""
        ...

    async def certifications(self, partner_id: str) -> list[Certification]: ...

    async def certified_counts(self, on: dt.date) -> dict[str, int]:
        """Per partner, the certifications unexpired on `on` (expires_on >= on)."""
        ...

    async def record_lines(self, lines: Sequence[RevenueLine]) -> None: ...

    async def record_refunds(self, refunds: Sequence[RefundEntry]) -> None: ...

    async def revenue(
        self, after: dt.datetime, until: dt.datetime, partner_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """partner -> currency -> net minor units of the lines in (after, until],
        less their refunds issued by `until`."""
        ...

    async def partners(self) -> list[Partner]: ...

    async def standings(self, partner_id: str | None = None) -> dict[str, Standing]:
        """Partners found below their tier (one partner's only, when given)."""
        ...

    async def save_standings(self, below: Sequence[Standing], cleared: Sequence[str]) -> None: ...

    async def last_evaluation(self) -> dt.date | None: ...

    async def record_evaluation(
        self, as_of: dt.date, summary: Mapping[str, int], now: dt.datetime
    ) -> None: ...


@dataclass(frozen=True)
class PartnerStanding:
    """One partner at an evaluation: what it has, what it qualifies for, what happens."""

    partner_id: str
    tier: PartnerTier
    qualifies_for: PartnerTier
    revenue: Revenue
    certified: int
    move: Move
    next_tier: Gap | None


@dataclass
class Evaluation:
    as_of: dt.date
    rules_version: int
    applied: bool
    evaluated: int = 0
    promotions: int = 0
    demotions: int = 0
    pending_demotions: int = 0
    changes: list[PartnerStanding] = field(default_factory=list)


@dataclass(frozen=True)
class PartnerTierView:
    partner_id: str
    as_of: dt.date
    tier: PartnerTier
    qualifies_for: PartnerTier
    revenue: Revenue
    certified: int
    certifications: list[Certification]
    next_tier: Gap | None
    below_since: dt.date | None
    rules_version: int
    demotion_grace_days: int


class TierService:
    def __init__(self, store: TierStore, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._store = store
        self._uow = uow
        self._clock = clock

    # --- rules -------------------------------------------------------------------------

    async def book(self) -> TierRuleBook:
        return TierRuleBook(await self._store.rule_versions())

    async def add_rules(
        self,
        *,
        effective_from: dt.datetime,
        currency: str,
        fx: Mapping[str, object],
        tiers: Mapping[PartnerTier, Threshold],
        demotion_grace_days: int,
    ) -> TierRules:
        try:
            rates = {code: parse_fx(text, f"fx.{code}") for code, text in fx.items()}
            book = await self.book()
            latest = book.latest
            rules = TierRules(
                version=latest.version + 1 if latest else 1,
                effective_from=effective_from,
                currency=currency,
                fx=rates,
                tiers=tiers,
                demotion_grace_days=demotion_grace_days,
                recorded_at=self._clock(),
            )
            last = await self._store.last_evaluation()
            book.check_new(rules, end_of_day(last) if last else None)
        except TierRulesError as error:
            raise invalid("invalid_tier_rules", str(error), error.field) from None
        if not await self._store.add_rules(rules):
            raise conflict("concurrent_update", f"version {rules.version} was added meanwhile")
        log.info("tier rules added", extra={"version": rules.version})
        return rules

    # --- certifications ----------------------------------------------------------------

    async def certify(
        self, partner_id: str, *, name: str, holder: str, expires_on: dt.date
    ) -> tuple[Certification, bool]:
        async with self._uow() as uow:
            if await uow.partners.get(partner_id) is None:
                raise not_found("partner_not_found", "no such partner")
        certification = Certification(
            # The same person's same certificate, entered twice, counts once.
            certification_id=derive_id(
                "certification", partner_id, name, holder, expires_on.isoformat()
            ),
            partner_id=partner_id,
            name=name,
            holder=holder,
            expires_on=expires_on,
            recorded_at=self._clock(),
        )
        new = await self._store.add_certification(certification)
        # Never the holder: a person's name.
        log.info(
            "certification recorded",
            extra={"partner_id": partner_id, "certification_id": certification.certification_id},
        )
        return certification, new

    # --- revenue -----------------------------------------------------------------------

    async def record_applied(self, records: Iterable[StoredRecord]) -> int:
        """Keep the revenue lines of the `entitlement.order_applied` records of a batch."""
        lines = revenue_lines(records)
        if lines:
            await self._store.record_lines(lines)
        return len(lines)

    async def record_refunds(self, refunds: Sequence[RefundEntry]) -> None:
        if refunds:
            await self._store.record_refunds(refunds)

    # --- evaluation --------------------------------------------------------------------

    async def _rules_at(self, at: dt.datetime) -> TierRules:
        rules = (await self.book()).in_force(at)
        if rules is None:
            raise conflict("no_tier_rules", "no tier rules are in force at as_of", "as_of")
        return rules

    async def evaluate(self, as_of: dt.date, *, apply: bool) -> Evaluation:
        """Evaluate every active partner as of the end of `as_of`; `apply=False` previews."""
        at = end_of_day(as_of)
        rules = await self._rules_at(at)
        if apply:
            last = await self._store.last_evaluation()
            if last is not None and as_of < last:
                raise conflict(
                    "evaluation_out_of_order",
                    f"tiers were evaluated as of {last.isoformat()} already;"
                    " evaluate that day or a later one",
                    "as_of",
                )
        revenue = await self._store.revenue(window_start(at), at)
        certified = await self._store.certified_counts(as_of)
        standings = await self._store.standings()
        result = Evaluation(as_of=as_of, rules_version=rules.version, applied=apply)
        below: list[Standing] = []
        cleared: list[str] = []
        for partner in await self._store.partners():
            if not partner.is_active_at(at):
                continue
            pid = partner.partner_id
            standing = self._standing(
                partner,
                at,
                as_of,
                rules,
                revenue.get(pid, {}),
                certified.get(pid, 0),
                standings.get(pid),
            )
            revenue.pop(pid, None)  # done with it: memory falls as the pass goes on
            result.evaluated += 1
            move = standing.move
            if move.new_tier is not None:
                result.changes.append(standing)
                if move.kind == "promotion":
                    result.promotions += 1
                else:
                    result.demotions += 1
            elif move.below_since is not None:
                result.pending_demotions += 1
                result.changes.append(standing)
            previous = standings.get(pid)
            if move.standing.below_since is not None:
                if previous is None or previous.below_since != move.standing.below_since:
                    below.append(move.standing)
            elif previous is not None:
                cleared.append(pid)
        if apply:
            now = self._clock()
            for standing in result.changes:
                if standing.move.new_tier is not None:
                    await self._change_tier(standing.partner_id, standing.move.new_tier, at)
            await self._store.save_standings(below, cleared)
            await self._store.record_evaluation(
                as_of,
                {
                    "evaluated": result.evaluated,
                    "promotions": result.promotions,
                    "demotions": result.demotions,
                    "rules_version": rules.version,
                },
                now,
            )
            log.info(
                "tiers evaluated",
                extra={
                    "as_of": as_of.isoformat(),
                    "evaluated": result.evaluated,
                    "promotions": result.promotions,
                    "demotions": result.demotions,
                },
            )
        return result

    @staticmethod
    def _standing(
        partner: Partner,
        at: dt.datetime,
        as_of: dt.date,
        rules: TierRules,
        amounts: Mapping[str, int],
        certified: int,
        standing: Standing | None,
    ) -> PartnerStanding:
        converted = convert(amounts, rules)
        qualifies = qualifying_tier(converted.amount_minor, certified, rules)
        current = partner.tier_at(at)
        move = decide_tier(
            partner.partner_id, current, qualifies, standing, as_of, rules.demotion_grace_days
        )
        return PartnerStanding(
            partner_id=partner.partner_id,
            tier=current,
            qualifies_for=qualifies,
            revenue=converted,
            certified=certified,
            move=move,
            next_tier=next_tier_gap(qualifies, converted.amount_minor, certified, rules),
        )

    async def _change_tier(self, partner_id: str, tier: PartnerTier, at: dt.datetime) -> None:
        async def attempt() -> None:
            now = self._clock()
            async with self._uow() as uow:
                partner = await uow.partners.get(partner_id)
                if partner is None or not partner.change_tier(tier, at, now):
                    return  # gone, or another run got there first: nothing to tell
                partner.effective_at = at
                uow.emit(
                    partner_event(
                        partner, created=False, effective_at=at, now=now, tier_reason="evaluation"
                    )
                )
                await uow.commit()
                log.info(
                    "tier changed by evaluation", extra={"partner_id": partner_id, "tier": tier}
                )

        await retrying(attempt)

    async def partner_view(self, partner_id: str, as_of: dt.date | None = None) -> PartnerTierView:
        day = as_of or self._clock().astimezone(dt.UTC).date()
        at = end_of_day(day)
        async with self._uow() as uow:
            partner = await uow.partners.get(partner_id)
        if partner is None:
            raise not_found("partner_not_found", "no such partner")
        rules = await self._rules_at(at)
        revenue = await self._store.revenue(window_start(at), at, partner_id=partner_id)
        certifications = [
            c for c in await self._store.certifications(partner_id) if c.expires_on >= day
        ]
        standings = await self._store.standings(partner_id)
        standing = self._standing(
            partner,
            at,
            day,
            rules,
            revenue.get(partner_id, {}),
            len(certifications),
            standings.get(partner_id),
        )
        previous = standings.get(partner_id)
        return PartnerTierView(
            partner_id=partner_id,
            as_of=day,
            # The tier in force at the end of as_of: where an evaluation of that day put it.
            tier=standing.tier,
            qualifies_for=standing.qualifies_for,
            revenue=standing.revenue,
            certified=len(certifications),
            certifications=sorted(certifications, key=lambda c: (c.expires_on, c.name)),
            next_tier=standing.next_tier,
            below_since=previous.below_since if previous else None,
            rules_version=rules.version,
            demotion_grace_days=rules.demotion_grace_days,
        )


def revenue_lines(records: Iterable[StoredRecord]) -> list[RevenueLine]:
    """The revenue lines in a batch's produced records: each `order_applied` with a PoR."""
    lines: list[RevenueLine] = []
    for record in records:
        if (
            record.topic != REGISTRATION_ENTITLEMENTS
            or b'"entitlement.order_applied"' not in record.value
        ):
            continue
        envelope = json.loads(record.value)
        if envelope.get("event_type") != "entitlement.order_applied":
            continue
        data = envelope["data"]
        partner = data.get("partner")
        if not partner:
            continue
        order = data["order"]
        lines.append(
            RevenueLine(
                line_ref=f"{order['order_id']}/{order['line_id']}",
                partner_id=partner["partner_id"],
                currency=order["currency"],
                occurred_at=dt.datetime.fromisoformat(order["occurred_at"]),
                net_amount_minor=int(order["net_amount_minor"]),
            )
        )
    return lines


def rank_of(tier: PartnerTier) -> int:
    return RANK[tier]


__all__ = [
    "Certification",
    "Evaluation",
    "PartnerStanding",
    "PartnerTierView",
    "RefundEntry",
    "RevenueLine",
    "TierService",
    "TierStore",
    "UseCaseError",
    "revenue_lines",
]
