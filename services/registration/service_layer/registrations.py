"""Registrations: a customer's (with an optional seller code, also later) and a partner's."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from services.registration.domain.attribution import AttributionDecision, Claim, Outcome
from services.registration.domain.entitlements import CustomerInfo, Entitlement, same_contact
from services.registration.domain.partners import Partner
from services.registration.service_layer import secrets
from services.registration.service_layer.attribution import (
    ClaimResult,
    claim_partner_of_record,
    state_events,
)
from services.registration.service_layer.errors import UseCaseError, conflict, not_found
from services.registration.service_layer.events import contact_confirmation_event
from services.registration.service_layer.partners import canonical_seller_code, retrying
from services.registration.service_layer.unit_of_work import Clock, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerDetails:
    org_name: str
    contact_name: str
    email: str
    country: str
    customer_id: str | None = None

    def for_entitlement(self, entitlement: Entitlement) -> CustomerInfo:
        return CustomerInfo(
            customer_id=self.customer_id or entitlement.customer.customer_id,
            org_name=self.org_name,
            contact_name=self.contact_name,
            email=self.email,
            country=self.country,
        )


@dataclass(frozen=True)
class RegistrationOutcome:
    entitlement: Entitlement
    partner_of_record: Partner | None
    decision: AttributionDecision | None
    registration_token: str | None = None
    first_time: bool = True
    contact_pending: bool = False


def _unknown_license_key() -> UseCaseError:
    return not_found("unknown_license_key", "no entitlement has this licence key")


async def _active_partner_by_code(uow: UnitOfWork, code: str, now: dt.datetime) -> Partner:
    partner = await uow.partners.get_by_seller_code(code)
    if partner is None or not partner.is_active_at(now):
        raise not_found("unknown_seller_code", "no partner has this seller code")
    return partner


async def _nothing() -> None:
    return None


async def _partner_of_record(uow: UnitOfWork, entitlement: Entitlement) -> Partner | None:
    por = entitlement.partner_of_record
    return await uow.partners.get(por.partner_id) if por is not None else None


class RegistrationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        window_months: int,
        late_seller_code_days: int,
        contact_confirmation_ttl: dt.timedelta = dt.timedelta(days=7),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._window_months = window_months
        self._late_days = late_seller_code_days
        self._contact_ttl = contact_confirmation_ttl

    async def register_customer(
        self, license_key: str, customer: CustomerDetails, seller_code: str | None
    ) -> RegistrationOutcome:
        """POST /v1/registrations: 201 with a registration token, the code applied by 2.1."""
        code = canonical_seller_code(seller_code, "seller_code") if seller_code else None

        async def attempt() -> RegistrationOutcome:
            now = self._clock()
            async with self._uow() as uow:
                # Both reads at once (one round trip's wait instead of two); the
                # answers are checked in the same order as before.
                entitlement, _ = await asyncio.gather(
                    uow.entitlements.get(license_key),
                    uow.partners.get_by_seller_code(code) if code else _nothing(),
                )
                if entitlement is None:
                    raise _unknown_license_key()
                if entitlement.is_registered:
                    raise conflict("already_registered", "this licence is already registered")
                partner = await _active_partner_by_code(uow, code, now) if code else None
                token = secrets.new_registration_token()
                # CONTRACT 6.9: checkout's contact stays unless the registrant is that
                # contact; another e-mail waits for the contact in place to confirm it.
                registrant = customer.for_entitlement(entitlement)
                same = same_contact(registrant.email, entitlement.customer.email)
                entitlement.register_customer(
                    registrant if same else None, secrets.hash_secret(token), code, now
                )
                contact_token = None
                if not same:
                    contact_token = secrets.new_contact_token()
                    entitlement.request_contact(
                        registrant, secrets.hash_secret(contact_token), now, self._contact_ttl
                    )
                result = None
                if partner is not None:
                    result = await self._claim(
                        uow, entitlement, partner, "customer_registration", now
                    )
                for event in state_events(
                    entitlement, occurred_at=now, registered=True, updated=False, claim=result
                ):
                    uow.emit(event)
                if contact_token is not None:
                    uow.emit(
                        contact_confirmation_event(
                            entitlement, token=contact_token, occurred_at=now
                        )
                    )
                await uow.commit()
                log.info(
                    "customer registration",
                    extra={
                        "license_key": license_key,
                        "outcome": result.decision.outcome if result else "no_seller_code",
                        "contact_pending": contact_token is not None,
                    },
                )
                return RegistrationOutcome(
                    entitlement,
                    await _partner_of_record(uow, entitlement),
                    result.decision if result else None,
                    registration_token=token,
                    contact_pending=contact_token is not None,
                )

        return await retrying(attempt)

    async def confirm_contact(self, token: str) -> Entitlement:
        """POST /v1/registrations/contact-confirmations: the pending contact takes over.

        One use: the token's hash goes with the pending contact. An unknown, used or
        expired token all answer the same `404 unknown_confirmation_token`.
        """

        async def attempt() -> Entitlement:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await uow.entitlements.get_by_contact_token_hash(
                    secrets.hash_secret(token)
                )
                if entitlement is None or not entitlement.confirm_contact(now):
                    raise not_found(
                        "unknown_confirmation_token",
                        "this confirmation link is unknown, used or expired",
                    )
                for event in state_events(
                    entitlement, occurred_at=now, registered=False, updated=True, claim=None
                ):
                    uow.emit(event)
                await uow.commit()
                log.info(
                    "customer contact confirmed", extra={"license_key": entitlement.license_key}
                )
                return entitlement

        return await retrying(attempt)

    async def add_seller_code(
        self, license_key: str, registration_token: str, seller_code: str
    ) -> RegistrationOutcome:
        """A seller code given after registering, with the registration token, in time."""
        code = canonical_seller_code(seller_code, "seller_code")

        async def attempt() -> RegistrationOutcome:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await uow.entitlements.get(license_key)
                if entitlement is None:
                    raise _unknown_license_key()
                registration = entitlement.registration
                if registration is None or not secrets.matches(
                    registration_token, registration.token_hash
                ):
                    raise UseCaseError(
                        "unauthorized",
                        "invalid_registration_token",
                        "the registration token does not match this licence",
                        "registration_token",
                    )
                if registration.seller_code is not None:
                    raise conflict(
                        "seller_code_already_set", "this registration has a seller code already"
                    )
                deadline = entitlement.late_seller_code_deadline(self._late_days)
                if deadline is not None and now > deadline:
                    raise conflict(
                        "seller_code_window_closed",
                        f"a seller code can be added up to {self._late_days} days after"
                        " registering",
                    )
                partner = await _active_partner_by_code(uow, code, now)
                entitlement.add_seller_code(code, now)
                result = await self._claim(uow, entitlement, partner, "customer_registration", now)
                for event in state_events(
                    entitlement, occurred_at=now, registered=False, updated=False, claim=result
                ):
                    uow.emit(event)
                await uow.commit()
                log.info(
                    "late seller code",
                    extra={"license_key": license_key, "outcome": result.decision.outcome},
                )
                return RegistrationOutcome(
                    entitlement, await _partner_of_record(uow, entitlement), result.decision
                )

        return await retrying(attempt)

    async def register_by_partner(
        self, partner_id: str, license_key: str, customer: CustomerDetails | None
    ) -> RegistrationOutcome:
        """POST /v1/partner/registrations; 409 `attributed_elsewhere` (naming nobody)."""

        async def attempt() -> RegistrationOutcome:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await uow.entitlements.get(license_key)
                if entitlement is None:
                    raise _unknown_license_key()
                partner = await uow.partners.get(partner_id)
                if partner is None:
                    raise not_found("unknown_license_key", "no entitlement has this licence key")
                # One conflict record per (licence, partner), however often it asks.
                result = await self._claim(
                    uow,
                    entitlement,
                    partner,
                    "partner_registration",
                    now,
                    ref=f"partner:{partner_id}",
                )
                if result.decision.outcome is Outcome.CONFLICT:
                    await uow.commit()  # the conflict record, for an operator
                    log.info("partner registration refused", extra={"license_key": license_key})
                    raise conflict(
                        "attributed_elsewhere", "this licence is attributed to another partner"
                    )
                first = entitlement.register_by_partner(partner_id)
                updated = False
                if customer is not None:
                    before = entitlement.customer
                    entitlement.customer = customer.for_entitlement(entitlement)
                    updated = entitlement.customer != before
                for event in state_events(
                    entitlement, occurred_at=now, registered=first, updated=updated, claim=result
                ):
                    uow.emit(event)
                await uow.commit()
                log.info(
                    "partner registration",
                    extra={
                        "license_key": license_key,
                        "partner_id": partner_id,
                        "outcome": result.decision.outcome,
                    },
                )
                return RegistrationOutcome(entitlement, partner, result.decision, first_time=first)

        return await retrying(attempt)

    async def _claim(
        self,
        uow: UnitOfWork,
        entitlement: Entitlement,
        partner: Partner,
        source: Literal["customer_registration", "partner_registration"],
        now: dt.datetime,
        *,
        ref: str | None = None,
    ) -> ClaimResult:
        claim = Claim(
            partner_id=partner.partner_id,
            source=source,
            at=now,
            via=source,
            ref=ref or f"request:{uuid.uuid4()}",
        )
        return await claim_partner_of_record(
            uow, entitlement, claim, window_months=self._window_months, now=now
        )
