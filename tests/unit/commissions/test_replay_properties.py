"""Hypothesis properties of the worker's use case: order-independence, replays, exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chassis.records import Inbound
from shared.envelope import parse_event
from shared.topics import COMMISSIONS_LEDGER
from tests.unit.commissions.events import Stream, order_applied, refund_issued
from tests.unit.commissions.test_ingest import World


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """Order lines on one topic, their refunds (some too big) on another, each in topic order."""
    orders, refunds = [], []
    for number in range(draw(st.integers(1, 4))):
        order_id = f"WEB-{number}"
        net = draw(st.integers(0, 10**7))
        tier = draw(st.sampled_from(["platinum", "gold", "silver", "bronze"]))
        parent = draw(st.sampled_from([None, "P-DIST"]))
        orders.append(("order", order_applied(order_id, net=net, tier=tier, parent=parent)))
        remaining = net
        for refund_no in range(draw(st.integers(0, 4))):
            amount = draw(st.integers(1, max(1, remaining + draw(st.sampled_from([0, 0, 0, 5])))))
            remaining = max(0, remaining - amount)
            refunds.append(
                ("refund", refund_issued(f"RF-{number}-{refund_no}", amount, order_id=order_id))
            )
    return orders, refunds


def merge(draw_pattern: list[bool], a: list[Inbound], b: list[Inbound]) -> list[Inbound]:
    left, right, merged = list(a), list(b), []
    for take_left in draw_pattern:
        if take_left and left:
            merged.append(left.pop(0))
        elif right:
            merged.append(right.pop(0))
    return merged + left + right


def batches(records: list[Inbound], sizes: list[int]) -> list[list[Inbound]]:
    out, start = [], 0
    for size in sizes:
        if start >= len(records):
            break
        out.append(records[start : start + size])
        start += size
    if start < len(records):
        out.append(records[start:])
    return out


def record_all(stream: Stream, items: list[tuple[str, object]]) -> list[Inbound]:
    return [stream.record(data) for _, data in items]  # type: ignore[arg-type]


async def run(world: World, groups: list[list[Inbound]]) -> list[bytes]:
    produced: list[bytes] = []
    for group in groups:
        result = await world.ingest.handle(group)
        produced.extend(record.value for record in result.produce)
    return produced


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    case=streams(),
    pattern=st.lists(st.booleans(), max_size=40),
    sizes=st.lists(st.integers(1, 6), max_size=20),
    crash_at=st.integers(0, 30),
    prefix=st.integers(0, 40),
)
def test_any_arrival_order_batching_crash_and_replayed_prefix_give_the_same_ledger(
    case: tuple[list[tuple[str, object]], list[tuple[str, object]]],
    pattern: list[bool],
    sizes: list[int],
    crash_at: int,
    prefix: int,
) -> None:
    orders, refunds = case

    async def scenario() -> None:
        # The reference: every order first, then the refunds one by one, in their order.
        reference = World()
        in_order = record_all(reference.stream, orders) + record_all(reference.stream, refunds)
        reference_output = await run(reference, [[r] for r in in_order])

        world = World()
        ordered = record_all(world.stream, orders)
        refund_records = record_all(world.stream, refunds)
        groups = batches(merge(pattern, ordered, refund_records), sizes)
        committed: list[bytes] = []
        for number, group in enumerate(groups):
            if number == crash_at:
                # Processed, then the worker died before its Kafka transaction committed.
                await world.ingest.handle(group)
            committed.extend(await run(world, [group]))

        assert world.order_lines.ledger() == reference.order_lines.ledger()
        # Finance sees each line exactly once: one event per line, nothing missing.
        event_ids = Counter(parse_event(COMMISSIONS_LEDGER, v).event_id for v in committed)
        assert all(count == 1 for count in event_ids.values())
        assert len(event_ids) == len(world.order_lines.ledger())
        assert sorted(committed) == sorted(reference_output)

        # Any prefix of the input delivered again changes nothing and announces nothing.
        everything = [r for group in groups for r in group]
        again = [world.stream.again(r) for r in everything[:prefix]]
        before = world.order_lines.ledger()
        assert await run(world, batches(again, sizes)) == []
        assert world.order_lines.ledger() == before

    asyncio.run(scenario())
