"""Partner directory use cases: enrol, change, read, seller-code lookup, API-key resolution."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from services.registration.domain.partners import (
    Branding,
    Partner,
    PartnerError,
    PartnerStatus,
    PartnerTier,
    PartnerType,
    RenewalMode,
)
from services.registration.service_layer import secrets
from services.registration.service_layer.errors import UseCaseError, conflict, invalid, not_found
from services.registration.service_layer.events import partner_event
from services.registration.service_layer.unit_of_work import (
    Clock,
    ConcurrentUpdate,
    DuplicateKey,
    UnitOfWorkFactory,
)
from shared import seller_code

log = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")


async def retrying(
    attempt: Callable[[], Awaitable[ResultT]], times: int = 5, backoff_s: float = 0.02
) -> ResultT:
    """Run a use case again when another writer got to an aggregate first.

    Bounded: between attempts a random pause of up to `backoff_s` doubled per
    attempt (writers that collided do not collide again in step), and after
    `times` attempts a 503 `concurrent_update` with Retry-After, never an
    open-ended wait. Nothing is written by a failed attempt.
    """
    for n in range(times):
        try:
            return await attempt()
        except ConcurrentUpdate:
            if n + 1 < times:
                await asyncio.sleep(random.uniform(0, backoff_s * 2**n))
    log.warning("use case gave up after concurrent updates", extra={"attempts": times})
    raise UseCaseError(
        "unavailable",
        "concurrent_update",
        "the record changed meanwhile; try again",
        retry_after_s=1,
    )


@dataclass(frozen=True)
class NewPartner:
    display_name: str
    legal_name: str
    type: PartnerType
    tier: PartnerTier
    contact_email: str
    parent_partner_id: str | None = None
    branding: Branding = field(default_factory=Branding)
    co_brand_customer_messages: bool = False
    customer_ids: tuple[str, ...] = ()
    effective_at: dt.datetime | None = None
    renewal_mode: RenewalMode = "partner_first"


@dataclass(frozen=True)
class PartnerChanges:
    """Fields of a PATCH; None leaves a field unchanged."""

    tier: PartnerTier | None = None
    status: PartnerStatus | None = None
    display_name: str | None = None
    legal_name: str | None = None
    contact_email: str | None = None
    branding: dict[str, str | None] | None = None
    co_brand_customer_messages: bool | None = None
    customer_ids: tuple[str, ...] | None = None
    effective_at: dt.datetime | None = None
    renewal_mode: RenewalMode | None = None


ADMIN_ACTOR = "admin"


def _partner_error(error: PartnerError) -> UseCaseError:
    if error.code == "partner_terminated":
        return conflict(error.code, error.message, error.field)
    return UseCaseError("invalid", error.code, error.message, error.field)


class PartnerService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        new_seller_code: Callable[[], str] = seller_code.generate,
        new_api_key: Callable[[], str] = secrets.new_api_key,
        new_partner_id: Callable[[], str] = secrets.new_partner_id,
        attempts: int = 8,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._new_seller_code = new_seller_code
        self._new_api_key = new_api_key
        self._new_partner_id = new_partner_id
        self._attempts = attempts

    async def create(self, request: NewPartner) -> tuple[Partner, str]:
        """Enrol a partner; returns it with its API key (the only time the key exists)."""
        for _ in range(self._attempts):
            now = self._clock()
            async with self._uow() as uow:
                parent = None
                if request.parent_partner_id is not None:
                    parent = await uow.partners.get(request.parent_partner_id)
                    if parent is None or parent.type != "distributor":
                        raise invalid(
                            "invalid_parent",
                            "parent_partner_id must be an existing distributor",
                            "parent_partner_id",
                        )
                api_key = self._new_api_key()
                effective_at = request.effective_at or now
                partner = Partner.enroll(
                    partner_id=self._new_partner_id(),
                    display_name=request.display_name,
                    legal_name=request.legal_name,
                    type=request.type,
                    tier=request.tier,
                    parent=parent,
                    contact_email=request.contact_email,
                    branding=request.branding,
                    co_brand_customer_messages=request.co_brand_customer_messages,
                    customer_ids=list(request.customer_ids),
                    seller_code=self._new_seller_code(),
                    api_key_hash=secrets.hash_secret(api_key),
                    effective_at=effective_at,
                    now=now,
                    renewal_mode=request.renewal_mode,
                )
                uow.partners.add(partner)
                uow.emit(partner_event(partner, created=True, effective_at=effective_at, now=now))
                try:
                    await uow.commit()
                except DuplicateKey as clash:
                    # A seller code (or id) minted twice: rare with 32^7 codes; mint another.
                    log.info(
                        "partner id or seller code collision; retrying", extra={"on": clash.field}
                    )
                    continue
                log.info("partner created", extra={"partner_id": partner.partner_id})
                return partner, api_key
        raise conflict("seller_code_exhausted", "could not mint a unique seller code; try again")

    async def update(self, partner_id: str, changes: PartnerChanges) -> Partner:
        async def attempt() -> Partner:
            now = self._clock()
            effective_at = changes.effective_at or now
            async with self._uow() as uow:
                partner = await uow.partners.get(partner_id)
                if partner is None:
                    raise not_found("partner_not_found", "no such partner")
                try:
                    changed = False
                    if changes.tier is not None:
                        changed |= partner.change_tier(changes.tier, effective_at, now)
                    if changes.status is not None:
                        changed |= partner.change_status(changes.status, effective_at, now)
                    if changes.renewal_mode is not None:
                        changed |= partner.change_renewal_mode(
                            changes.renewal_mode, effective_at, now, actor=ADMIN_ACTOR
                        )
                except PartnerError as error:
                    raise _partner_error(error) from None
                changed |= partner.change_details(
                    display_name=changes.display_name,
                    legal_name=changes.legal_name,
                    contact_email=changes.contact_email,
                    branding=changes.branding,
                    co_brand_customer_messages=changes.co_brand_customer_messages,
                    customer_ids=list(changes.customer_ids)
                    if changes.customer_ids is not None
                    else None,
                )
                if changed:
                    partner.effective_at = effective_at
                    uow.emit(
                        partner_event(partner, created=False, effective_at=effective_at, now=now)
                    )
                    await uow.commit()
                    log.info("partner updated", extra={"partner_id": partner_id})
                return partner

        return await retrying(attempt)

    async def set_renewal_mode(self, partner_id: str, mode: RenewalMode, *, actor: str) -> Partner:
        """PUT /v1/partner/renewal-mode: the partner's own choice, effective now (CONTRACT 6.1).

        `actor` is the calling key's id, kept in the partner's audit entries.
        """

        async def attempt() -> Partner:
            now = self._clock()
            async with self._uow() as uow:
                partner = await uow.partners.get(partner_id)
                if partner is None:
                    raise not_found("partner_not_found", "no such partner")
                if partner.change_renewal_mode(mode, now, now, actor=actor):
                    partner.effective_at = now
                    uow.emit(partner_event(partner, created=False, effective_at=now, now=now))
                    await uow.commit()
                    log.info(
                        "renewal mode changed",
                        extra={"partner_id": partner_id, "renewal_mode": mode, "actor": actor},
                    )
                return partner

        return await retrying(attempt)

    async def get(self, partner_id: str) -> Partner:
        async with self._uow() as uow:
            partner = await uow.partners.get(partner_id)
        if partner is None:
            raise not_found("partner_not_found", "no such partner")
        return partner

    async def page(self, *, after: str | None, limit: int) -> list[Partner]:
        """The partner directory by id, for operators (the console's partner list)."""
        async with self._uow() as uow:
            return await uow.partners.page(after=after, limit=limit)

    async def lookup_seller_code(self, code: str) -> tuple[str, Partner]:
        """The canonical code and its active partner; 422 for a typo, 404 if nobody has it."""
        canonical = canonical_seller_code(code, "code")
        async with self._uow() as uow:
            partner = await uow.partners.get_by_seller_code(canonical)
        if partner is None or not partner.is_active_at(self._clock()):
            raise not_found("unknown_seller_code", "no partner has this seller code")
        return canonical, partner

    async def resolve_api_key(self, api_key: str) -> str | None:
        """The partner id of an active partner's key, else None."""
        if not api_key.startswith(secrets.API_KEY_PREFIX) or len(api_key) > 200:
            return None
        async with self._uow() as uow:
            partner = await uow.partners.get_by_api_key_hash(secrets.hash_secret(api_key))
        if partner is None or not secrets.matches(api_key, partner.api_key_hash):
            return None
        if not partner.is_active_at(self._clock()):
            return None
        return partner.partner_id


def canonical_seller_code(code: str, field: str) -> str:
    try:
        return seller_code.validate(code)
    except seller_code.InvalidSellerCode as error:
        raise invalid("invalid_seller_code", str(error), field) from None
