"""CONTRACT 6.1 in the notification rules: the reminder pass follows each PoR's renewal mode
in force at `as_of`; a `partner_first` reminder names its own partner and nobody else."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Sequence

import pytest

from services.notifications.adapters.rendering import Renderer
from services.notifications.domain import isolation, rules
from services.notifications.domain.messages import compose
from services.notifications.domain.model import (
    Entitlement,
    Partner,
    PartnerTerms,
    PlannedDelivery,
    RenewalMode,
)
from services.notifications.service_layer.reminders import ReminderPass, end_of_day
from tests.unit.notifications.builders import (
    ALPENTECH,
    JANA,
    NORDLICHT,
    OCCURRED,
    VENDOR,
    entitlement,
)
from tests.unit.notifications.fakes import (
    FakeClock,
    FakeCounters,
    FakeDeliveries,
    FakeProjections,
    FakeWebhooks,
)

AS_OF = dt.date(2027, 10, 11)
TERM_END = {90: dt.date(2028, 1, 9), 30: dt.date(2027, 11, 10), 7: dt.date(2027, 10, 18)}


def in_mode(partner: Partner, mode: RenewalMode, **changes: object) -> Partner:
    return dataclasses.replace(partner, renewal_mode=mode, **changes)  # type: ignore[arg-type]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the mode in force -----------------------------------------------------------------


def test_the_mode_in_force_follows_the_history_and_the_status_at_as_of() -> None:
    history = (
        PartnerTerms(at("2026-01-01T00:00:00Z"), "active", "partner_first"),
        PartnerTerms(at("2027-06-01T00:00:00Z"), "active", "partner_only"),
        PartnerTerms(at("2027-09-01T00:00:00Z"), "suspended", "partner_only"),
        PartnerTerms(at("2027-12-01T00:00:00Z"), "active", "vendor_direct"),
    )
    partner = dataclasses.replace(NORDLICHT, terms=history, renewal_mode="vendor_direct")
    mode = rules.renewal_mode_in_force
    assert mode(partner, at("2025-01-01T00:00:00Z")) == "partner_first"  # before: the first
    assert mode(partner, at("2027-05-31T23:59:59Z")) == "partner_first"
    assert mode(partner, at("2027-06-01T00:00:00Z")) == "partner_only"
    assert mode(partner, at("2027-10-01T00:00:00Z")) == "vendor_direct"  # suspended then
    assert mode(partner, at("2028-01-01T00:00:00Z")) == "vendor_direct"
    assert mode(None, at("2027-10-01T00:00:00Z")) == "vendor_direct"  # no PoR
    # No history stored (a projection from before CONTRACT 6.1): as last described.
    assert mode(NORDLICHT, OCCURRED) == "partner_first"
    assert mode(dataclasses.replace(NORDLICHT, status="terminated"), OCCURRED) == "vendor_direct"


# --- planning per mode --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "offsets"),
    [("vendor_direct", {90, 30, 7}), ("partner_first", {30, 7}), ("partner_only", set())],
)
def test_customer_reminders_per_mode(mode: RenewalMode, offsets: set[int]) -> None:
    due = [entitlement("LK-1", NORDLICHT)]
    planned = {
        offset
        for offset in (90, 30, 7)
        if rules.plan_reminders(due, offset, AS_OF, OCCURRED, {NORDLICHT.partner_id: mode})
    }
    assert planned == offsets
    for plan in rules.plan_reminders(due, 30, AS_OF, OCCURRED, {NORDLICHT.partner_id: mode}):
        assert plan.facts["steer_to_partner"] is (mode == "partner_first")
        assert plan.facts["renewal_mode"] == mode


def test_a_scope_without_a_mode_or_a_partner_follows_vendor_direct() -> None:
    due = [entitlement("LK-1", NORDLICHT), entitlement("LK-2", None)]
    at_90 = rules.plan_reminders(due, 90, AS_OF, OCCURRED, {})
    assert sorted(p.partner_scope or "-" for p in at_90) == ["-", NORDLICHT.partner_id]
    assert not any(p.facts["steer_to_partner"] for p in at_90)
    # The same licences and offset: the same notification ids as before modes existed.
    before = {p.notification_id for p in rules.plan_reminders(due, 90, AS_OF, OCCURRED)}
    assert before == {p.notification_id for p in at_90}


def test_one_customer_of_two_partners_in_different_modes() -> None:
    due = [entitlement("LK-N", NORDLICHT), entitlement("LK-A", ALPENTECH)]
    modes: dict[str, RenewalMode] = {
        NORDLICHT.partner_id: "partner_first",
        ALPENTECH.partner_id: "partner_only",
    }
    assert rules.plan_reminders(due, 90, AS_OF, OCCURRED, modes) == []
    [at_30] = rules.plan_reminders(due, 30, AS_OF, OCCURRED, modes)
    assert at_30.partner_scope == NORDLICHT.partner_id and at_30.license_keys == ["LK-N"]


def test_the_second_opportunity_has_its_own_subject_and_offset() -> None:
    due = [entitlement("LK-1", NORDLICHT, term_end=TERM_END[30])]
    [first] = rules.plan_renewal_opportunities(
        NORDLICHT.partner_id, due, AS_OF, OCCURRED, ["email"], renewal_mode="partner_only"
    )
    [second] = rules.plan_renewal_opportunities(
        NORDLICHT.partner_id,
        due,
        AS_OF,
        OCCURRED,
        ["email"],
        offset=30,
        renewal_mode="partner_only",
    )
    assert first.facts["offset_days"] == 90 and second.facts["offset_days"] == 30
    assert first.notification_id != second.notification_id
    assert rules.opportunity_offsets("partner_only") == (90, 30)
    assert rules.opportunity_offsets("partner_first") == (90,)


# --- composing and rendering ----------------------------------------------------------------


def _steered(partner: Partner) -> PlannedDelivery:
    due = [entitlement("LK-N", partner)]
    [plan] = rules.plan_reminders(due, 30, AS_OF, OCCURRED, {partner.partner_id: "partner_first"})
    return plan


@pytest.mark.parametrize("co_brand", [True, False])
def test_a_partner_first_reminder_names_its_partner_and_offers_renewing_direct(
    co_brand: bool,
) -> None:
    nordlicht = dataclasses.replace(NORDLICHT, co_brand_customer_messages=co_brand)
    plan = dataclasses.replace(
        _steered(nordlicht), related_partner_ids=(NORDLICHT.partner_id, ALPENTECH.partner_id)
    )
    partners = {p.partner_id: p for p in (nordlicht, ALPENTECH)}
    message = compose(plan, partners, VENDOR)
    assert message.steer_to == nordlicht
    assert message.branding.is_partner is co_brand
    rendered = Renderer(VENDOR).render(message, advisory=None, unsubscribe_url="https://u.example")
    for part in (rendered.text, rendered.html):
        assert "renew with your partner" in part.replace("\n", " ")
        assert "Nordlicht IT" in part and "+49 30 1234567" in part
        assert "https://nordlicht-it.example" in part
        assert "renew directly with Channelkeep Software" in part.replace("\n", " ")
        assert "Alpentech" not in part
    assert isolation.violations(message, rendered.parts(), partners.values()) == []


def test_a_vendor_direct_reminder_names_no_partner_unless_co_branded() -> None:
    vendor_branded = dataclasses.replace(NORDLICHT, co_brand_customer_messages=False)
    [plan] = rules.plan_reminders(
        [entitlement("LK-N", NORDLICHT)],
        30,
        AS_OF,
        OCCURRED,
        {NORDLICHT.partner_id: "vendor_direct"},
    )
    message = compose(plan, {NORDLICHT.partner_id: vendor_branded}, VENDOR)
    assert message.steer_to is None and message.named_partner_ids == frozenset()
    rendered = Renderer(VENDOR).render(message, advisory=None, unsubscribe_url=None)
    assert "Nordlicht" not in rendered.text and "Renew online" in rendered.text


def test_a_partner_no_longer_active_at_send_time_is_not_named_after_all() -> None:
    suspended = dataclasses.replace(NORDLICHT, status="suspended")
    message = compose(_steered(NORDLICHT), {NORDLICHT.partner_id: suspended}, VENDOR)
    assert message.steer_to is None and message.named_partner_ids == frozenset()
    rendered = Renderer(VENDOR).render(message, advisory=None, unsubscribe_url=None)
    assert "Nordlicht" not in rendered.text and "Renew online" in rendered.text


@pytest.mark.parametrize(
    ("mode", "offset", "says"),
    [
        ("partner_only", 90, "you hear from us again 30 days before the end"),
        ("partner_only", 30, "This is your second notice"),
        ("partner_first", 90, "names you as the one to renew"),
        ("vendor_direct", 90, "Your customers receive their own reminder today"),
    ],
)
def test_the_opportunity_says_what_the_customer_gets(
    mode: RenewalMode, offset: int, says: str
) -> None:
    [plan] = rules.plan_renewal_opportunities(
        NORDLICHT.partner_id,
        [entitlement("LK-N", NORDLICHT)],
        AS_OF,
        OCCURRED,
        ["email"],
        offset=offset,
        renewal_mode=mode,
    )
    message = compose(plan, {NORDLICHT.partner_id: NORDLICHT}, VENDOR)
    rendered = Renderer(VENDOR).render(message, advisory=None, unsubscribe_url=None)
    assert says in rendered.text.replace("\n", " ")
    assert says.split(" ")[-1] in rendered.html


# --- the pass ---------------------------------------------------------------------------------


class FakeSource:
    def __init__(self, entitlements: Sequence[Entitlement]) -> None:
        self.entitlements = list(entitlements)
        self.opportunity_reads: list[tuple[dt.date, tuple[str, ...] | None]] = []

    async def due_on(self, term_end: dt.date) -> AsyncIterator[Entitlement]:
        due = [e for e in self.entitlements if e.term_end == term_end]
        for e in sorted(due, key=lambda e: (e.customer.contact_id, e.partner_of_record or "")):
            yield e

    async def opportunities_on(
        self, term_end: dt.date, partner_ids: Sequence[str] | None = None
    ) -> AsyncIterator[Entitlement]:
        self.opportunity_reads.append((term_end, tuple(partner_ids) if partner_ids else None))
        due = [
            e
            for e in self.entitlements
            if e.term_end == term_end
            and e.partner_of_record is not None
            and (partner_ids is None or e.partner_of_record in partner_ids)
        ]
        for e in sorted(due, key=lambda e: (e.partner_of_record or "", e.license_key)):
            yield e


class FakeRuns:
    async def record(self, as_of: dt.date, planned: int, now: dt.datetime) -> None:
        return None


def _pass(source: FakeSource, partners: Sequence[Partner]) -> tuple[ReminderPass, FakeDeliveries]:
    deliveries = FakeDeliveries()
    reminder_pass = ReminderPass(
        source=source,
        partners=FakeProjections(partners),
        deliveries=deliveries,
        webhooks=FakeWebhooks(),
        runs=FakeRuns(),
        clock=FakeClock(OCCURRED),
        counters=FakeCounters(),
    )
    return reminder_pass, deliveries


async def test_the_pass_follows_each_partners_mode_at_as_of() -> None:
    first = in_mode(NORDLICHT, "partner_first")
    only = in_mode(ALPENTECH, "partner_only")
    direct = in_mode(
        dataclasses.replace(ALPENTECH, partner_id="P-DIRE03", display_name="Direkt"),
        "vendor_direct",
    )
    # Became partner_only only after as_of: still partner_first for this pass.
    later = in_mode(
        dataclasses.replace(NORDLICHT, partner_id="P-LATE04", display_name="Later"),
        "partner_only",
        terms=(
            PartnerTerms(at("2026-01-01T00:00:00Z"), "active", "partner_first"),
            PartnerTerms(at("2027-12-01T00:00:00Z"), "active", "partner_only"),
        ),
    )
    suspended = in_mode(
        dataclasses.replace(NORDLICHT, partner_id="P-SUSP05", display_name="Paused"),
        "partner_only",
        status="suspended",
    )
    partners = [first, only, direct, later, suspended]
    entitlements = []
    for offset, term_end in TERM_END.items():
        for partner in [*partners, None]:
            suffix = partner.partner_id if partner else "NONE"
            entitlements.append(entitlement(f"LK-{offset}-{suffix}", partner, term_end=term_end))
    # An unknown PoR (its partner.* event not read yet): vendor_direct, names nobody.
    entitlements.append(
        dataclasses.replace(
            entitlement("LK-90-UNKNOWN", None, term_end=TERM_END[90]), partner_of_record="P-UNKN06"
        )
    )
    source = FakeSource(entitlements)
    reminder_pass, deliveries = _pass(source, partners)
    summary = await reminder_pass.run(AS_OF)

    records = [s.planned for s in deliveries.records.values()]
    reminders = {
        (p.facts["offset_days"], p.partner_scope or "-", p.facts["steer_to_partner"])
        for p in records
        if p.type == "renewal_reminder"
    }
    expected = set()
    for offset in (90, 30, 7):
        expected |= {(offset, "-", False), (offset, direct.partner_id, False)}
        expected |= {(offset, suspended.partner_id, False)}
        if offset != 90:
            expected |= {(offset, first.partner_id, True), (offset, later.partner_id, True)}
    expected.add((90, "P-UNKN06", False))
    assert reminders == expected
    opportunities = sorted(
        (p.recipient, p.facts["offset_days"], p.facts["renewal_mode"])
        for p in records
        if p.type == "renewal_opportunity"
    )
    assert opportunities == sorted(
        [
            (first.partner_id, 90, "partner_first"),
            (only.partner_id, 90, "partner_only"),
            (only.partner_id, 30, "partner_only"),
            (direct.partner_id, 90, "vendor_direct"),
            (later.partner_id, 90, "partner_first"),
            (suspended.partner_id, 90, "vendor_direct"),
            ("P-UNKN06", 90, "vendor_direct"),
        ]
    )
    # The second read of the -30 licences asks for the partner_only partners alone.
    assert source.opportunity_reads == [(TERM_END[90], None), (TERM_END[30], (only.partner_id,))]
    assert summary.considered == len(entitlements)

    again = await reminder_pass.run(AS_OF)
    assert again.new == 0 and again.planned == summary.planned
    assert end_of_day(AS_OF).date() == AS_OF
    assert JANA.contact_id
