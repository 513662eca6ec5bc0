"""The checkout simulator: valid events, deterministic by seed, the mix it promises."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from devkit.simulate import Simulator
from shared import seller_code
from shared.envelope import encode, parse_event
from shared.events import NoticePublished, OrderPlaced, RefundIssued
from shared.topics import CHECKOUT_ORDERS, CHECKOUT_REFUNDS, VENDOR_NOTICES

CODES = [seller_code.generate(), seller_code.generate()]


def stream(seed: int, orders: int = 400) -> list[tuple[str, bytes]]:
    simulator = Simulator(seed=seed, partner_codes=CODES, refund_share=0.1)
    return [(topic, encode(envelope)) for topic, envelope in simulator.events(orders)]


def test_every_event_is_valid_on_its_topic() -> None:
    for topic, raw in stream(3):
        parse_event(topic, raw)


def test_the_same_seed_gives_the_same_stream_and_another_seed_does_not() -> None:
    assert stream(11) == stream(11)
    assert stream(11) != stream(12)


def test_the_mix_has_channels_kinds_currencies_typos_and_refunds() -> None:
    events = [(t, parse_event(t, raw).data) for t, raw in stream(5, orders=600)]
    orders = [d for t, d in events if t == CHECKOUT_ORDERS and isinstance(d, OrderPlaced)]
    refunds = [d for t, d in events if t == CHECKOUT_REFUNDS and isinstance(d, RefundIssued)]
    assert len(orders) == 600
    kinds = Counter(line.kind for order in orders for line in order.lines)
    assert set(kinds) == {"new", "renewal", "upgrade"}
    assert {o.sales_channel for o in orders} == {"direct", "partner"}
    assert {o.storefront for o in orders} >= {"web", "retail"}
    assert {"EUR", "JPY", "BHD"} <= {o.currency for o in orders}
    typed = [o.seller_code for o in orders if o.seller_code]
    assert typed, "some direct orders carry a seller code"
    typos = [code for code in typed if not seller_code.is_valid(code)]
    assert 0 < len(typos) < len(typed)
    assert all(o.partner_code in CODES for o in orders if o.sales_channel == "partner")
    by_order = {o.order_id: o for o in orders}
    assert refunds
    for refund in refunds:
        line = by_order[refund.order_id].lines[0]
        assert 0 < refund.amount_minor <= line.net_amount_minor
        assert refund.currency == by_order[refund.order_id].currency


def test_a_product_notice_is_valid_and_deterministic() -> None:
    from devkit.simulate import NOTICE_KINDS, notice_event

    at = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)
    for kind in NOTICE_KINDS:
        topic, envelope = notice_event(kind, ["secure-pro", "secure-team"], 7, at)
        assert topic == VENDOR_NOTICES
        parsed = parse_event(topic, encode(envelope))
        assert isinstance(parsed.data, NoticePublished) and parsed.data.kind == kind
        assert parsed.data.products == ["secure-pro", "secure-team"]
        again = notice_event(kind, ["secure-pro", "secure-team"], 7, at)[1]
        assert encode(again) == encode(envelope)
