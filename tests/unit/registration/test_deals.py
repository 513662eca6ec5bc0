"""Deal registration (CONTRACT 6.3) on fakes: conflict, protection window, matching, expiry."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from services.registration.domain.deals import Deal, DealCustomer, expiry_cutoff
from services.registration.service_layer.deal_expiry import expiry_step
from services.registration.service_layer.deals import DealService, DealSubmission
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import PartnerChanges, PartnerService
from services.registration.service_layer.unit_of_work import StoredRecord
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, Store, factory

pytestmark = pytest.mark.unit

MUELLER = DealCustomer("C-881", "Müller Logistik GmbH", "jana@mueller-logistik.example", "DE")


def submission(
    customer: DealCustomer = MUELLER,
    product: str = "secure-pro",
    expected_close: dt.date = dt.date(2026, 3, 1),
) -> DealSubmission:
    return DealSubmission(customer, product, expected_close, 123457, "EUR")


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-01-01T09:00:00Z"))


@pytest.fixture
def partners(store: Store, clock: Clock) -> PartnerService:
    return PartnerService(factory(store), clock)


@pytest.fixture
def deals(store: Store, clock: Clock) -> DealService:
    return DealService(factory(store), clock, protection_days=90, products={"secure-pro"})


@pytest.fixture
def applier(store: Store, clock: Clock) -> OrderApplier:
    return OrderApplier(factory(store), clock, window_months=36)


def deal_events(store: Store) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.envelope.event_type, e.key, e.envelope.data.model_dump(mode="json"))
        for e in store.outbox
        if e.envelope.event_type.startswith("deal.")
    ]


def records(result: list[StoredRecord]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in result]


# --- domain ------------------------------------------------------------------------


def test_customers_match_by_id_when_both_give_one_else_by_email_any_case() -> None:
    assert MUELLER.matches("C-881", "someone@else.example")
    assert not MUELLER.matches("C-999", "jana@mueller-logistik.example")
    no_id = DealCustomer(None, "Müller", "Jana@Mueller-Logistik.EXAMPLE ", "DE")
    assert no_id.matches("C-123", "jana@mueller-logistik.example")
    assert not no_id.matches("C-123", "other@mueller-logistik.example")


def test_protection_runs_from_approval_for_the_days_given_end_excluded() -> None:
    deal = Deal(
        "D-1",
        "P-1",
        MUELLER,
        "secure-pro",
        dt.date(2026, 3, 1),
        1,
        "EUR",
        at("2026-01-01T00:00:00Z"),
    )
    approved = at("2026-01-02T10:00:00Z")
    assert not deal.protects("C-881", "x@y", "secure-pro", approved)  # not approved yet
    deal.approve(approved, 90)
    assert deal.protected_until == at("2026-04-02T10:00:00Z")
    assert not deal.protects("C-881", "x@y", "secure-pro", approved - dt.timedelta(seconds=1))
    assert deal.protects("C-881", "x@y", "secure-pro", approved)
    assert deal.protects("C-881", "x@y", "secure-pro", at("2026-04-02T09:59:59Z"))
    assert not deal.protects("C-881", "x@y", "secure-pro", at("2026-04-02T10:00:00Z"))
    assert not deal.protects("C-881", "x@y", "secure-team", approved)


def test_expiry_is_due_at_the_end_of_protection_and_happens_once() -> None:
    deal = Deal(
        "D-1",
        "P-1",
        MUELLER,
        "secure-pro",
        dt.date(2026, 3, 1),
        1,
        "EUR",
        at("2026-01-01T00:00:00Z"),
    )
    deal.approve(at("2026-01-02T10:00:00Z"), 90)
    assert not deal.expire(expiry_cutoff(dt.date(2026, 4, 1)))
    assert deal.expire(expiry_cutoff(dt.date(2026, 4, 2)))
    assert deal.status == "expired" and deal.closed_at == at("2026-04-02T10:00:00Z")
    assert not deal.expire(expiry_cutoff(dt.date(2026, 5, 1)))


# --- use cases ---------------------------------------------------------------------


async def test_submit_approve_and_the_events(
    deals: DealService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    p1, _, _ = await enrol(partners, "Nordlicht IT")
    deal = await deals.submit(p1, submission())
    assert deal.status == "submitted" and deal.deal_id.startswith("D-")
    clock.advance(days=1)
    approved = await deals.approve(deal.deal_id)
    assert approved.protected_until == at("2026-01-02T09:00:00Z") + dt.timedelta(days=90)
    assert [(t, k) for t, k, _ in deal_events(store)] == [
        ("deal.submitted", deal.deal_id),
        ("deal.approved", deal.deal_id),
    ]
    with pytest.raises(UseCaseError) as caught:
        await deals.approve(deal.deal_id)
    assert (caught.value.kind, caught.value.code) == ("conflict", "deal_not_pending")


async def test_another_partners_deal_for_a_protected_customer_is_rejected_at_once(
    deals: DealService, partners: PartnerService, store: Store, clock: Clock
) -> None:
    p1, _, _ = await enrol(partners, "Nordlicht IT")
    p2, _, _ = await enrol(partners, "Südwind Systems")
    first = await deals.submit(p1, submission())
    await deals.approve(first.deal_id)
    # The same customer by e-mail (another case, no id): a conflict.
    by_mail = DealCustomer(None, "Mueller", "JANA@mueller-logistik.example", "DE")
    second = await deals.submit(p2, submission(by_mail))
    assert (second.status, second.reason) == ("rejected", "deal_conflict")
    rejected = [d for t, _, d in deal_events(store) if t == "deal.rejected"]
    assert rejected and rejected[0]["reason"] == "deal_conflict"
    assert p1 not in json.dumps(rejected) and "Nordlicht" not in json.dumps(rejected)
    # The protecting partner itself, another product, or another customer: no conflict.
    assert (await deals.submit(p1, submission())).status == "submitted"
    other = DealCustomer("C-2", "Other AG", "it@other.example", "AT")
    assert (await deals.submit(p2, submission(other))).status == "submitted"
    # After protection ends, nothing protects the customer any more.
    clock.advance(days=90)
    assert (
        await deals.submit(p2, submission(expected_close=dt.date(2026, 6, 1)))
    ).status == "submitted"


async def test_a_submitted_deal_is_no_protection_and_approving_a_taken_one_is_a_conflict(
    deals: DealService, partners: PartnerService
) -> None:
    p1, _, _ = await enrol(partners, "Nordlicht IT")
    p2, _, _ = await enrol(partners, "Südwind Systems")
    a = await deals.submit(p1, submission())
    b = await deals.submit(p2, submission())
    assert b.status == "submitted"
    await deals.approve(a.deal_id)
    with pytest.raises(UseCaseError) as caught:
        await deals.approve(b.deal_id)
    assert (caught.value.kind, caught.value.code) == ("conflict", "deal_conflict")
    assert (await deals.reject(b.deal_id, "covered by another deal")).status == "rejected"


async def test_bad_input_names_the_field(
    deals: DealService, partners: PartnerService, applier: OrderApplier
) -> None:
    p1, _, _ = await enrol(partners)
    with pytest.raises(UseCaseError) as caught:
        await deals.submit(p1, submission(product="no-such-product"))
    assert (caught.value.kind, caught.value.code, caught.value.field) == (
        "invalid",
        "unknown_product",
        "product",
    )
    with pytest.raises(UseCaseError) as caught:
        await deals.submit(p1, submission(expected_close=dt.date(2025, 12, 31)))
    assert (caught.value.code, caught.value.field) == ("expected_close_in_past", "expected_close")
    # A product checkout has sold is known without the setting.
    await applier.apply([incoming(order("WEB-9", line("LK-9", product="backup-plus")))])
    assert (await deals.submit(p1, submission(product="backup-plus"))).status == "submitted"


async def test_a_partner_sees_its_own_deals_only(
    deals: DealService, partners: PartnerService
) -> None:
    p1, _, _ = await enrol(partners, "Nordlicht IT")
    p2, _, _ = await enrol(partners, "Südwind Systems")
    deal = await deals.submit(p1, submission())
    assert (await deals.for_partner(p1, deal.deal_id)).deal_id == deal.deal_id
    with pytest.raises(UseCaseError) as caught:
        await deals.for_partner(p2, deal.deal_id)
    assert (caught.value.kind, caught.value.code) == ("not_found", "unknown_deal")
    assert await deals.list(partner_id=p2) == []
    assert [d.deal_id for d in await deals.list(partner_id=p1)] == [deal.deal_id]


async def test_expiry_is_idempotent(
    deals: DealService, partners: PartnerService, store: Store
) -> None:
    p1, _, _ = await enrol(partners)
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)  # 2026-01-01T09:00Z + 90 days = 2026-04-01T09:00Z
    assert (await deals.expire(expiry_cutoff(dt.date(2026, 3, 31)))).expired == []
    assert (await deals.expire(expiry_cutoff(dt.date(2026, 4, 1)))).expired == [deal.deal_id]
    assert (await deals.expire(expiry_cutoff(dt.date(2026, 4, 1)))).expired == []
    expired = [(t, d) for t, _, d in deal_events(store) if t == "deal.expired"]
    assert len(expired) == 1 and expired[0][1]["status"] == "expired"


# --- orders ------------------------------------------------------------------------


async def test_a_direct_new_order_for_a_protected_customer_goes_to_the_deal_partner(
    deals: DealService, partners: PartnerService, applier: OrderApplier, store: Store
) -> None:
    p1, _, _ = await enrol(partners, "Nordlicht IT")
    _, other_code, _ = await enrol(partners, "Südwind Systems")
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)
    # Even with another partner's seller code typed at checkout: the deal is stronger.
    result = await applier.apply(
        [incoming(order("WEB-1", line("LK-1"), seller_code=other_code), "2026-02-01T10:00:00Z")]
    )
    events = records(result.records)
    won = [e for e in events if e["event_type"] == "deal.won"]
    assert len(won) == 1 and won[0]["data"]["order_id"] == "WEB-1"
    assert won[0]["data"]["status"] == "won"
    applied = next(e for e in events if e["event_type"] == "entitlement.order_applied")["data"]
    assert applied["partner"]["partner_id"] == p1
    assert applied["partner"]["source"] == "deal_registration"
    assert store.entitlements["LK-1"].partner_of_record.source == "deal_registration"  # type: ignore[union-attr]
    assert store.deals[deal.deal_id].status == "won"
    # Won once: a second new licence for the same customer is not the deal's.
    again = await applier.apply([incoming(order("WEB-2", line("LK-2")), "2026-02-02T10:00:00Z")])
    assert "deal.won" not in [e["event_type"] for e in records(again.records)]
    assert store.entitlements["LK-2"].partner_of_record is None


async def test_renewals_other_products_and_orders_outside_protection_leave_the_deal_open(
    deals: DealService, partners: PartnerService, applier: OrderApplier, store: Store
) -> None:
    p1, _, _ = await enrol(partners)
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)
    await applier.apply(
        [
            incoming(order("WEB-1", line("LK-1", "renewal")), "2026-02-01T10:00:00Z"),
            incoming(order("WEB-2", line("LK-2", product="secure-team")), "2026-02-01T10:00:00Z"),
            incoming(order("WEB-3", line("LK-3"), customer_id="C-2"), "2026-02-01T10:00:00Z"),
            incoming(order("WEB-4", line("LK-4")), "2026-04-01T09:00:00Z"),  # protection over
        ]
    )
    assert store.deals[deal.deal_id].status == "approved"
    assert all(e.partner_of_record is None for e in store.entitlements.values())


async def test_the_deal_partners_own_channel_sale_wins_it_another_resellers_does_not(
    deals: DealService, partners: PartnerService, applier: OrderApplier, store: Store
) -> None:
    p1, code1, _ = await enrol(partners, "Nordlicht IT")
    _, code2, _ = await enrol(partners, "Südwind Systems")
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)
    await applier.apply(
        [
            incoming(
                order("RS-1", line("LK-1"), channel="partner", partner_code=code2),
                "2026-02-01T10:00:00Z",
            )
        ]
    )
    assert store.deals[deal.deal_id].status == "approved"
    result = await applier.apply(
        [
            incoming(
                order("RS-2", line("LK-2"), channel="partner", partner_code=code1),
                "2026-02-02T10:00:00Z",
            )
        ]
    )
    assert store.deals[deal.deal_id].status == "won"
    assert store.entitlements["LK-2"].partner_of_record.source == "partner_sale"  # type: ignore[union-attr]
    assert "deal.won" in [e["event_type"] for e in records(result.records)]


async def test_an_inactive_deal_partner_gets_nothing(
    deals: DealService, partners: PartnerService, applier: OrderApplier, store: Store, clock: Clock
) -> None:
    p1, _, _ = await enrol(partners)
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)
    await partners.update(p1, PartnerChanges(status="suspended"))
    await applier.apply([incoming(order("WEB-1", line("LK-1")), "2026-02-01T10:00:00Z")])
    assert store.entitlements["LK-1"].partner_of_record is None
    assert store.deals[deal.deal_id].status == "approved"


# --- the scheduler -----------------------------------------------------------------


class FakeLease:
    name = "deal-expiry"
    ttl = dt.timedelta(hours=1)

    def __init__(self, held: bool) -> None:
        self.held = held
        self.asked = 0

    async def acquire(self) -> bool:
        self.asked += 1
        return self.held

    async def renew(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


async def test_the_scheduler_expires_as_of_now_under_its_lease(
    deals: DealService, partners: PartnerService, clock: Clock
) -> None:
    p1, _, _ = await enrol(partners)
    deal = await deals.submit(p1, submission())
    await deals.approve(deal.deal_id)
    clock.advance(days=90)  # exactly the end of protection: due
    assert await expiry_step(deals, FakeLease(held=False), clock) == 0  # another replica
    assert await expiry_step(deals, FakeLease(held=True), clock) == 1
    assert await expiry_step(deals, FakeLease(held=True), clock) == 0  # idempotent
