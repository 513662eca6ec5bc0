"""What makes the worker fast must not change what it computes.

The id helpers, the slimmer stored lines and the cached timestamps give the same
results as before. (The chassis consume loop's fast paths are tested in
tests/unit/chassis/test_consumer_loop.py.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

from services.commissions.adapters.documents import aggregate_from_doc, aggregate_to_doc
from services.commissions.domain.periods import Month
from services.commissions.service_layer.translate import fast_entry_value
from shared.events import format_timestamp
from tests.unit.commissions.builders import (
    POLICY,
    RATES,
    aggregate_for,
    at,
    order,
    partner,
    raw,
    refund,
    refund_into,
    source,
)

NOW = at("2027-06-01T00:00:00Z")
PARTS = st.text(min_size=0, max_size=40)


def _busy_aggregate() -> Any:
    line = aggregate_for(order())
    held = refund("RF-0", 5, currency="USD")
    line.apply_refund(held, source("r"), raw(held))
    line.apply_order(order(por=partner(customer_ids=("C-1",))), source(), RATES, POLICY)
    refund_into(line, refund("RF-1", 61728))
    line.release_payables(at("2027-03-01T00:00:00Z"), NOW)
    line.mark_paid("P-GOLD", Month(2027, 1), NOW)
    line.version = 3
    return line


def test_stored_lines_leave_out_what_their_order_says_and_unset_fields() -> None:
    aggregate = _busy_aggregate()
    doc = aggregate_to_doc(aggregate, 3)
    for line, stored in zip(aggregate.lines, doc["lines"], strict=True):
        for name in ("order_id", "line_ref", "license_key", "kind", "currency", "withheld"):
            assert name not in stored
        assert ("paid_at" in stored) == (line.paid_at is not None)
        assert ("refund_id" in stored) == line.is_clawback
    assert {line.paid_at is None for line in aggregate.lines} == {True, False}


def test_lines_stored_in_full_by_earlier_versions_still_read_the_same() -> None:
    aggregate = _busy_aggregate()
    doc = aggregate_to_doc(aggregate, 3)
    # The earlier form: every field of every line written out.
    doc["lines"] = [
        {
            "line_id": line.line_id,
            "partner_id": line.partner_id,
            "role": line.role,
            "order_id": line.order_id,
            "line_ref": line.line_ref,
            "license_key": line.license_key,
            "refund_id": line.refund_id,
            "kind": line.kind,
            "tier": line.tier,
            "base_amount_minor": line.base_amount_minor,
            "rate_bps": line.rate_bps,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "status": line.status,
            "rate_table_version": line.rate_table_version,
            "occurred_at": line.occurred_at,
            "payable_at": line.payable_at,
            "payable_marked_at": line.payable_marked_at,
            "paid_at": line.paid_at,
            "withheld": line.withheld,
            "src": stored["src"],
        }
        for line, stored in zip(aggregate.lines, doc["lines"], strict=True)
    ]
    assert aggregate_from_doc(doc) == aggregate


def test_a_line_that_differs_from_its_order_keeps_its_own_fields() -> None:
    aggregate = _busy_aggregate()
    aggregate.lines[0] = dataclasses.replace(aggregate.lines[0], license_key="LK-OTHER")
    doc = aggregate_to_doc(aggregate, 3)
    assert doc["lines"][0]["license_key"] == "LK-OTHER"
    assert aggregate_from_doc(doc) == aggregate


def test_equal_instants_in_any_zone_encode_the_same() -> None:
    line = _busy_aggregate().lines[0]
    plus_two = dt.timezone(dt.timedelta(hours=2))
    shifted = dataclasses.replace(line, occurred_at=line.occurred_at.astimezone(plus_two))
    assert fast_entry_value(shifted) == fast_entry_value(line)
    value = json.loads(fast_entry_value(line))
    assert value["occurred_at"] == format_timestamp(line.occurred_at)
