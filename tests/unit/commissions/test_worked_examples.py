"""Every worked example of CONTRACT section 3, one test each, named after it."""

from __future__ import annotations

import pytest

from services.commissions.domain.decisions import commission_minor, decide_commission
from tests.unit.commissions.builders import (
    POLICY,
    RATES,
    applied,
    at,
    order,
    partner,
    refund,
    refund_into,
)


def test_gold_partner_under_distributor_direct_renewal_123457_eur_gives_18519_and_2469() -> None:
    line = applied(order(net=123457, kind="renewal", por=partner(tier="gold", parent="P-DIST")))
    by_role = {entry.role: entry for entry in line.lines}
    assert by_role["partner_of_record"].amount_minor == 18519  # 18518.55
    assert by_role["distributor_override"].amount_minor == 2469  # 2469.14
    assert by_role["partner_of_record"].partner_id == "P-GOLD"
    assert by_role["distributor_override"].partner_id == "P-DIST"
    assert {entry.payable_at for entry in line.lines} == {at("2027-02-04T10:00:00Z")}
    assert {entry.rate_bps for entry in line.lines} == {1500, 200}
    assert all(entry.base_amount_minor == 123457 for entry in line.lines)
    assert all(entry.rate_table_version == 1 for entry in line.lines)


@pytest.mark.parametrize(
    ("net", "rate_bps", "expected"),
    [(10050, 500, 502), (10150, 500, 508), (98765, 1000, 9876)],
    ids=["10050_at_500_bps_is_502", "10150_at_500_bps_is_508", "jpy_98765_at_1000_bps_is_9876"],
)
def test_half_even(net: int, rate_bps: int, expected: int) -> None:
    assert commission_minor(net, rate_bps) == expected


def test_half_even_through_the_rate_table_bronze_and_gold_new() -> None:
    bronze = partner(tier="bronze", parent=None)
    assert applied(order(net=10050, por=bronze)).lines[0].amount_minor == 502
    assert applied(order(net=10150, por=bronze)).lines[0].amount_minor == 508
    gold_new = order(net=98765, currency="JPY", kind="new", por=partner(parent=None))
    assert applied(gold_new).lines[0].amount_minor == 9876


def test_two_refunds_of_61728_and_61729_claw_back_9259_then_9260_and_1234_then_1235() -> None:
    line = applied(order(net=123457))
    first = refund_into(line, refund("RF-1", 61728))
    second = refund_into(line, refund("RF-2", 61729, occurred_at="2027-01-21T09:00:00Z"))
    assert first == [-9259, -1234]
    assert second == [-9260, -1235]
    assert sum(entry.amount_minor for entry in line.lines) == 0
    roles = [(entry.role, entry.amount_minor) for entry in line.lines if entry.is_clawback]
    assert roles == [
        ("partner_of_record", -9259),
        ("distributor_override", -1234),
        ("partner_of_record", -9260),
        ("distributor_override", -1235),
    ]


def test_por_since_2023_01_15_direct_renewal_at_2026_01_15_is_attribution_expired() -> None:
    decision = decide_commission(
        order(occurred_at="2026-01-15T00:00:00Z", por=partner(since="2023-01-15T00:00:00Z")),
        RATES,
        POLICY,
    )
    assert decision.reason == "attribution_expired"
    assert not decision.granted
