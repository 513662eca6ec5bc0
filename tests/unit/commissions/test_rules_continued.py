"""CONTRACT 6.5 on the domain and fakes: override precedence, adjustments, minimum payout.

Hypothesis properties: overrides never change a line whose most specific entry is
the tier table; a statement's sum, carried-forward lines included, is the sum of
its ledger lines; replaying the ledger topic's events gives the same statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.commissions.domain.decisions import Policy, decide_commission
from services.commissions.domain.order_line import LedgerLine, Source
from services.commissions.domain.periods import Month
from services.commissions.domain.rates import (
    DEFAULT_RATE_TABLE,
    RateBook,
    RateOverride,
    RateTableError,
)
from services.commissions.domain.statements import (
    below_minimum,
    carried_forward,
    on_statement,
    replayed,
    totals,
)
from services.commissions.service_layer.adjustments import (
    AdjustmentError,
    AdjustmentRequest,
    Adjustments,
    IdempotencyConflictError,
)
from services.commissions.service_layer.lifecycle import LedgerLifecycle
from services.commissions.service_layer.queries import LedgerQueries
from services.commissions.service_layer.translate import line_from_event
from shared.envelope import parse_event
from shared.events import CommissionLine
from shared.ids import adjustment_line_id
from shared.topics import COMMISSIONS_LEDGER
from tests.unit.commissions.builders import at, order, partner
from tests.unit.commissions.events import order_applied, refund_issued
from tests.unit.commissions.fakes import FakeHorizon, FakeOutbox, FakeTransitions, FixedClock
from tests.unit.commissions.test_ingest import World

START = at("2027-03-01T00:00:00Z")
MARCH = at("2027-03-01T08:00:00Z")
MINIMUM = {"EUR": 5000, "USD": 5000, "GBP": 5000, "JPY": 500}


def entry(
    position: int,
    *,
    partner_id: str | None = None,
    product: str | None = None,
    kind: Any = None,
    bps: int = 100,
    start: dt.datetime = START,
    version: int = 1,
) -> RateOverride:
    return RateOverride(version, position, partner_id, product, kind, bps, start)


def test_precedence_partner_and_product_then_partner_then_product_then_the_tier_table() -> None:
    book = RateBook(
        [DEFAULT_RATE_TABLE],
        [
            entry(0, product="secure-pro", bps=1200),
            entry(1, partner_id="P-GOLD", bps=1800),
            entry(2, partner_id="P-GOLD", product="secure-pro", bps=2500),
            entry(3, partner_id="P-GOLD", kind="upgrade", bps=3000),
            entry(4, product="secure-pro", kind="new", bps=1300),
        ],
    )
    later = START + dt.timedelta(days=1)

    def rate(partner_id: str, product: str, kind: Any) -> tuple[int, str]:
        found = book.rate(partner_id, product, "gold", kind, later)
        return found.bps, found.source

    assert rate("P-GOLD", "secure-pro", "renewal") == (2500, "override")
    # A kind narrows an entry: within the partner level it beats the entry for every kind,
    # but never climbs above the partner-and-product level.
    assert rate("P-GOLD", "secure-pro", "upgrade") == (2500, "override")
    assert rate("P-GOLD", "secure-basic", "upgrade") == (3000, "override")
    assert rate("P-GOLD", "secure-basic", "renewal") == (1800, "override")
    assert rate("P-OTHER", "secure-pro", "renewal") == (1200, "override")
    assert rate("P-OTHER", "secure-pro", "new") == (1300, "override")
    assert rate("P-OTHER", "secure-basic", "renewal") == (1500, "tier_table")
    # Before the entries start, the tier table.
    assert book.rate("P-GOLD", "secure-pro", "gold", "renewal", START - dt.timedelta(1)).bps == 1500


def test_a_newer_entry_of_the_same_scope_supersedes_from_its_start() -> None:
    book = RateBook(
        [DEFAULT_RATE_TABLE],
        [
            entry(0, partner_id="P-GOLD", bps=1800),
            entry(0, partner_id="P-GOLD", bps=1900, start=at("2027-06-01T00:00:00Z"), version=2),
        ],
    )
    assert book.rate("P-GOLD", None, "gold", "new", at("2027-05-31T23:59:59Z")).bps == 1800
    assert book.rate("P-GOLD", None, "gold", "new", at("2027-06-01T00:00:00Z")).bps == 1900


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"partner_id": None, "product": None}, "partner_id"),
        ({"rate_bps": 10_001}, "rate_bps"),
        ({"rate_bps": True}, "rate_bps"),
        ({"effective_from": at("1999-12-31T23:59:59Z")}, "effective_from"),
        ({"effective_from": at("2200-01-01T00:00:00Z")}, "effective_from"),
    ],
)
def test_an_override_out_of_bounds_names_its_field(changes: dict[str, Any], field: str) -> None:
    fields = {
        "version": 1,
        "position": 0,
        "partner_id": "P-1",
        "product": None,
        "kind": None,
        "rate_bps": 100,
        "effective_from": START,
        **changes,
    }
    with pytest.raises(RateTableError) as raised:
        RateOverride(**fields)
    assert raised.value.field == field


PARTNERS = st.sampled_from(["P-GOLD", "P-OTHER", "P-THIRD"])
PRODUCTS = st.sampled_from(["secure-pro", "secure-basic", "backup"])
KINDS = st.sampled_from(["new", "renewal", "upgrade"])
INSTANTS = st.integers(0, 400).map(lambda days: START + dt.timedelta(days=days))


@st.composite
def overrides(draw: st.DrawFn) -> list[RateOverride]:
    found = []
    for position in range(draw(st.integers(0, 6))):
        partner_id = draw(st.none() | PARTNERS)
        product = draw(PRODUCTS) if partner_id is None else draw(st.none() | PRODUCTS)
        found.append(
            RateOverride(
                version=draw(st.integers(1, 3)),
                position=position,
                partner_id=partner_id,
                product=product,
                kind=draw(st.none() | KINDS),
                rate_bps=draw(st.integers(0, 10_000)),
                effective_from=draw(INSTANTS),
            )
        )
    return found


@settings(max_examples=300, deadline=None)
@given(
    entries=overrides(),
    partner_id=PARTNERS,
    product=PRODUCTS,
    kind=KINDS,
    occurred_at=INSTANTS,
    net=st.integers(1, 10**12),
)
def test_overrides_never_change_a_line_whose_most_specific_entry_is_the_tier_table(
    entries: list[RateOverride],
    partner_id: str,
    product: str,
    kind: Any,
    occurred_at: dt.datetime,
    net: int,
) -> None:
    line = dataclasses.replace(
        order(net=net, kind=kind, por=partner(partner_id)),
        occurred_at=occurred_at,
        product=product,
    )
    plain = decide_commission(line, RateBook([DEFAULT_RATE_TABLE]), Policy())
    with_overrides = decide_commission(line, RateBook([DEFAULT_RATE_TABLE], entries), Policy())
    winner = RateBook([DEFAULT_RATE_TABLE], entries).override_in_force(
        partner_id, product, kind, occurred_at
    )
    # An independent oracle: every entry in force that fits, ranked by the contract's order.
    fitting = [
        e
        for e in entries
        if e.effective_from <= occurred_at
        and e.partner_id in (None, partner_id)
        and e.product in (None, product)
        and e.kind in (None, kind)
    ]
    level = {(True, True): 3, (True, False): 2, (False, True): 1}
    oracle = max(
        fitting,
        key=lambda e: (
            level[(e.partner_id is not None, e.product is not None)],
            e.kind is not None,
            e.effective_from,
            e.version,
            e.position,
        ),
        default=None,
    )
    assert winner == oracle
    if winner is None:
        assert with_overrides == plain
    else:
        por, distributor = with_overrides.beneficiaries
        assert (por.rate_bps, por.rate_source) == (winner.rate_bps, "override")
        # The distributor's line is never an override's business.
        assert distributor == plain.beneficiaries[1]


class Books(World):
    """The worker's ingest, the lifecycle with the minimum payout, adjustments: on fakes."""

    def __init__(self, now: dt.datetime = MARCH) -> None:
        super().__init__()
        self.outbox = FakeOutbox()
        self.transitions = FakeTransitions(self.order_lines, self.outbox)
        self.clock = FixedClock(now)
        self.lifecycle = LedgerLifecycle(
            order_lines=self.order_lines,
            transitions=self.transitions,
            horizon=FakeHorizon(),
            clock=self.clock,
            ledger_topic=COMMISSIONS_LEDGER,
            min_payout_minor=MINIMUM,
        )
        self.adjustments = Adjustments(
            order_lines=self.order_lines,
            transitions=self.transitions,
            clock=self.clock,
            ledger_topic=COMMISSIONS_LEDGER,
        )
        self.queries = LedgerQueries(self.order_lines)
        self.ledger_values: list[bytes] = []

    async def feed(self, *events: Any) -> None:
        result = await self.handle(*[self.stream.record(e) for e in events])
        self.ledger_values.extend(record.value for record in result.produce)

    def topic(self) -> list[bytes]:
        """What the ledger topic holds: the worker's records, then the outbox's."""
        return [*self.ledger_values, *(m.value for m in self.outbox.messages)]


def request(**changes: Any) -> AdjustmentRequest:
    fields: dict[str, Any] = {
        "partner_id": "P-GOLD",
        "amount_minor": 25000,
        "currency": "EUR",
        "reason": "Q1 launch bonus",
        "reference": "FIN-2027-0042",
        **changes,
    }
    return AdjustmentRequest(**fields)


async def test_an_adjustment_is_one_payable_line_per_key_through_the_outbox() -> None:
    books = Books()
    await books.feed(order_applied())
    line = await books.adjustments.make("adj-1", request())
    assert line.line_id == adjustment_line_id("adj-1")
    assert (line.role, line.status, line.payable_at) == ("adjustment", "payable", line.occurred_at)
    assert await books.adjustments.make("adj-1", request()) == line
    with pytest.raises(IdempotencyConflictError):
        await books.adjustments.make("adj-1", request(reason="another"))
    (message,) = books.outbox.messages
    envelope = parse_event(COMMISSIONS_LEDGER, message.value)
    assert envelope.event_type == "commission.adjusted"
    assert envelope.event_id == message.event_id
    data = envelope.data
    assert isinstance(data, CommissionLine)
    assert (data.order_id, data.tier, data.rate_table_version) == (None, None, None)
    with pytest.raises(AdjustmentError) as zero:
        await books.adjustments.make("adj-2", request(amount_minor=0))
    assert zero.value.field == "amount_minor"
    with pytest.raises(AdjustmentError) as never_earned:
        await books.adjustments.make("adj-3", request(currency="GBP"))
    assert never_earned.value.field == "currency"


async def test_a_currency_below_its_minimum_is_held_while_the_others_are_paid() -> None:
    books = Books()
    await books.feed(order_applied())
    await books.feed(order_applied("WEB-USD", currency="USD", net=10000))  # 1500 USD
    await books.lifecycle.run_payables(at("2027-02-28T00:00:00Z"))
    paid = await books.lifecycle.mark_paid("P-GOLD", Month(2027, 1))
    assert [(x.currency, x.amount_minor) for x in paid.lines] == [("EUR", 18519)]
    assert paid.held == {"USD": 1500}
    february = await books.queries.statement("P-GOLD", Month(2027, 2))
    assert [(x.currency, carried_forward(x, Month(2027, 2))) for x in february.lines] == [
        ("USD", True)
    ]
    assert below_minimum(february.lines, MINIMUM) == (set(), {"USD"})


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int, str, str]]:
    """(order_id, net, currency, occurred_at) over six months, some refunded in part."""
    found = []
    for number in range(draw(st.integers(1, 8))):
        day = draw(st.integers(0, 180))
        occurred = at("2027-01-01T00:00:00Z") + dt.timedelta(days=day, hours=3)
        found.append(
            (
                f"WEB-{number}",
                draw(st.integers(1, 200_000)),
                draw(st.sampled_from(["EUR", "JPY", "BHD"])),
                occurred.isoformat().replace("+00:00", "Z"),
            )
        )
    return found


async def _run(
    history: list[tuple[str, int, str, str]],
    refunds: list[int],
    paid_months: list[int],
    adjust: int,
) -> Books:
    books = Books(now=at("2027-07-15T00:00:00Z"))
    for order_id, net, currency, occurred_at in history:
        await books.feed(
            order_applied(order_id, net=net, currency=currency, occurred_at=occurred_at)
        )
    for (order_id, net, currency, _), share in zip(history, refunds, strict=False):
        amount = net * share // 100
        if amount:
            await books.feed(
                refund_issued(f"RF-{order_id}", amount, order_id=order_id, currency=currency)
            )
    if adjust:
        await books.adjustments.make("adj", request(amount_minor=adjust, currency=history[0][2]))
    await books.lifecycle.run_payables(at("2027-07-01T00:00:00Z"))
    for month in paid_months:
        await books.lifecycle.mark_paid("P-GOLD", Month(2027, month))
    return books


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=histories(),
    refunds=st.lists(st.integers(0, 100), max_size=8),
    paid_months=st.lists(st.integers(1, 7), max_size=4),
    adjust=st.integers(-10_000, 10_000),
    seed=st.integers(0, 2**32),
)
async def test_statements_sum_their_lines_and_a_replay_of_the_ledger_gives_the_same(
    history: list[tuple[str, int, str, str]],
    refunds: list[int],
    paid_months: list[int],
    adjust: int,
    seed: int,
) -> None:
    books = await _run(history, refunds, paid_months, adjust)
    # What a reader of the ledger topic sees: every event, some twice, in any order.
    values = books.topic()
    shuffled = random.Random(seed)
    values = values + shuffled.sample(values, k=len(values) // 3)
    shuffled.shuffle(values)
    read = []
    for value in values:
        data = parse_event(COMMISSIONS_LEDGER, value).data
        assert isinstance(data, CommissionLine)
        read.append(line_from_event(data, Source("ledger", COMMISSIONS_LEDGER, 0, 0)))
    from_topic = [x for x in replayed(read) if x.partner_id == "P-GOLD"]
    for number in range(1, 9):
        month = Month(2027, number)
        statement = await books.queries.statement("P-GOLD", month)
        # The sum of a statement, carried-forward lines included, is the sum of its lines.
        amounts: dict[str, int] = {}
        for line in statement.lines:
            amounts[line.currency] = amounts.get(line.currency, 0) + line.amount_minor
        assert {t.currency: t.net_minor for t in statement.totals} == amounts
        assert {t.currency: t.carried_forward_minor for t in statement.totals} == {
            currency: sum(
                x.amount_minor
                for x in statement.lines
                if x.currency == currency and carried_forward(x, month)
            )
            for currency in amounts
        }
        # The same statement from the ledger topic's events alone.
        replay = [x for x in from_topic if on_statement(x, month)]
        assert _shape(replay, month) == _shape(statement.lines, month)
        assert totals(replay, month) == statement.totals


def _shape(lines: list[LedgerLine], month: Month) -> list[tuple[Any, ...]]:
    return sorted(
        (x.line_id, x.status, x.amount_minor, x.currency, x.rate_source, carried_forward(x, month))
        for x in lines
    )
