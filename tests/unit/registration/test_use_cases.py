"""Partner, registration and entitlement use cases against in-memory fakes."""

from __future__ import annotations

import itertools

import pytest

from services.registration.service_layer import secrets
from services.registration.service_layer.entitlements import EntitlementService
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import NewPartner, PartnerChanges, PartnerService
from services.registration.service_layer.rate_limit import TokenBucketLimiter
from services.registration.service_layer.registrations import CustomerDetails, RegistrationService
from shared import seller_code
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, Store, factory

# The contact checkout supplied (tests/unit/registration/builders.py), in another case.
CUSTOMER = CustomerDetails("Müller GmbH", "Jana", "Jana@Mueller-Logistik.example", "DE")
STRANGER = CustomerDetails("Evil Corp", "Mallory", "mallory@evil.example", "GB")


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-01T12:00:00Z"))


@pytest.fixture
def partners(store: Store, clock: Clock) -> PartnerService:
    return PartnerService(factory(store), clock)


@pytest.fixture
def registrations(store: Store, clock: Clock) -> RegistrationService:
    return RegistrationService(factory(store), clock, window_months=36, late_seller_code_days=90)


@pytest.fixture
def entitlements(store: Store, clock: Clock) -> EntitlementService:
    return EntitlementService(factory(store), clock)


async def sold(store: Store, clock: Clock, *keys: str, partner_code: str | None = None) -> None:
    applier = OrderApplier(factory(store), clock, window_months=36)
    for key in keys:
        placed = (
            order(f"O-{key}", line(key), channel="partner", partner_code=partner_code)
            if partner_code
            else order(f"O-{key}", line(key))
        )
        await applier.apply([incoming(placed, "2026-02-01T00:00:00Z")])
    store.outbox.clear()


def event_types(store: Store) -> list[str]:
    return [e.envelope.event_type for e in store.outbox]


# --- partners -------------------------------------------------------------------------


async def test_create_partner_stores_only_the_key_hash_and_emits_created(
    partners: PartnerService, store: Store
) -> None:
    pid, code, key = await enrol(partners)
    stored = store.partners[pid]
    assert key.startswith("ckp_") and len(key) >= 43
    assert stored.api_key_hash == secrets.hash_secret(key) and key not in repr(stored)
    assert seller_code.is_valid(code)
    [event] = store.outbox
    assert event.envelope.event_type == "partner.created" and event.key == pid
    assert "api_key" not in event.value().decode()
    assert await partners.resolve_api_key(key) == pid
    assert await partners.resolve_api_key("ckp_" + "x" * 43) is None


async def test_the_directory_pages_by_partner_id(partners: PartnerService) -> None:
    ids = sorted([(await enrol(partners, name))[0] for name in ("A", "B", "C")])
    first = await partners.page(after=None, limit=2)
    assert [p.partner_id for p in first] == ids[:2]
    rest = await partners.page(after=first[-1].partner_id, limit=2)
    assert [p.partner_id for p in rest] == ids[2:]


async def test_a_seller_code_collision_mints_another(store: Store, clock: Clock) -> None:
    codes = itertools.chain(["7K3M-9QXF", "7K3M-9QXF"], iter(seller_code.generate, None))
    service = PartnerService(factory(store), clock, new_seller_code=lambda: next(codes))
    first, _ = await service.create(NewPartner("A", "A GmbH", "var", "gold", "a@example.com"))
    second, _ = await service.create(NewPartner("B", "B GmbH", "var", "gold", "b@example.com"))
    assert first.seller_code == "7K3M-9QXF" and second.seller_code != first.seller_code


async def test_parent_must_be_an_existing_distributor(partners: PartnerService) -> None:
    var, _, _ = await enrol(partners, "VAR")
    for parent in ("P-NOPE", var):
        with pytest.raises(UseCaseError) as error:
            await enrol(partners, "Child", parent=parent)
        assert (error.value.kind, error.value.field) == ("invalid", "parent_partner_id")
    dist, _, _ = await enrol(partners, "Dist", type="distributor")
    child, _, _ = await enrol(partners, "Child", parent=dist)
    assert (await partners.get(child)).parent_partner_id == dist


async def test_update_keeps_history_emits_updated_and_suspension_stops_the_key(
    partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, _, key = await enrol(partners, tier="silver")
    await partners.update(pid, PartnerChanges(tier="gold"))
    clock.advance(days=1)
    partner = await partners.update(pid, PartnerChanges(status="suspended"))
    assert [c.value for c in partner.tier_history] == ["silver", "gold"]
    assert event_types(store) == ["partner.created", "partner.updated", "partner.updated"]
    assert store.outbox[-1].envelope.data.status == "suspended"
    assert await partners.resolve_api_key(key) is None
    # No change, no event.
    await partners.update(pid, PartnerChanges(status="suspended"))
    assert len(store.outbox) == 3


async def test_update_of_a_missing_or_terminated_partner(
    partners: PartnerService, clock: Clock
) -> None:
    with pytest.raises(UseCaseError) as missing:
        await partners.update("P-NOPE", PartnerChanges(tier="gold"))
    assert missing.value.kind == "not_found"
    pid, _, _ = await enrol(partners)
    await partners.update(pid, PartnerChanges(status="terminated"))
    with pytest.raises(UseCaseError) as final:
        await partners.update(pid, PartnerChanges(status="active"))
    assert (final.value.kind, final.value.code) == ("conflict", "partner_terminated")


async def test_a_concurrent_update_is_retried(partners: PartnerService, store: Store) -> None:
    pid, _, _ = await enrol(partners)
    store.fail_next_commits = 2
    partner = await partners.update(pid, PartnerChanges(tier="platinum"))
    assert partner.tier_at(partner.effective_at) == "platinum"
    store.fail_next_commits = 10
    with pytest.raises(UseCaseError) as error:
        await partners.update(pid, PartnerChanges(tier="bronze"))
    # Bounded: a 503 the caller may retry, not an open-ended wait.
    assert (error.value.kind, error.value.code) == ("unavailable", "concurrent_update")
    assert error.value.retry_after_s is not None


async def test_seller_code_lookup(partners: PartnerService) -> None:
    pid, code, _ = await enrol(partners)
    canonical, partner = await partners.lookup_seller_code(code.lower().replace("-", " "))
    assert (canonical, partner.partner_id) == (code, pid)
    with pytest.raises(UseCaseError) as invalid:
        await partners.lookup_seller_code(code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert invalid.value.code == "invalid_seller_code"
    with pytest.raises(UseCaseError) as unknown:
        await partners.lookup_seller_code("7K3M-9QXF")
    assert unknown.value.code == "unknown_seller_code"


# --- registrations ----------------------------------------------------------------------


async def test_customer_registration_with_a_seller_code(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, code, _ = await enrol(partners)
    await sold(store, clock, "LK-1")
    outcome = await registrations.register_customer("LK-1", CUSTOMER, code)
    assert outcome.registration_token and outcome.partner_of_record.partner_id == pid  # type: ignore[union-attr]
    entitlement = store.entitlements["LK-1"]
    assert entitlement.registration.token_hash == secrets.hash_secret(outcome.registration_token)  # type: ignore[union-attr]
    assert entitlement.partner_of_record.source == "customer_registration"  # type: ignore[union-attr]
    assert entitlement.customer.customer_id == "C-881"  # kept from the order
    assert event_types(store) == ["entitlement.registered", "entitlement.attribution_changed"]
    with pytest.raises(UseCaseError) as again:
        await registrations.register_customer("LK-1", CUSTOMER, None)
    assert again.value.code == "already_registered"


async def test_a_registration_never_replaces_checkouts_contact_without_its_confirmation(
    registrations: RegistrationService, store: Store, clock: Clock
) -> None:
    """CONTRACT 6.9: another e-mail registers, the contact stays until it confirms."""
    await sold(store, clock, "LK-1")
    outcome = await registrations.register_customer("LK-1", STRANGER, None)
    assert outcome.registration_token and outcome.contact_pending
    entitlement = store.entitlements["LK-1"]
    assert entitlement.customer.email == "jana@mueller-logistik.example"
    assert entitlement.customer.contact_name == "Jana Müller"
    pending = entitlement.pending_contact
    assert pending is not None and pending.customer.email == "mallory@evil.example"
    assert event_types(store) == [
        "entitlement.registered",
        "entitlement.contact_confirmation_requested",
    ]
    registered, requested = store.events()
    assert registered.envelope.data.customer.email == "jana@mueller-logistik.example"
    data = requested.envelope.data
    assert data.customer.email == "jana@mueller-logistik.example"  # the mail goes there
    assert data.requested_email == "mallory@evil.example"
    token = data.confirmation_token
    assert token.startswith("ckc_") and pending.token_hash == secrets.hash_secret(token)
    assert token not in repr(entitlement)  # only its hash is kept

    with pytest.raises(UseCaseError) as wrong:
        await registrations.confirm_contact(token + "x")
    assert (wrong.value.kind, wrong.value.code) == ("not_found", "unknown_confirmation_token")
    confirmed = await registrations.confirm_contact(token)
    assert confirmed.license_key == "LK-1"
    entitlement = store.entitlements["LK-1"]
    assert entitlement.customer.email == "mallory@evil.example"
    assert entitlement.customer.customer_id == "C-881"  # the account stays
    assert entitlement.pending_contact is None
    assert event_types(store)[-1] == "entitlement.updated"
    with pytest.raises(UseCaseError) as reused:
        await registrations.confirm_contact(token)
    assert reused.value.code == "unknown_confirmation_token"


async def test_a_contact_confirmation_expires(
    registrations: RegistrationService, store: Store, clock: Clock
) -> None:
    await sold(store, clock, "LK-1")
    await registrations.register_customer("LK-1", STRANGER, None)
    token = store.events()[-1].envelope.data.confirmation_token
    clock.advance(days=7)
    with pytest.raises(UseCaseError) as expired:
        await registrations.confirm_contact(token)
    assert expired.value.code == "unknown_confirmation_token"
    assert store.entitlements["LK-1"].customer.email == "jana@mueller-logistik.example"


async def test_the_same_contact_registering_updates_its_details_at_once(
    registrations: RegistrationService, store: Store, clock: Clock
) -> None:
    await sold(store, clock, "LK-1")
    outcome = await registrations.register_customer("LK-1", CUSTOMER, None)
    assert not outcome.contact_pending
    entitlement = store.entitlements["LK-1"]
    assert (entitlement.customer.org_name, entitlement.pending_contact) == ("Müller GmbH", None)
    assert event_types(store) == ["entitlement.registered"]


@pytest.mark.parametrize(
    ("key", "code", "expected"),
    [
        ("LK-NOPE", None, "unknown_license_key"),
        ("LK-1", "7K3M-9QXE", "invalid_seller_code"),
        ("LK-1", "7K3M-9QXF", "unknown_seller_code"),
    ],
)
async def test_customer_registration_errors(
    registrations: RegistrationService,
    store: Store,
    clock: Clock,
    key: str,
    code: str | None,
    expected: str,
) -> None:
    await sold(store, clock, "LK-1")
    with pytest.raises(UseCaseError) as error:
        await registrations.register_customer(key, CUSTOMER, code)
    assert error.value.code == expected
    assert not store.outbox and store.entitlements["LK-1"].registration is None


async def test_a_customer_code_against_a_partner_sale_is_a_recorded_conflict(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    seller, seller_code_, _ = await enrol(partners, "Seller")
    other, other_code, _ = await enrol(partners, "Other")
    await sold(store, clock, "LK-1", partner_code=seller_code_)
    outcome = await registrations.register_customer("LK-1", CUSTOMER, other_code)
    assert outcome.partner_of_record.partner_id == seller  # type: ignore[union-attr]
    assert outcome.decision.outcome.value == "conflict"  # type: ignore[union-attr]
    [conflict] = store.conflicts.values()
    assert conflict.claimant_partner_id == other and conflict.via == "customer_registration"
    assert event_types(store) == ["entitlement.registered"]


async def test_late_seller_code_within_the_window_with_the_token(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    pid, code, _ = await enrol(partners)
    await sold(store, clock, "LK-1", "LK-2")
    token = (await registrations.register_customer("LK-1", CUSTOMER, None)).registration_token
    assert token
    with pytest.raises(UseCaseError) as wrong:
        await registrations.add_seller_code("LK-1", "ckr_wrong", code)
    assert wrong.value.kind == "unauthorized"
    clock.advance(days=89)
    outcome = await registrations.add_seller_code("LK-1", token, code)
    assert outcome.partner_of_record.partner_id == pid  # type: ignore[union-attr]
    with pytest.raises(UseCaseError) as twice:
        await registrations.add_seller_code("LK-1", token, code)
    assert twice.value.code == "seller_code_already_set"
    late = (await registrations.register_customer("LK-2", CUSTOMER, None)).registration_token
    clock.advance(days=90, seconds=1)
    with pytest.raises(UseCaseError) as closed:
        await registrations.add_seller_code("LK-2", late or "", code)
    assert closed.value.code == "seller_code_window_closed"


async def test_partner_registration_sets_then_refuses_another_partner(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    a, _, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1")
    outcome = await registrations.register_by_partner(a, "LK-1", None)
    assert outcome.first_time and outcome.entitlement.partner_of_record.partner_id == a  # type: ignore[union-attr]
    assert event_types(store) == ["entitlement.registered", "entitlement.attribution_changed"]
    with pytest.raises(UseCaseError) as refused:
        await registrations.register_by_partner(b, "LK-1", None)
    assert (refused.value.code, refused.value.kind) == ("attributed_elsewhere", "conflict")
    assert a not in refused.value.message and "A" not in refused.value.message
    [conflict] = store.conflicts.values()
    assert conflict.claimant_partner_id == b
    again = await registrations.register_by_partner(a, "LK-1", None)
    assert not again.first_time


async def test_a_partner_refused_twice_has_one_conflict_record(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    a, _, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1")
    await registrations.register_by_partner(a, "LK-1", None)
    for _ in range(2):
        clock.advance(minutes=1)
        with pytest.raises(UseCaseError):
            await registrations.register_by_partner(b, "LK-1", None)
    # Same claim, same id: recorded again (not as a new record), the later time kept.
    [conflict] = store.conflicts.values()
    assert conflict.recorded_at == clock.now


async def test_partner_registration_never_takes_a_licence_from_an_active_partner(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    """CONTRACT 6.9: not even one held by a (weaker) customer's seller code, nor after
    the window: 409, the PoR stays, the conflict goes to the operator queue."""
    a, code_a, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1")
    await registrations.register_customer("LK-1", CUSTOMER, code_a)
    before = len(store.events())
    for _ in range(2):
        with pytest.raises(UseCaseError) as refused:
            await registrations.register_by_partner(b, "LK-1", None)
        assert (refused.value.code, refused.value.kind) == ("attributed_elsewhere", "conflict")
        clock.advance(days=3 * 366)
    assert store.entitlements["LK-1"].partner_of_record.partner_id == a  # type: ignore[union-attr]
    assert len(store.events()) == before
    [conflict] = store.conflicts.values()
    assert (conflict.claimant_partner_id, conflict.reason) == (b, "attributed_elsewhere")


async def test_partner_registration_replaces_an_inactive_partner_of_record(
    registrations: RegistrationService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    a, code_a, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1")
    await registrations.register_customer("LK-1", CUSTOMER, code_a)
    await partners.update(a, PartnerChanges(status="terminated"))
    clock.advance(minutes=1)
    outcome = await registrations.register_by_partner(b, "LK-1", None)
    assert outcome.decision.reason == "partner_of_record_inactive"  # type: ignore[union-attr]
    assert store.entitlements["LK-1"].partner_of_record.partner_id == b  # type: ignore[union-attr]


# --- entitlements -----------------------------------------------------------------------


async def test_partner_sees_only_its_own_entitlements(
    entitlements: EntitlementService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    a, code_a, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1", "LK-2", partner_code=code_a)
    assert [e.license_key for e in await entitlements.list_for_partner(a)] == ["LK-1", "LK-2"]
    assert await entitlements.list_for_partner(b) == []
    assert (await entitlements.for_partner(a, "LK-1")).license_key == "LK-1"
    errors = []
    for who, key in ((b, "LK-1"), (b, "LK-NOPE")):
        with pytest.raises(UseCaseError) as error:
            await entitlements.for_partner(who, key)
        errors.append((error.value.kind, error.value.code, error.value.message))
    assert errors[0] == errors[1] == ("not_found", "not_found", "no such entitlement")


async def test_operator_reassignment_is_audited_and_emits(
    entitlements: EntitlementService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    a, code_a, _ = await enrol(partners, "A")
    b, _, _ = await enrol(partners, "B")
    await sold(store, clock, "LK-1", partner_code=code_a)
    await entitlements.reassign("LK-1", b, "customer asked")
    assert event_types(store) == ["entitlement.attribution_changed"]
    assert store.outbox[0].envelope.data.previous_partner_id == a
    await entitlements.reassign("LK-1", None, "fraud")
    view = await entitlements.for_admin("LK-1")
    assert [(c.kind, c.reason) for c in view.entitlement.attribution_history][-2:] == [
        ("reassign", "customer asked"),
        ("clear", "fraud"),
    ]
    assert [o.order_id for o in view.orders] == ["O-LK-1"]
    with pytest.raises(UseCaseError) as unknown:
        await entitlements.reassign("LK-1", "P-NOPE", "x")
    assert unknown.value.field == "partner_id"


def test_token_bucket_allows_the_rate_and_says_when_to_retry() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(30, clock=lambda: now[0])
    assert all(limiter.acquire("1.2.3.4") is None for _ in range(30))
    wait = limiter.acquire("1.2.3.4")
    assert wait is not None and 1.9 < wait <= 2.0
    assert limiter.retry_after_header(wait) == "2"
    assert limiter.acquire("5.6.7.8") is None  # per client
    now[0] += 2.0
    assert limiter.acquire("1.2.3.4") is None


def test_processed_orders_are_split_before_a_document_gets_too_big() -> None:
    import datetime as dt

    from services.registration.adapters.mongo import _chunks_by_size
    from services.registration.service_layer.unit_of_work import ProcessedOrder, StoredRecord

    big = [StoredRecord("t", b"k", b"x" * 1_000_000)]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records = [
        ProcessedOrder(f"O-{i}", f"e-{i}", "h", f"t:0:{i}", now, now, ["LK"], big)
        for i in range(10)
    ]
    chunks = _chunks_by_size(records)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert _chunks_by_size(records[:1]) == [records[:1]]
