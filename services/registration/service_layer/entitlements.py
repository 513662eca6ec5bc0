"""Entitlement reads (partner-scoped and admin) and the operator's reassignment."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from services.registration.domain.entitlements import AttributionConflict, Entitlement
from services.registration.domain.partners import Partner
from services.registration.service_layer.attribution import state_events
from services.registration.service_layer.errors import invalid, not_found
from services.registration.service_layer.partners import retrying
from services.registration.service_layer.unit_of_work import (
    Clock,
    ProcessedOrder,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)


def _not_found() -> Exception:
    # One answer for "missing" and "someone else's": a partner learns nothing.
    return not_found("not_found", "no such entitlement")


@dataclass(frozen=True)
class AdminEntitlementView:
    entitlement: Entitlement
    conflicts: list[AttributionConflict]
    orders: list[ProcessedOrder]


@dataclass(frozen=True)
class SteerBack:
    """Whom checkout steers a renewing customer to (CONTRACT 6.1): an active PoR, or nobody."""

    license_key: str
    partner: Partner | None
    at: dt.datetime


class EntitlementService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def for_partner(self, partner_id: str, license_key: str) -> Entitlement:
        async with self._uow() as uow:
            entitlement = await uow.entitlements.get(license_key)
        por = entitlement.partner_of_record if entitlement is not None else None
        if entitlement is None or por is None or por.partner_id != partner_id:
            raise _not_found()
        return entitlement

    async def list_for_partner(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Entitlement]:
        async with self._uow() as uow:
            return await uow.entitlements.list_for_partner(
                partner_id, term_end_before=term_end_before, after=after, limit=limit
            )

    async def steer_back(self, license_key: str) -> SteerBack:
        """The partner of record to name at checkout, when it is active now; no customer data."""
        now = self._clock()
        async with self._uow() as uow:
            entitlement = await uow.entitlements.get(license_key)
            if entitlement is None:
                raise not_found("unknown_license_key", "no entitlement has this licence key")
            por = entitlement.partner_of_record
            partner = await uow.partners.get(por.partner_id) if por is not None else None
        if partner is not None and not partner.is_active_at(now):
            partner = None
        return SteerBack(license_key=entitlement.license_key, partner=partner, at=now)

    async def for_admin(self, license_key: str) -> AdminEntitlementView:
        async with self._uow() as uow:
            entitlement = await uow.entitlements.get(license_key)
            if entitlement is None:
                raise not_found("unknown_license_key", "no entitlement has this licence key")
            conflicts = await uow.conflicts.query(license_key=license_key, limit=200)
            orders = await uow.processed_orders.for_license_key(license_key)
        return AdminEntitlementView(entitlement, conflicts, orders)

    async def conflicts(
        self, *, license_key: str | None, partner_id: str | None, limit: int
    ) -> list[AttributionConflict]:
        async with self._uow() as uow:
            return await uow.conflicts.query(
                license_key=license_key, partner_id=partner_id, limit=limit
            )

    async def reassign(self, license_key: str, partner_id: str | None, reason: str) -> Entitlement:
        """PUT .../partner-of-record: an operator sets or clears it; audited in the history."""
        ref = f"operator:{uuid.uuid4()}"

        async def attempt() -> Entitlement:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await uow.entitlements.get(license_key)
                if entitlement is None:
                    raise not_found("unknown_license_key", "no entitlement has this licence key")
                if partner_id is not None and await uow.partners.get(partner_id) is None:
                    raise invalid("unknown_partner", "no such partner", "partner_id")
                change = entitlement.reassign(partner_id, reason=reason, ref=ref, now=now)
                for event in state_events(
                    entitlement, occurred_at=now, registered=False, updated=False, claim=change
                ):
                    uow.emit(event)
                await uow.commit()
                log.info(
                    "partner of record reassigned by an operator",
                    extra={"license_key": license_key, "partner_id": partner_id},
                )
                return entitlement

        return await retrying(attempt)
