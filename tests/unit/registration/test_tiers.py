"""Earned tiers (CONTRACT 6.4): rules, conversion, evaluation with grace, the partner's view."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.registration.domain.tiers import (
    Standing,
    Threshold,
    TierRules,
    TierRulesError,
    convert,
    decide_tier,
    next_tier_gap,
    parse_fx,
    qualifying_tier,
    window_start,
)
from services.registration.service_layer.errors import UseCaseError
from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import PartnerService
from services.registration.service_layer.tier_schedule import DailyTierEvaluation
from services.registration.service_layer.tiers import RefundEntry, TierService
from shared.events import PartnerUpdated
from tests.unit.chassis.test_leadership import FakeLease, Shared
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, Store, factory
from tests.unit.registration.tier_fakes import FakeTierStore

D = dt.date.fromisoformat

THRESHOLDS = {
    "platinum": Threshold(10_000_000, 5),
    "gold": Threshold(1_000_000, 2),
    "silver": Threshold(100_000, 1),
    "bronze": Threshold(0, 0),
}


def rules(**overrides: object) -> TierRules:
    fields: dict[str, object] = {
        "version": 1,
        "effective_from": at("2025-01-01T00:00:00Z"),
        "currency": "EUR",
        "fx": {"USD": Decimal("0.92"), "JPY": Decimal("0.0061")},
        "tiers": THRESHOLDS,
        "demotion_grace_days": 90,
    }
    fields.update(overrides)
    return TierRules(**fields)  # type: ignore[arg-type]


# --- domain -----------------------------------------------------------------------------


def test_thresholds_must_not_fall_as_tiers_rise_on_either_measure() -> None:
    with pytest.raises(TierRulesError) as revenue:
        rules(tiers={**THRESHOLDS, "gold": Threshold(50_000, 2)})
    assert revenue.value.field == "tiers.gold.min_revenue_minor"
    with pytest.raises(TierRulesError) as certified:
        rules(tiers={**THRESHOLDS, "platinum": Threshold(10_000_000, 1)})
    assert certified.value.field == "tiers.platinum.min_certified"
    with pytest.raises(TierRulesError) as missing:
        rules(tiers={k: v for k, v in THRESHOLDS.items() if k != "silver"})
    assert missing.value.field == "tiers.silver"
    with pytest.raises(TierRulesError) as too_big:
        rules(tiers={**THRESHOLDS, "platinum": Threshold(10**15 + 1, 5)})
    assert too_big.value.field == "tiers.platinum.min_revenue_minor"


@pytest.mark.parametrize("text", ["-1", "0", "1e3", "NaN", "0.9.2", "", " 1", "Infinity", "0.00"])
def test_bad_fx_strings_name_the_field(text: str) -> None:
    with pytest.raises(TierRulesError) as error:
        parse_fx(text, "fx.USD")
    assert error.value.field == "fx.USD"


def test_the_programme_currency_rate_is_one() -> None:
    with pytest.raises(TierRulesError) as error:
        rules(fx={"EUR": Decimal("0.9")})
    assert error.value.field == "fx.EUR"


def test_conversion_is_exact_with_minor_digits_and_rounds_once() -> None:
    r = rules()
    # 1.005 USD-cents worth: 100 USD cents = 92 EUR cents; 1 JPY = 0.0061 EUR = 0.61 cents.
    assert convert({"USD": 100}, r).amount_minor == 92
    assert convert({"JPY": 1000}, r).amount_minor == 610
    # Rounded once: 1 JPY (0.61) + 1 JPY (0.61) = 1.22 -> 1, each alone would give 1 + 1.
    assert convert({"JPY": 2}, r).amount_minor == 1
    # Half-even on the total: 0.5 -> 0, 1.5 -> 2.
    half = rules(fx={"USD": Decimal("0.5")})
    assert convert({"USD": 1}, half).amount_minor == 0
    assert convert({"USD": 3}, half).amount_minor == 2
    unknown = convert({"EUR": 100, "CHF": 5}, r)
    assert (unknown.amount_minor, unknown.unconverted) == (100, ("CHF",))


def test_highest_tier_met_on_both_measures_and_the_gap_to_the_next() -> None:
    r = rules()
    assert qualifying_tier(2_000_000, 1, r) == "silver"  # gold revenue, not gold certified
    assert qualifying_tier(2_000_000, 2, r) == "gold"
    assert qualifying_tier(-5, 0, r) == "bronze"
    gap = next_tier_gap("silver", 400_000, 1, r)
    assert gap is not None
    assert (gap.tier, gap.revenue_minor, gap.certified) == ("gold", 600_000, 1)
    assert next_tier_gap("platinum", 0, 0, r) is None


def test_window_is_twelve_calendar_months_with_the_day_clamped() -> None:
    assert window_start(at("2027-02-28T23:59:59.999Z")) == at("2026-02-28T23:59:59.999Z")
    assert window_start(at("2028-02-29T23:59:59.999Z")) == at("2027-02-28T23:59:59.999Z")


def test_promotion_at_once_demotion_after_grace_and_reset_when_qualified() -> None:
    promote = decide_tier("P", "silver", "gold", None, D("2027-01-01"), 90)
    assert (promote.kind, promote.new_tier) == ("promotion", "gold")
    first = decide_tier("P", "gold", "silver", None, D("2027-01-01"), 90)
    assert (first.kind, first.new_tier, first.below_since) == (
        "pending_demotion",
        None,
        D("2027-01-01"),
    )
    still = decide_tier("P", "gold", "silver", first.standing, D("2027-03-31"), 90)
    assert still.new_tier is None  # 89 days apart
    due = decide_tier("P", "gold", "bronze", still.standing, D("2027-04-01"), 90)
    assert (due.kind, due.new_tier) == ("demotion", "bronze")
    # An evaluation in between that finds it qualified starts the grace again.
    ok = decide_tier("P", "gold", "gold", first.standing, D("2027-02-01"), 90)
    assert ok.standing.below_since is None
    again = decide_tier("P", "gold", "silver", ok.standing, D("2027-04-01"), 90)
    assert again.new_tier is None and again.below_since == D("2027-04-01")
    # No grace: at once.
    assert decide_tier("P", "gold", "silver", None, D("2027-01-01"), 0).new_tier == "silver"
    assert decide_tier("P", "gold", "silver", Standing("P"), D("2027-01-01"), 90).new_tier is None


# --- use cases --------------------------------------------------------------------------


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2027-01-02T12:00:00Z"))


@pytest.fixture
def tier_store(store: Store) -> FakeTierStore:
    return FakeTierStore(store)


@pytest.fixture
def tiers(store: Store, clock: Clock, tier_store: FakeTierStore) -> TierService:
    return TierService(tier_store, factory(store), clock)


async def _rules(tiers: TierService, **overrides: object) -> None:
    body: dict[str, object] = {
        "effective_from": at("2025-01-01T00:00:00Z"),
        "currency": "EUR",
        "fx": {"USD": "0.92"},
        "tiers": THRESHOLDS,
        "demotion_grace_days": 90,
    }
    body.update(overrides)
    await tiers.add_rules(**body)  # type: ignore[arg-type]


async def _sell(store: Store, tiers: TierService, code: str, key: str, net: int, when: str) -> None:
    applier = OrderApplier(factory(store), Clock(at(when)), window_months=36)
    placed = order(f"O-{key}", line(key, net=net), channel="partner", partner_code=code)
    outcome = await applier.apply([incoming(placed, when)])
    await tiers.record_applied(outcome.records)


async def test_rules_are_versioned_and_never_start_before_the_latest(tiers: TierService) -> None:
    await _rules(tiers)
    await _rules(tiers, effective_from=at("2026-01-01T00:00:00Z"))
    book = await tiers.book()
    assert [r.version for r in book.versions] == [1, 2]
    with pytest.raises(UseCaseError) as error:
        await _rules(tiers, effective_from=at("2025-06-01T00:00:00Z"))
    assert (error.value.kind, error.value.field) == ("invalid", "effective_from")
    with pytest.raises(UseCaseError) as fx:
        await _rules(tiers, effective_from=at("2026-06-01T00:00:00Z"), fx={"USD": "abc"})
    assert fx.value.field == "fx.USD"


async def test_evaluation_promotes_from_por_revenue_less_refunds_and_is_idempotent(
    store: Store, clock: Clock, tiers: TierService, tier_store: FakeTierStore
) -> None:
    partners = PartnerService(factory(store), clock)
    pid, code, _ = await enrol(partners, tier="bronze", effective_at=at("2025-01-01T00:00:00Z"))
    other, _, _ = await enrol(
        partners, "Other", tier="silver", effective_at=at("2025-01-01T00:00:00Z")
    )
    await _rules(tiers)
    await _sell(store, tiers, code, "LK-1", 900_000, "2026-06-01T10:00:00Z")
    await _sell(store, tiers, code, "LK-2", 300_000, "2026-07-01T10:00:00Z")
    await _sell(store, tiers, code, "LK-OLD", 5_000_000, "2025-12-01T10:00:00Z")  # outside
    await tiers.record_refunds(
        [RefundEntry("R-1", "O-LK-2/1", "EUR", 100_000, at("2026-07-05T00:00:00Z"))]
    )
    for holder in ("Ana", "Ben"):
        await tiers.certify(
            pid, name="Secure Pro Engineer", holder=holder, expires_on=D("2027-06-30")
        )
    await tiers.certify(pid, name="Old", holder="Cy", expires_on=D("2026-12-31"))  # expired
    store.outbox.clear()

    preview = await tiers.evaluate(D("2027-01-01"), apply=False)
    assert sorted((c.partner_id, c.move.kind) for c in preview.changes) == sorted(
        [(pid, "promotion"), (other, "pending_demotion")]
    )
    assert store.outbox == [] and tier_store.evaluations == {}

    result = await tiers.evaluate(D("2027-01-01"), apply=True)
    assert (result.promotions, result.demotions) == (1, 0)
    (change,) = [c for c in result.changes if c.partner_id == pid]
    assert (change.revenue.amount_minor, change.certified, change.qualifies_for) == (
        1_100_000,
        2,
        "gold",
    )
    (event,) = store.events("partner.updated")
    data = event.envelope.data
    assert isinstance(data, PartnerUpdated)
    assert (data.tier, data.tier_reason) == ("gold", "evaluation")
    assert data.effective_at == at("2027-01-01T23:59:59.999Z")
    assert store.partners[pid].tier_at(at("2027-01-02T00:00:00Z")) == "gold"
    # The other partner (silver, no revenue) is found below its tier: pending, not moved.
    assert tier_store.below[other].below_since == D("2027-01-01")

    again = await tiers.evaluate(D("2027-01-01"), apply=True)
    assert again.promotions == 0 and len(store.events("partner.updated")) == 1
    with pytest.raises(UseCaseError) as error:
        await tiers.evaluate(D("2026-12-31"), apply=True)
    assert error.value.code == "evaluation_out_of_order"

    view = await tiers.partner_view(pid, D("2027-01-01"))
    assert (view.tier, view.qualifies_for, view.certified) == ("gold", "gold", 2)
    assert view.next_tier is not None
    assert (view.next_tier.tier, view.next_tier.revenue_minor, view.next_tier.certified) == (
        "platinum",
        8_900_000,
        3,
    )


async def test_demotion_only_after_the_grace_period(
    store: Store, clock: Clock, tiers: TierService
) -> None:
    partners = PartnerService(factory(store), clock)
    _pid, _, _ = await enrol(partners, tier="gold", effective_at=at("2025-01-01T00:00:00Z"))
    await _rules(tiers, demotion_grace_days=30)
    store.outbox.clear()
    assert (await tiers.evaluate(D("2027-01-01"), apply=True)).pending_demotions == 1
    assert (await tiers.evaluate(D("2027-01-30"), apply=True)).demotions == 0
    result = await tiers.evaluate(D("2027-01-31"), apply=True)
    assert result.demotions == 1
    (event,) = store.events("partner.updated")
    assert event.envelope.data.tier == "bronze"
    assert (await tiers.evaluate(D("2027-01-31"), apply=True)).demotions == 0


async def test_inactive_partners_are_not_evaluated_and_no_rules_is_a_conflict(
    store: Store, clock: Clock, tiers: TierService
) -> None:
    with pytest.raises(UseCaseError) as error:
        await tiers.evaluate(D("2027-01-01"), apply=True)
    assert error.value.code == "no_tier_rules"
    partners = PartnerService(factory(store), clock)
    pid, _, _ = await enrol(partners, tier="gold", effective_at=at("2025-01-01T00:00:00Z"))
    from services.registration.service_layer.partners import PartnerChanges

    await partners.update(
        pid, PartnerChanges(status="suspended", effective_at=at("2026-01-01T00:00:00Z"))
    )
    await _rules(tiers)
    assert (await tiers.evaluate(D("2027-01-01"), apply=True)).evaluated == 0


async def test_a_refund_before_its_order_still_counts(
    store: Store, clock: Clock, tiers: TierService
) -> None:
    partners = PartnerService(factory(store), clock)
    pid, code, _ = await enrol(partners, tier="bronze", effective_at=at("2025-01-01T00:00:00Z"))
    await _rules(tiers)
    await tiers.record_refunds(
        [RefundEntry("R-9", "O-LK-9/1", "EUR", 50_000, at("2026-06-02T00:00:00Z"))]
    )
    await _sell(store, tiers, code, "LK-9", 150_000, "2026-06-01T10:00:00Z")
    view = await tiers.partner_view(pid, D("2027-01-01"))
    assert view.revenue.amount_minor == 100_000
    # A refund issued after as_of does not count when that day is evaluated again.
    await tiers.record_refunds(
        [RefundEntry("R-10", "O-LK-9/1", "EUR", 100_000, at("2027-01-05T00:00:00Z"))]
    )
    assert (await tiers.partner_view(pid, D("2027-01-01"))).revenue.amount_minor == 100_000


async def test_certifications_are_counted_once_and_need_the_partner(
    store: Store, clock: Clock, tiers: TierService
) -> None:
    partners = PartnerService(factory(store), clock)
    pid, _, _ = await enrol(partners)
    _, new = await tiers.certify(pid, name="X", holder="Ana", expires_on=D("2027-06-30"))
    _, again = await tiers.certify(pid, name="X", holder="Ana", expires_on=D("2027-06-30"))
    assert (new, again) == (True, False)
    with pytest.raises(UseCaseError) as error:
        await tiers.certify("P-nobody", name="X", holder="Ana", expires_on=D("2027-06-30"))
    assert error.value.kind == "not_found"


def test_partner_event_carries_tier_reason_only_when_given(store: Store) -> None:
    assert "tier_reason" in PartnerUpdated.model_fields


async def test_the_daily_schedule_evaluates_finished_days_and_catches_up(
    store: Store, clock: Clock, tiers: TierService, tier_store: FakeTierStore
) -> None:
    schedule = DailyTierEvaluation(tiers, tier_store, clock, run_hour_utc=2, catch_up_days=3)
    assert await schedule.step() == 0  # no rules yet: nothing to do, no error
    await _rules(tiers)
    assert await schedule.step() == 1
    assert await tier_store.last_evaluation() == D("2027-01-01")
    assert await schedule.step() == 0
    clock.advance(days=10)
    assert await schedule.step() == 3
    assert await tier_store.last_evaluation() == D("2027-01-11")
    assert schedule.days_due(at("2027-01-12T01:00:00Z"), None) == [D("2027-01-10")]


async def test_two_replicas_under_one_lease_evaluate_once(
    clock: Clock, tiers: TierService, tier_store: FakeTierStore
) -> None:
    import asyncio

    from services.registration.service_layer.tier_schedule import run_daily

    await _rules(tiers)
    shared, stop = Shared(), asyncio.Event()
    runs: list[str] = []

    class Counting(DailyTierEvaluation):
        def __init__(self, owner: str) -> None:
            super().__init__(tiers, tier_store, clock, run_hour_utc=2, catch_up_days=3)
            self.owner = owner

        async def step(self) -> int:
            done = await super().step()
            runs.extend([self.owner] * done)
            return done

    replicas = [
        asyncio.create_task(
            run_daily(Counting(o), FakeLease(shared, o), stop=stop, idle_seconds=0.01)
        )
        for o in ("a", "b")
    ]
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*replicas)
    assert len(runs) == 1 and tier_store.evaluations.keys() == {D("2027-01-01")}
    assert shared.holder is None  # released on stop
