"""Customer self-service (CONTRACT 6.2) against in-memory fakes: sign-in, sessions, a
customer's licences, its partner of record and partners with access."""

from __future__ import annotations

import datetime as dt

import pytest

from services.registration.domain.customers import email_key
from services.registration.service_layer.customers import CustomerService
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import PartnerService
from shared.topics import REGISTRATION_CUSTOMERS, hashed_key
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, FakeCustomerStore, Store, factory

pytestmark = pytest.mark.unit

JANA = "Jana@Mueller-Logistik.example"  # the orders' contact, in another case
OTHER = "it@other.example"


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-03-01T12:00:00Z"))


@pytest.fixture
def customers(store: Store, clock: Clock) -> CustomerService:
    return CustomerService(factory(store), FakeCustomerStore(store), clock, window_months=36)


async def _sell(
    store: Store, clock: Clock, key: str, *, partner_code: str | None = None, email: str = ""
) -> None:
    placed = (
        order(f"O-{key}", line(key), channel="partner", partner_code=partner_code)
        if partner_code
        else order(f"O-{key}", line(key))
    )
    if email:
        placed = placed.model_copy(
            update={"customer": placed.customer.model_copy(update={"email": email})}
        )
    await OrderApplier(factory(store), clock, window_months=36).apply(
        [incoming(placed, "2026-02-01T00:00:00Z")]
    )
    store.outbox.clear()


async def _session(customers: CustomerService, store: Store, email: str) -> str:
    await customers.request_sign_in(email)
    event = store.events("customer.sign_in_requested")[-1]
    issued = await customers.start_session(event.envelope.data.token)  # type: ignore[attr-defined]
    session = await customers.authenticate(issued.session_token)
    assert session is not None
    return session.email_key


async def test_sign_in_mails_a_one_time_token_for_a_known_address_only(
    customers: CustomerService, store: Store, clock: Clock
) -> None:
    await _sell(store, clock, "LK-1")
    await customers.request_sign_in("nobody@unknown.example")
    assert store.events("customer.sign_in_requested") == []
    await customers.request_sign_in(JANA)
    [event] = store.events("customer.sign_in_requested")
    assert event.topic == REGISTRATION_CUSTOMERS
    assert event.key == hashed_key(JANA) == email_key("jana@mueller-logistik.example")
    data = event.envelope.data
    assert data.email == "jana@mueller-logistik.example"  # type: ignore[attr-defined]
    assert data.expires_at == clock.now + dt.timedelta(minutes=15)  # type: ignore[attr-defined]
    token = data.token  # type: ignore[attr-defined]
    issued = await customers.start_session(token)
    assert issued.expires_at == clock.now + dt.timedelta(hours=12)
    with pytest.raises(UseCaseError) as used:
        await customers.start_session(token)
    assert used.value.kind == "unauthorized"
    with pytest.raises(UseCaseError):
        await customers.start_session("cki_unknown")


async def test_a_sign_in_token_expires_and_so_does_a_session(
    customers: CustomerService, store: Store, clock: Clock
) -> None:
    await _sell(store, clock, "LK-1")
    await customers.request_sign_in(JANA)
    token = store.events("customer.sign_in_requested")[-1].envelope.data.token  # type: ignore[attr-defined]
    clock.advance(minutes=15)
    with pytest.raises(UseCaseError):
        await customers.start_session(token)
    await customers.request_sign_in(JANA)
    token = store.events("customer.sign_in_requested")[-1].envelope.data.token  # type: ignore[attr-defined]
    issued = await customers.start_session(token)
    clock.advance(hours=12)
    assert await customers.authenticate(issued.session_token) is None


async def test_a_customer_of_two_resellers_sees_both_and_nobody_elses(
    customers: CustomerService, store: Store, clock: Clock
) -> None:
    partners = PartnerService(factory(store), clock)
    _, code_a, _ = await enrol(partners, "Alpha IT")
    _, code_b, _ = await enrol(partners, "Bravo IT")
    await _sell(store, clock, "LK-A", partner_code=code_a)
    await _sell(store, clock, "LK-B", partner_code=code_b)
    await _sell(store, clock, "LK-X", email=OTHER)
    jana = await _session(customers, store, JANA)
    views = await customers.entitlements(jana)
    assert [v.entitlement.license_key for v in views] == ["LK-A", "LK-B"]
    assert [v.partner_of_record.display_name for v in views if v.partner_of_record] == [
        "Alpha IT",
        "Bravo IT",
    ]
    other = await _session(customers, store, OTHER)
    for attempt in (
        customers.end_partner_of_record(other, "LK-A"),
        customers.set_partner_of_record(other, "LK-A", code_b),
        customers.grant_access(other, "LK-A", code_b, "view"),
        customers.revoke_access(other, "LK-A", code_b),
    ):
        with pytest.raises(UseCaseError) as refused:
            await attempt
        assert (refused.value.kind, refused.value.code) == ("not_found", "unknown_license_key")


async def test_ending_and_setting_the_partner_of_record(
    customers: CustomerService, store: Store, clock: Clock
) -> None:
    partners = PartnerService(factory(store), clock)
    id_a, code_a, _ = await enrol(partners, "Alpha IT")
    id_b, code_b, _ = await enrol(partners, "Bravo IT")
    await _sell(store, clock, "LK-A", partner_code=code_a)
    jana = await _session(customers, store, JANA)
    store.outbox.clear()
    with pytest.raises(UseCaseError) as held:
        await customers.set_partner_of_record(jana, "LK-A", code_b)
    assert held.value.code == "partner_of_record_set"
    ended = await customers.end_partner_of_record(jana, "LK-A")
    assert ended.partner_of_record is None
    [changed] = store.events("entitlement.attribution_changed")
    assert changed.envelope.data.partner_of_record is None  # type: ignore[attr-defined]
    assert changed.envelope.data.previous_partner_id == id_a  # type: ignore[attr-defined]
    history = store.entitlements["LK-A"].attribution_history[-1]
    assert (history.kind, history.reason, history.via) == ("clear", "customer_removed", "customer")
    # A direct order now earns nobody.
    renewal = order("O-R", line("LK-A", "renewal", term=("2027-01-10", "2028-01-09")))
    outcome = await OrderApplier(factory(store), clock, window_months=36).apply(
        [incoming(renewal, "2026-03-02T00:00:00Z")]
    )
    applied = [r for r in outcome.records if b"entitlement.order_applied" in r.value]
    assert applied and b'"partner":null' in applied[0].value
    # A new claim, with no time limit.
    clock.advance(days=400)
    store.outbox.clear()
    jana = await _session(customers, store, JANA)
    set_ = await customers.set_partner_of_record(jana, "LK-A", code_b)
    assert set_.partner_of_record is not None
    assert set_.partner_of_record.seller_code == code_b
    por = store.entitlements["LK-A"].partner_of_record
    assert por is not None and (por.partner_id, por.source) == (id_b, "customer_registration")
    with pytest.raises(UseCaseError) as bad:
        await customers.set_partner_of_record(jana, "LK-A", "nonsense")
    assert (bad.value.kind, bad.value.field) == ("invalid", "seller_code")


async def test_access_is_granted_revoked_and_announced(
    customers: CustomerService, store: Store, clock: Clock
) -> None:
    partners = PartnerService(factory(store), clock)
    _id_a, code_a, _ = await enrol(partners, "Alpha IT")
    id_b, code_b, _ = await enrol(partners, "Bravo IT")
    await _sell(store, clock, "LK-A", partner_code=code_a)
    jana = await _session(customers, store, JANA)
    store.outbox.clear()
    view = await customers.grant_access(jana, "LK-A", code_b, "view")
    assert [(a.partner.display_name, a.permission) for a in view.partners_with_access] == [
        ("Bravo IT", "view")
    ]
    [updated] = store.events("entitlement.updated")
    access = updated.envelope.data.access  # type: ignore[attr-defined]
    assert [(a.partner_id, a.permission) for a in access] == [(id_b, "view")]
    # B sees it with relationship "access"; it may not change the contact with "view".
    [seen] = await customers.with_access(id_b, term_end_before=None, after=None, limit=10)
    assert (seen.relationship, seen.permission) == ("access", "view")
    with pytest.raises(UseCaseError) as forbidden:
        await customers.update_contact(id_b, "LK-A", "New", "new@mueller.example")
    assert forbidden.value.kind == "forbidden"
    # The PoR cannot also be a partner with access.
    with pytest.raises(UseCaseError) as por:
        await customers.grant_access(jana, "LK-A", code_a, "view")
    assert por.value.kind == "conflict"
    await customers.grant_access(jana, "LK-A", code_b, "manage")
    changed = await customers.update_contact(id_b, "LK-A", "Ole", "ole@mueller.example")
    assert changed.entitlement.customer.email == "ole@mueller.example"
    # A stranger partner learns nothing.
    _id_c, _, _ = await enrol(partners, "Charlie IT")
    with pytest.raises(UseCaseError) as nothing:
        await customers.update_contact(_id_c, "LK-A", "x", "x@x.example")
    assert nothing.value.kind == "not_found"
    # The contact moved to Ole: Jana's session no longer reaches the licence.
    with pytest.raises(UseCaseError):
        await customers.revoke_access(jana, "LK-A", code_b)
    ole = await _session(customers, store, "ole@mueller.example")
    store.outbox.clear()
    await customers.revoke_access(ole, "LK-A", code_b)
    [updated] = store.events("entitlement.updated")
    assert updated.envelope.data.access == []  # type: ignore[attr-defined]
    assert await customers.with_access(id_b, term_end_before=None, after=None, limit=10) == []
