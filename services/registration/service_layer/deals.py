"""Deal registration use cases (CONTRACT 6.3): submit, decide, list, expire; the deal events.

A deal another partner's approved deal already protects is rejected at once
with reason `deal_conflict`: the deal is recorded as rejected (the partner sees
it in its list, and is told like of any decision), and the API answers `409
deal_conflict` naming nobody. Every change of a deal and its event commit in
one transaction (the outbox); event ids are derived from the deal and the
event type, since a deal passes each status at most once, so a re-run expiry
pass or a replayed order batch produces the same events.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from services.registration.domain.deals import (
    DEAL_CONFLICT,
    Deal,
    DealCustomer,
    DealStateError,
    DealStatus,
)
from services.registration.service_layer.errors import conflict, invalid, not_found
from services.registration.service_layer.partners import retrying
from services.registration.service_layer.unit_of_work import (
    Clock,
    OutboundEvent,
    UnitOfWork,
    UnitOfWorkFactory,
)
from shared.envelope import new_envelope
from shared.events import (
    DealApproved,
    DealExpired,
    DealRejected,
    DealState,
    DealSubmitted,
    DealWon,
)
from shared.events import DealCustomer as DealCustomerData
from shared.ids import derive_id
from shared.topics import REGISTRATION_DEALS

log = logging.getLogger(__name__)

PRODUCER = "registration"
EXPIRY_BATCH = 200

_MODELS: dict[str, type[DealState]] = {
    "deal.submitted": DealSubmitted,
    "deal.approved": DealApproved,
    "deal.rejected": DealRejected,
    "deal.won": DealWon,
    "deal.expired": DealExpired,
}


def deal_event_id(deal_id: str, event_type: str) -> str:
    """Deterministic: a deal reaches each status once."""
    return derive_id("registration", "deal", deal_id, event_type)


def deal_event(event_type: str, deal: Deal, *, occurred_at: dt.datetime) -> OutboundEvent:
    """`deal.*`: the deal as it now stands, keyed by `deal_id`."""
    c = deal.customer
    data = _MODELS[event_type](
        deal_id=deal.deal_id,
        partner_id=deal.partner_id,
        customer=DealCustomerData(
            customer_id=c.customer_id, org_name=c.org_name, email=c.email, country=c.country
        ),
        product=deal.product,
        expected_close=deal.expected_close,
        estimated_amount_minor=deal.estimated_amount_minor,
        currency=deal.currency,
        status=deal.status,
        submitted_at=deal.submitted_at,
        approved_at=deal.approved_at,
        protected_until=deal.protected_until,
        reason=deal.reason,
        order_id=deal.order_id,
    )
    envelope = new_envelope(
        event_type,
        data,
        occurred_at=occurred_at,
        producer=PRODUCER,
        event_id=deal_event_id(deal.deal_id, event_type),
    )
    return OutboundEvent(REGISTRATION_DEALS, deal.deal_id, envelope, deal.version + 1)


@dataclass(frozen=True)
class DealSubmission:
    customer: DealCustomer
    product: str
    expected_close: dt.date
    estimated_amount_minor: int
    currency: str


@dataclass(frozen=True)
class ExpirySummary:
    cutoff: dt.datetime
    expired: list[str]


def _unknown_deal() -> Exception:
    return not_found("unknown_deal", "no deal has this id")


class DealService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        protection_days: int,
        products: Iterable[str] = (),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._protection_days = protection_days
        self._products = frozenset(products)

    async def submit(self, partner_id: str, submission: DealSubmission) -> Deal:
        """POST /v1/partner/deals: `submitted`, or `rejected` at once as `deal_conflict`."""
        now = self._clock()
        if submission.expected_close < now.date():
            raise invalid(
                "expected_close_in_past", "expected_close must be today or later", "expected_close"
            )
        deal_id = f"D-{uuid.uuid4().hex[:16].upper()}"

        async def attempt() -> Deal:
            async with self._uow() as uow:
                if not await self._known_product(uow, submission.product):
                    raise invalid("unknown_product", "no product of this name is sold", "product")
                deal = Deal(
                    deal_id=deal_id,
                    partner_id=partner_id,
                    customer=submission.customer,
                    product=submission.product,
                    expected_close=submission.expected_close,
                    estimated_amount_minor=submission.estimated_amount_minor,
                    currency=submission.currency,
                    submitted_at=now,
                )
                protected = await uow.deals.approved_for([submission.product])
                taken = any(deal.conflicts_with(other, now) for other in protected)
                uow.deals.add(deal)
                uow.emit(deal_event("deal.submitted", deal, occurred_at=now))
                if taken:
                    deal.reject(DEAL_CONFLICT, now)
                    uow.emit(deal_event("deal.rejected", deal, occurred_at=now))
                await uow.commit()
                log.info(
                    "deal submitted",
                    extra={"deal_id": deal_id, "partner_id": partner_id, "status": deal.status},
                )
                return deal

        return await retrying(attempt)

    async def _known_product(self, uow: UnitOfWork, product: str) -> bool:
        # The PRODUCTS setting, else any product checkout has sold (an entitlement).
        return product in self._products or await uow.deals.product_seen(product)

    async def for_partner(self, partner_id: str, deal_id: str) -> Deal:
        """One of the caller's deals; another partner's answers 404 like a missing one."""
        async with self._uow() as uow:
            deal = await uow.deals.get(deal_id)
        if deal is None or deal.partner_id != partner_id:
            raise _unknown_deal()
        return deal

    async def get(self, deal_id: str) -> Deal:
        async with self._uow() as uow:
            deal = await uow.deals.get(deal_id)
        if deal is None:
            raise _unknown_deal()
        return deal

    async def list(
        self,
        *,
        partner_id: str | None = None,
        status: DealStatus | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Deal]:
        async with self._uow() as uow:
            return await uow.deals.query(
                partner_id=partner_id, status=status, after=after, limit=limit
            )

    async def approve(self, deal_id: str) -> Deal:
        """Protect (partner, customer, product) for DEAL_PROTECTION_DAYS from now.

        `409 deal_conflict` while another partner's approved deal protects the same
        customer and product (the deal stays `submitted` for the operator to reject).
        """

        async def attempt() -> Deal:
            now = self._clock()
            async with self._uow() as uow:
                deal = await self._pending(uow, deal_id)
                protected = await uow.deals.approved_for([deal.product])
                if any(deal.conflicts_with(other, now) for other in protected):
                    raise conflict(
                        DEAL_CONFLICT,
                        "another partner's approved deal protects this customer and product",
                    )
                deal.approve(now, self._protection_days)
                uow.emit(deal_event("deal.approved", deal, occurred_at=now))
                await uow.commit()
                log.info("deal approved", extra={"deal_id": deal_id})
                return deal

        return await retrying(attempt)

    async def reject(self, deal_id: str, reason: str) -> Deal:
        async def attempt() -> Deal:
            now = self._clock()
            async with self._uow() as uow:
                deal = await self._pending(uow, deal_id)
                deal.reject(reason, now)
                uow.emit(deal_event("deal.rejected", deal, occurred_at=now))
                await uow.commit()
                log.info("deal rejected", extra={"deal_id": deal_id})
                return deal

        return await retrying(attempt)

    async def _pending(self, uow: UnitOfWork, deal_id: str) -> Deal:
        deal = await uow.deals.get(deal_id)
        if deal is None:
            raise _unknown_deal()
        if deal.status != "submitted":
            raise conflict("deal_not_pending", f"the deal is {deal.status}, not submitted")
        return deal

    async def expire(self, cutoff: dt.datetime) -> ExpirySummary:
        """Approved, unwon deals whose protection ended by `cutoff` become `expired`.

        Idempotent: an expired deal is not approved any more, and its event id is
        derived from the deal, so running the pass again changes and emits nothing.
        """
        expired: list[str] = []
        while True:

            async def attempt() -> list[str]:
                async with self._uow() as uow:
                    due = await uow.deals.due_for_expiry(cutoff, EXPIRY_BATCH)
                    done: list[str] = []
                    for deal in due:
                        if deal.expire(cutoff):
                            assert deal.protected_until is not None
                            uow.emit(
                                deal_event("deal.expired", deal, occurred_at=deal.protected_until)
                            )
                            done.append(deal.deal_id)
                    await uow.commit()
                    return done

            batch = await retrying(attempt)
            expired.extend(batch)
            if len(batch) < EXPIRY_BATCH:
                break
        if expired:
            log.info("deals expired", extra={"count": len(expired)})
        return ExpirySummary(cutoff, expired)


__all__ = [
    "DealService",
    "DealStateError",
    "DealSubmission",
    "ExpirySummary",
    "deal_event",
    "deal_event_id",
]
