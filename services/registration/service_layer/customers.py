"""Customer self-service (CONTRACT 6.2): sign-in links, sessions, a customer's licences,
its partner of record and the partners it lets see or manage them; and what a
partner with access may see and do.

A customer is the contact e-mail of its entitlements (case aside). Every licence
that is not the customer's answers exactly as one that does not exist (`404
unknown_license_key`). Sign-in tokens and session tokens are 32 random bytes,
shown once (the token only in the event that notifications mails), kept as
SHA-256, never logged.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from services.registration.domain.attribution import Claim
from services.registration.domain.customers import (
    CustomerSession,
    Permission,
    SignInGrant,
    email_key,
)
from services.registration.domain.entitlements import (
    AttributionChange,
    CustomerInfo,
    Entitlement,
)
from services.registration.domain.partners import Partner
from services.registration.service_layer import secrets
from services.registration.service_layer.attribution import (
    ClaimResult,
    claim_partner_of_record,
    state_events,
)
from services.registration.service_layer.errors import UseCaseError, conflict, not_found
from services.registration.service_layer.partners import canonical_seller_code, retrying
from services.registration.service_layer.unit_of_work import (
    Clock,
    OutboundEvent,
    UnitOfWork,
    UnitOfWorkFactory,
)
from shared.envelope import new_envelope
from shared.events import CustomerSignInRequested
from shared.topics import REGISTRATION_CUSTOMERS, hashed_key

log = logging.getLogger(__name__)

MAX_LICENCES = 1000
"""A customer's licences listed at most (far above any real customer)."""


class CustomerStore(abc.ABC):
    """The port for sign-in tokens, sessions and the customer / access indexes."""

    @abc.abstractmethod
    async def add_sign_in(self, token_hash: str, grant: SignInGrant, now: dt.datetime) -> None: ...

    @abc.abstractmethod
    async def use_sign_in(self, token_hash: str, now: dt.datetime) -> SignInGrant | None:
        """Mark the token used and answer what it opens; None if unknown, used or expired.

        Atomic: of two requests with one token, one wins.
        """

    @abc.abstractmethod
    async def add_session(
        self, session_hash: str, session: CustomerSession, now: dt.datetime
    ) -> None: ...

    @abc.abstractmethod
    async def session(self, session_hash: str, now: dt.datetime) -> CustomerSession | None: ...

    @abc.abstractmethod
    async def license_keys_of_customer(self, customer_key: str, limit: int) -> list[str]:
        """Licence keys whose contact e-mail has this `email_key`, by licence key."""

    @abc.abstractmethod
    async def license_keys_with_access(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[str]:
        """Licence keys `partner_id` has access to (not as PoR), by licence key."""


@dataclass(frozen=True)
class PartnerRef:
    display_name: str
    seller_code: str


@dataclass(frozen=True)
class AccessView:
    partner: PartnerRef
    permission: Permission


@dataclass(frozen=True)
class CustomerEntitlementView:
    """One licence as its customer sees it: no partner ids, no other customer."""

    entitlement: Entitlement
    partner_of_record: PartnerRef | None
    partners_with_access: list[AccessView]


@dataclass(frozen=True)
class SessionIssued:
    session_token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class PartnerEntitlement:
    """An entitlement as a partner sees it: as its PoR or as a partner with access."""

    entitlement: Entitlement
    relationship: str
    permission: Permission | None = None


def _unknown_license_key() -> UseCaseError:
    # One answer for "missing" and "another customer's": a customer learns nothing.
    return not_found("unknown_license_key", "no entitlement has this licence key")


def _invalid_session() -> UseCaseError:
    return UseCaseError("unauthorized", "invalid_session", "unknown or expired customer session")


def _ref(partner: Partner | None) -> PartnerRef | None:
    if partner is None:
        return None
    return PartnerRef(partner.display_name, partner.seller_code)


def sign_in_event(
    email: str, token: str, expires_at: dt.datetime, occurred_at: dt.datetime
) -> OutboundEvent:
    """`customer.sign_in_requested` on the sensitive `registration.customers.v1`."""
    envelope = new_envelope(
        "customer.sign_in_requested",
        CustomerSignInRequested(email=email, token=token, expires_at=expires_at),
        occurred_at=occurred_at,
        producer="registration",
        event_id=str(uuid.uuid4()),
    )
    return OutboundEvent(REGISTRATION_CUSTOMERS, hashed_key(email), envelope)


class CustomerService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: CustomerStore,
        clock: Clock,
        *,
        window_months: int,
        sign_in_ttl: dt.timedelta = dt.timedelta(minutes=15),
        session_ttl: dt.timedelta = dt.timedelta(hours=12),
    ) -> None:
        self._uow = uow
        self._store = store
        self._clock = clock
        self._window_months = window_months
        self._sign_in_ttl = sign_in_ttl
        self._session_ttl = session_ttl

    # --- sign-in and sessions -------------------------------------------------------

    async def request_sign_in(self, email: str) -> None:
        """POST /v1/customer/sign-in: a link for a known address, nothing for another.

        The caller answers 202 either way (no enumeration).
        """
        customer = email_key(email)
        keys = await self._store.license_keys_of_customer(customer, 1)
        if not keys:
            log.info("customer sign-in requested", extra={"known": False})
            return
        now = self._clock()
        async with self._uow() as uow:
            entitlement = await uow.entitlements.get(keys[0])
            if entitlement is None:
                return
            # The address as the licence holds it: the mail goes where the suite writes.
            address = entitlement.customer.email
            token = secrets.new_sign_in_token()
            expires_at = now + self._sign_in_ttl
            await self._store.add_sign_in(
                secrets.hash_secret(token), SignInGrant(customer, expires_at), now
            )
            uow.emit(sign_in_event(address, token, expires_at, now))
            await uow.commit()
        log.info("customer sign-in requested", extra={"known": True})

    async def start_session(self, token: str) -> SessionIssued:
        """POST /v1/customer/sessions: one session per token; 401 for a used, expired or
        unknown one."""
        now = self._clock()
        grant = await self._store.use_sign_in(secrets.hash_secret(token), now)
        if grant is None:
            raise UseCaseError(
                "unauthorized",
                "invalid_sign_in_token",
                "this sign-in link is unknown, used or expired",
                "token",
            )
        session_token = secrets.new_customer_session_token()
        expires_at = now + self._session_ttl
        await self._store.add_session(
            secrets.hash_secret(session_token), CustomerSession(grant.email_key, expires_at), now
        )
        log.info("customer session started")
        return SessionIssued(session_token, expires_at)

    async def authenticate(self, session_token: str) -> CustomerSession | None:
        return await self._store.session(secrets.hash_secret(session_token), self._clock())

    # --- the customer's licences ------------------------------------------------------

    async def entitlements(self, customer: str) -> list[CustomerEntitlementView]:
        keys = await self._store.license_keys_of_customer(customer, MAX_LICENCES)
        async with self._uow() as uow:
            found = await uow.entitlements.get_many(keys)
            owned = [found[k] for k in sorted(found) if _owns(customer, found[k])]
            return await self._views(uow, owned)

    async def set_partner_of_record(
        self, customer: str, license_key: str, seller_code: str
    ) -> CustomerEntitlementView:
        """A `customer_registration` claim where no PoR is set; `409 partner_of_record_set`."""
        code = canonical_seller_code(seller_code, "seller_code")

        async def attempt() -> CustomerEntitlementView:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await self._owned(uow, customer, license_key)
                if entitlement.partner_of_record is not None:
                    raise conflict(
                        "partner_of_record_set", "this licence has a partner of record already"
                    )
                partner = await _active_partner(uow, code, now)
                claim = Claim(
                    partner_id=partner.partner_id,
                    source="customer_registration",
                    at=now,
                    via="customer",
                    ref=f"customer:{uuid.uuid4()}",
                )
                result = await claim_partner_of_record(
                    uow, entitlement, claim, window_months=self._window_months, now=now
                )
                # The partner of record needs no access of its own besides.
                access_dropped = entitlement.revoke_access(partner.partner_id)
                await _commit_change(
                    uow,
                    entitlement,
                    now,
                    updated=access_dropped,
                    claim=result,
                    message="partner of record set by the customer",
                    extra={"license_key": license_key, "partner_id": partner.partner_id},
                )
                return await self._view(uow, entitlement)

        return await retrying(attempt)

    async def end_partner_of_record(
        self, customer: str, license_key: str
    ) -> CustomerEntitlementView:
        """The customer ends the PoR: null, source `customer_removed`; 409 if none."""

        async def attempt() -> CustomerEntitlementView:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await self._owned(uow, customer, license_key)
                change = entitlement.end_partner_of_record(ref=f"customer:{uuid.uuid4()}", now=now)
                if change is None:
                    raise conflict("no_partner_of_record", "this licence has no partner of record")
                await _commit_change(
                    uow,
                    entitlement,
                    now,
                    updated=False,
                    claim=change,
                    message="partner of record ended by the customer",
                    extra={"license_key": license_key, "partner_id": change.previous_partner_id},
                )
                return await self._view(uow, entitlement)

        return await retrying(attempt)

    async def grant_access(
        self, customer: str, license_key: str, seller_code: str, permission: Permission
    ) -> CustomerEntitlementView:
        code = canonical_seller_code(seller_code, "seller_code")

        async def attempt() -> CustomerEntitlementView:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await self._owned(uow, customer, license_key)
                partner = await _active_partner(uow, code, now)
                por = entitlement.partner_of_record
                if por is not None and por.partner_id == partner.partner_id:
                    raise conflict(
                        "partner_of_record",
                        "this partner is the licence's partner of record",
                        "seller_code",
                    )
                if entitlement.grant_access(partner.partner_id, permission, now):
                    await _commit_change(
                        uow,
                        entitlement,
                        now,
                        message="partner access granted",
                        extra={
                            "license_key": license_key,
                            "partner_id": partner.partner_id,
                            "permission": permission,
                        },
                    )
                return await self._view(uow, entitlement)

        return await retrying(attempt)

    async def revoke_access(
        self, customer: str, license_key: str, seller_code: str
    ) -> CustomerEntitlementView:
        code = canonical_seller_code(seller_code, "seller_code")

        async def attempt() -> CustomerEntitlementView:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await self._owned(uow, customer, license_key)
                partner = await uow.partners.get_by_seller_code(code)
                if partner is None or not entitlement.revoke_access(partner.partner_id):
                    raise not_found("no_access", "no partner with this seller code has access")
                await _commit_change(
                    uow,
                    entitlement,
                    now,
                    message="partner access revoked",
                    extra={"license_key": license_key, "partner_id": partner.partner_id},
                )
                return await self._view(uow, entitlement)

        return await retrying(attempt)

    # --- partners with access -------------------------------------------------------------

    async def with_access(
        self,
        partner_id: str,
        *,
        term_end_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[PartnerEntitlement]:
        keys = await self._store.license_keys_with_access(
            partner_id, term_end_before=term_end_before, after=after, limit=limit
        )
        async with self._uow() as uow:
            found = await uow.entitlements.get_many(keys)
        views = []
        for key in sorted(found):
            access = found[key].access_of(partner_id)
            if access is not None:
                views.append(PartnerEntitlement(found[key], "access", access.permission))
        return views

    async def one_with_access(self, partner_id: str, license_key: str) -> PartnerEntitlement:
        async with self._uow() as uow:
            entitlement = await uow.entitlements.get(license_key)
        access = entitlement.access_of(partner_id) if entitlement is not None else None
        if entitlement is None or access is None:
            raise not_found("not_found", "no such entitlement")
        return PartnerEntitlement(entitlement, "access", access.permission)

    async def update_contact(
        self, partner_id: str, license_key: str, contact_name: str, email: str
    ) -> PartnerEntitlement:
        """PUT /v1/partner/entitlements/{license_key}/contact: a `manage` partner (or the
        PoR) keeps the customer's contact; a `view` one gets 403, anyone else 404."""

        async def attempt() -> PartnerEntitlement:
            now = self._clock()
            async with self._uow() as uow:
                entitlement = await uow.entitlements.get(license_key)
                if entitlement is None:
                    raise not_found("not_found", "no such entitlement")
                por = entitlement.partner_of_record
                is_por = por is not None and por.partner_id == partner_id
                access = entitlement.access_of(partner_id)
                if not is_por and access is None:
                    raise not_found("not_found", "no such entitlement")
                if not is_por and access is not None and access.permission != "manage":
                    raise UseCaseError(
                        "forbidden", "forbidden", "view access does not include the contact"
                    )
                before = entitlement.customer
                entitlement.customer = CustomerInfo(
                    customer_id=before.customer_id,
                    org_name=before.org_name,
                    contact_name=contact_name,
                    email=email,
                    country=before.country,
                )
                if entitlement.customer != before:
                    await _commit_change(
                        uow,
                        entitlement,
                        now,
                        message="customer contact updated by a partner",
                        extra={"license_key": license_key, "partner_id": partner_id},
                    )
                if is_por:
                    return PartnerEntitlement(entitlement, "partner_of_record")
                return PartnerEntitlement(
                    entitlement, "access", access.permission if access else None
                )

        return await retrying(attempt)

    # --- helpers ------------------------------------------------------------------------

    async def _owned(self, uow: UnitOfWork, customer: str, license_key: str) -> Entitlement:
        entitlement = await uow.entitlements.get(license_key)
        if entitlement is None or not _owns(customer, entitlement):
            raise _unknown_license_key()
        return entitlement

    async def _view(self, uow: UnitOfWork, entitlement: Entitlement) -> CustomerEntitlementView:
        return (await self._views(uow, [entitlement]))[0]

    async def _views(
        self, uow: UnitOfWork, entitlements: list[Entitlement]
    ) -> list[CustomerEntitlementView]:
        ids = {e.partner_of_record.partner_id for e in entitlements if e.partner_of_record}
        ids |= {a.partner_id for e in entitlements for a in e.access}
        partners = await uow.partners.get_many(ids)
        views = []
        for e in entitlements:
            por = e.partner_of_record
            views.append(
                CustomerEntitlementView(
                    entitlement=e,
                    partner_of_record=_ref(partners.get(por.partner_id)) if por else None,
                    partners_with_access=[
                        AccessView(ref, a.permission)
                        for a in e.access
                        if (ref := _ref(partners.get(a.partner_id))) is not None
                    ],
                )
            )
        return views


async def _commit_change(
    uow: UnitOfWork,
    entitlement: Entitlement,
    now: dt.datetime,
    *,
    updated: bool = True,
    claim: ClaimResult | AttributionChange | None = None,
    message: str,
    extra: dict[str, object],
) -> None:
    """Emits the entitlement's state events for the change, commits, then logs it."""
    for event in state_events(
        entitlement, occurred_at=now, registered=False, updated=updated, claim=claim
    ):
        uow.emit(event)
    await uow.commit()
    log.info(message, extra=extra)


def _owns(customer: str, entitlement: Entitlement) -> bool:
    return email_key(entitlement.customer.email) == customer


async def _active_partner(uow: UnitOfWork, code: str, now: dt.datetime) -> Partner:
    partner = await uow.partners.get_by_seller_code(code)
    if partner is None or not partner.is_active_at(now):
        raise not_found("unknown_seller_code", "no partner has this seller code")
    return partner
