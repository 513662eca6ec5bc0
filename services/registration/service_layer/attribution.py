"""Apply one claim to an entitlement's partner of record, and emit what changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.registration.domain.attribution import AttributionDecision, Claim, decide_attribution
from services.registration.domain.entitlements import AttributionChange, Entitlement
from services.registration.service_layer.events import entitlement_event
from services.registration.service_layer.unit_of_work import OutboundEvent, UnitOfWork
from shared.ids import derive_id


@dataclass(frozen=True)
class ClaimResult:
    decision: AttributionDecision
    change: AttributionChange | None

    @property
    def partner_changed(self) -> bool:
        return self.change is not None and (
            self.change.previous_partner_id
            != (self.change.partner_of_record.partner_id if self.change.partner_of_record else None)
        )


def conflict_id(claim: Claim, license_key: str) -> str:
    """Deterministic, so a replayed order records its conflict once."""
    return derive_id("attribution-conflict", license_key, claim.via, claim.ref)


async def claim_partner_of_record(
    uow: UnitOfWork,
    entitlement: Entitlement,
    claim: Claim,
    *,
    window_months: int,
    now: dt.datetime,
    conflict_is_new: bool = False,
) -> ClaimResult:
    """Decide the claim by CONTRACT 2.1; apply it or record the conflict.

    `conflict_is_new`: the claim is made once (an order line), so its conflict
    record, whose id derives from the claim, cannot exist yet.
    """
    current = entitlement.partner_of_record
    current_active = False
    if current is not None:
        holder = await uow.partners.get(current.partner_id)
        current_active = holder is not None and holder.is_active_at(claim.at)
    decision = decide_attribution(
        current, current_active=current_active, claim=claim, window_months=window_months
    )
    change = entitlement.apply_claim(claim, decision, recorded_at=now)
    conflict = entitlement.conflict(
        claim,
        decision,
        conflict_id=conflict_id(claim, entitlement.license_key),
        recorded_at=now,
    )
    if conflict is not None:
        uow.conflicts.add(conflict, known_new=conflict_is_new)
    return ClaimResult(decision, change)


def state_events(
    entitlement: Entitlement,
    *,
    occurred_at: dt.datetime,
    registered: bool,
    updated: bool,
    claim: ClaimResult | AttributionChange | None,
    event_id: Callable[[str], str | None] = lambda _: None,
) -> Iterable[OutboundEvent]:
    """The `entitlement.*` state events for what a use case changed, in order.

    `registered` wins over `updated` (it carries the same state); a change of
    partner is `attribution_changed`; a refresh of the same partner (new
    `since` or source) is an `updated`.
    """
    change = claim.change if isinstance(claim, ClaimResult) else claim
    partner_changed = change is not None and change.previous_partner_id != (
        change.partner_of_record.partner_id if change.partner_of_record else None
    )
    refreshed = change is not None and not partner_changed
    if registered:
        yield entitlement_event(
            "entitlement.registered",
            entitlement,
            occurred_at=occurred_at,
            event_id=event_id("entitlement.registered"),
        )
    elif updated or refreshed:
        yield entitlement_event(
            "entitlement.updated",
            entitlement,
            occurred_at=occurred_at,
            event_id=event_id("entitlement.updated"),
        )
    if partner_changed and change is not None:
        yield entitlement_event(
            "entitlement.attribution_changed",
            entitlement,
            occurred_at=occurred_at,
            event_id=event_id("entitlement.attribution_changed"),
            previous_partner_id=change.previous_partner_id,
        )
