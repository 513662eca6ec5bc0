"""Orders in, entitlement state and records out: the order consumer's use case on fakes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from services.registration.service_layer.orders import OrderApplier
from services.registration.service_layer.partners import PartnerChanges, PartnerService
from services.registration.service_layer.unit_of_work import StoredRecord
from tests.unit.registration.builders import at, enrol, incoming, line, order
from tests.unit.registration.fakes import Clock, Store, factory


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2026-01-01T00:00:00Z"))


@pytest.fixture
def partners(store: Store, clock: Clock) -> PartnerService:
    return PartnerService(factory(store), clock)


@pytest.fixture
def applier(store: Store, clock: Clock) -> OrderApplier:
    return OrderApplier(factory(store), clock, window_months=36)


def events(records: list[StoredRecord]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def types(records: list[StoredRecord]) -> list[str]:
    return [e["event_type"] for e in events(records)]


async def test_a_new_line_creates_the_entitlement_without_a_partner(
    applier: OrderApplier, store: Store
) -> None:
    result = await applier.apply([incoming(order("WEB-1", line("LK-1")))])
    assert types(result.records) == ["entitlement.updated", "entitlement.order_applied"]
    applied = events(result.records)[-1]["data"]
    assert applied["partner"] is None and applied["partner_of_record"] is None
    assert applied["order"] == {
        "order_id": "WEB-1",
        "line_id": "1",
        "kind": "new",
        "sales_channel": "direct",
        "customer_id": "C-881",
        "net_amount_minor": 123457,
        "currency": "EUR",
        "occurred_at": "2026-01-10T09:00:00Z",
    }
    assert {r.key for r in result.records} == {b"LK-1"}
    assert store.entitlements["LK-1"].term_end == dt.date(2027, 1, 9)


async def test_a_partner_sale_sets_the_partner_of_record_with_tier_and_parent(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    dist, _, _ = await enrol(partners, "Distri", type="distributor", tier="platinum")
    pid, code, _ = await enrol(partners, parent=dist, customer_ids=("C-17",))
    result = await applier.apply(
        [incoming(order("P-1", line("LK-1"), channel="partner", partner_code=code.lower()))]
    )
    assert types(result.records) == [
        "entitlement.updated",
        "entitlement.attribution_changed",
        "entitlement.order_applied",
    ]
    changed, applied = events(result.records)[1:]
    assert changed["data"]["previous_partner_id"] is None
    assert applied["data"]["partner"] == {
        "partner_id": pid,
        "tier": "gold",
        "status": "active",
        "customer_ids": ["C-17"],
        "since": "2026-01-10T09:00:00Z",
        "source": "partner_sale",
        "parent": {"partner_id": dist, "status": "active"},
    }
    assert store.entitlements["LK-1"].partner_of_record.source == "partner_sale"  # type: ignore[union-attr]


async def test_order_applied_carries_the_tier_and_status_in_force_at_occurred_at(
    applier: OrderApplier, partners: PartnerService, clock: Clock
) -> None:
    dist, _, _ = await enrol(partners, "Distri", type="distributor")
    pid, code, _ = await enrol(partners, tier="silver", parent=dist)
    await applier.apply([incoming(order("P-1", channel="partner", partner_code=code))])
    # Gold from July on; the distributor suspended from March.
    await partners.update(pid, PartnerChanges(tier="gold", effective_at=at("2026-07-01T00:00:00Z")))
    await partners.update(
        dist, PartnerChanges(status="suspended", effective_at=at("2026-03-01T00:00:00Z"))
    )
    result = await applier.apply(
        [
            incoming(order("W-2", line(kind="upgrade")), "2026-05-01T00:00:00Z"),
            incoming(order("W-3", line(kind="renewal")), "2026-08-01T00:00:00Z"),
        ]
    )
    applied = [
        e["data"]["partner"]
        for e in events(result.records)
        if e["event_type"].endswith("order_applied")
    ]
    assert [(p["tier"], p["parent"]["status"]) for p in applied] == [
        ("silver", "suspended"),
        ("gold", "suspended"),
    ]


async def test_direct_seller_code_sets_when_free_and_is_a_conflict_against_a_sale(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    a, code_a, _ = await enrol(partners, "A")
    b, code_b, _ = await enrol(partners, "B")
    first = await applier.apply([incoming(order("W-1", line("LK-1"), seller_code=code_a))])
    assert store.entitlements["LK-1"].partner_of_record.source == "checkout_seller_code"  # type: ignore[union-attr]
    assert "entitlement.attribution_changed" in types(first.records)
    await applier.apply(
        [incoming(order("P-2", line("LK-2"), channel="partner", partner_code=code_a))]
    )
    second = await applier.apply(
        [
            incoming(
                order("W-3", line("LK-2", "renewal"), seller_code=code_b), "2026-02-01T00:00:00Z"
            )
        ]
    )
    # Same term as before, PoR unchanged: nothing but the order_applied.
    assert types(second.records) == ["entitlement.order_applied"]
    assert events(second.records)[-1]["data"]["partner"]["partner_id"] == a
    [conflict] = store.conflicts.values()
    assert (conflict.claimant_partner_id, conflict.partner_of_record.partner_id) == (b, a)
    assert store.processed["W-3"].lines[0]["attribution"] == "conflict"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("7K3M-9QXE", "invalid_seller_code"),
        ("zzzz", "invalid_seller_code"),
        (None, "unknown_seller_code"),
    ],
)
async def test_a_bad_seller_code_on_a_direct_order_is_ignored_and_the_order_applied(
    applier: OrderApplier, store: Store, code: str | None, reason: str
) -> None:
    unknown = "7K3M-9QXF"  # valid, but nobody has it here
    result = await applier.apply([incoming(order("W-1", seller_code=code or unknown))])
    assert not result.rejections and result.applied == 1
    assert result.seller_codes_ignored == {reason: 1}
    assert store.processed["W-1"].seller_code_outcome == reason
    assert store.entitlements["LK-1"].partner_of_record is None


async def test_an_inactive_partners_seller_code_is_ignored(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    pid, code, _ = await enrol(partners)
    await partners.update(
        pid, PartnerChanges(status="suspended", effective_at=at("2026-01-05T00:00:00Z"))
    )
    result = await applier.apply([incoming(order("W-1", seller_code=code))])
    assert result.seller_codes_ignored == {"partner_inactive": 1}
    assert store.entitlements["LK-1"].partner_of_record is None


async def test_partner_sale_with_unknown_or_invalid_code_is_rejected_and_changes_nothing(
    applier: OrderApplier, store: Store
) -> None:
    result = await applier.apply(
        [
            incoming(order("P-1", channel="partner", partner_code="7K3M-9QXF"), index=0),
            incoming(
                order("P-2", line("LK-2"), channel="partner", partner_code="7K3M-9QXE"), index=1
            ),
        ]
    )
    assert [(r.index, r.reason) for r in result.rejections] == [
        (0, "unknown_partner_code"),
        (1, "invalid_partner_code"),
    ]
    assert not result.records and not store.entitlements and not store.processed


async def test_duplicates_are_no_ops_and_a_changed_duplicate_is_rejected(
    applier: OrderApplier, store: Store
) -> None:
    placed = order("W-1")
    await applier.apply([incoming(placed, event_id="e-1")])
    same_event = await applier.apply([incoming(placed, event_id="e-1")])
    same_order = await applier.apply([incoming(placed, event_id="e-2")])
    assert not same_event.records and not same_order.records
    assert same_event.duplicates == same_order.duplicates == 1
    changed = order("W-1", line(net=1))
    conflicting = await applier.apply([incoming(changed, event_id="e-3", index=0)])
    assert [r.reason for r in conflicting.rejections] == ["conflicting_duplicate_order"]
    assert len(store.processed) == 1


async def test_a_reused_event_id_with_other_data_is_rejected_not_dropped(
    applier: OrderApplier, store: Store
) -> None:
    await applier.apply([incoming(order("W-1"), event_id="e-1")])
    reused = await applier.apply([incoming(order("W-2", line("LK-2")), event_id="e-1", index=0)])
    assert [r.reason for r in reused.rejections] == ["conflicting_duplicate_event"]
    assert "e-1" in reused.rejections[0].detail and not reused.records
    assert len(store.processed) == 1


async def test_duplicates_inside_one_batch(applier: OrderApplier) -> None:
    placed = order("W-1")
    result = await applier.apply(
        [
            incoming(placed, event_id="e-1", index=0),
            incoming(placed, event_id="e-1", index=1),
            incoming(order("W-1", line(net=5)), event_id="e-2", index=2),
        ]
    )
    assert result.applied == 1 and result.duplicates == 1
    assert [r.index for r in result.rejections] == [2]


async def test_a_replay_at_the_same_position_produces_the_same_records(
    applier: OrderApplier, partners: PartnerService
) -> None:
    _, code, _ = await enrol(partners)
    first_in = incoming(order("P-1", channel="partner", partner_code=code), position="t:0:7")
    first = await applier.apply([first_in])
    again = await applier.apply([first_in])
    assert again.records == first.records and again.replayed == 1
    ids = {e["event_id"] for e in events(first.records)}
    assert len(ids) == len(first.records)


async def test_two_orders_for_one_entitlement_in_one_batch_chain(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    a, code_a, _ = await enrol(partners, "A")
    b, code_b, _ = await enrol(partners, "B")
    result = await applier.apply(
        [
            incoming(order("P-1", channel="partner", partner_code=code_a), "2026-01-10T09:00:00Z"),
            incoming(
                order(
                    "P-2",
                    line(kind="renewal", term=("2027-01-10", "2028-01-09")),
                    channel="partner",
                    partner_code=code_b,
                ),
                "2027-01-05T10:00:00Z",
            ),
        ]
    )
    changes = [
        e["data"]["previous_partner_id"]
        for e in events(result.records)
        if e["event_type"].endswith("attribution_changed")
    ]
    assert changes == [None, a]
    entitlement = store.entitlements["LK-1"]
    assert entitlement.partner_of_record.partner_id == b  # type: ignore[union-attr]
    assert entitlement.term_end == dt.date(2028, 1, 9)
    assert entitlement.version == 1  # one write for the whole batch


async def test_a_same_partner_sale_refreshes_since_and_says_updated(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    _, code, _ = await enrol(partners)
    await applier.apply([incoming(order("P-1", channel="partner", partner_code=code))])
    result = await applier.apply(
        [
            incoming(
                order(
                    "P-2",
                    line(kind="renewal", term=("2026-01-10", "2027-01-09")),
                    channel="partner",
                    partner_code=code,
                ),
                "2028-06-01T00:00:00Z",
            )
        ]
    )
    assert types(result.records) == ["entitlement.updated", "entitlement.order_applied"]
    assert store.entitlements["LK-1"].partner_of_record.since == at("2028-06-01T00:00:00Z")  # type: ignore[union-attr]


async def test_expired_attribution_is_replaced_by_a_weaker_claim(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    _, code_a, _ = await enrol(partners, "A")
    b, code_b, _ = await enrol(partners, "B")
    await applier.apply(
        [incoming(order("P-1", channel="partner", partner_code=code_a), "2023-01-15T00:00:00Z")]
    )
    result = await applier.apply(
        [incoming(order("W-2", line(kind="renewal"), seller_code=code_b), "2026-01-15T00:00:00Z")]
    )
    applied = events(result.records)[-1]["data"]
    assert applied["partner"]["partner_id"] == b
    assert store.processed["W-2"].lines[0]["reason"] == "window_expired"


async def test_a_multi_line_order_emits_per_line(applier: OrderApplier) -> None:
    result = await applier.apply([incoming(order("W-1", line("LK-1"), line("LK-2", line_id="2")))])
    applied = [e for e in events(result.records) if e["event_type"].endswith("order_applied")]
    assert [(e["data"]["license_key"], e["data"]["order"]["line_id"]) for e in applied] == [
        ("LK-1", "1"),
        ("LK-2", "2"),
    ]


async def test_an_order_lines_conflict_is_recorded_once_whatever_the_redelivery(
    applier: OrderApplier, partners: PartnerService, store: Store
) -> None:
    _, code_a, _ = await enrol(partners, "A")
    b, code_b, _ = await enrol(partners, "B")
    await applier.apply(
        [incoming(order("P-1", line("LK-1"), channel="partner", partner_code=code_a))]
    )
    weaker = incoming(
        order("W-2", line("LK-1", "renewal"), seller_code=code_b),
        "2026-02-01T00:00:00Z",
        position="orders:0:900",
    )
    await applier.apply([weaker])
    [conflict] = store.conflicts.values()
    assert conflict.claimant_partner_id == b
    # The conflict is inserted as new (the fake, like the database, refuses a known
    # id inserted again): a replay and a redelivery elsewhere apply nothing again.
    replay = await applier.apply([weaker])
    moved = await applier.apply([dataclasses.replace(weaker, position="orders:0:901")])
    assert (replay.replayed, moved.duplicates) == (1, 1)
    assert list(store.conflicts) == [conflict.conflict_id]
