"""The chassis limits every consumer applies beyond the schema (CONTRACT 1.4)."""

from __future__ import annotations

import json

import pytest

from chassis.consumer_limits import check_limits
from shared.envelope import EventValidationError, parse_event

pytestmark = [pytest.mark.unit]


def _refund(**data: object) -> dict[str, object]:
    refund = {
        "refund_id": "RF-1",
        "order_id": "WEB-1",
        "line_id": "1",
        "amount_minor": 100,
        "currency": "EUR",
        "reason": "x",
    }
    refund.update(data)
    return {
        "event_id": "e-1",
        "event_type": "refund.issued",
        "schema_version": 1,
        "occurred_at": "2027-01-05T10:00:00Z",
        "producer": "t",
        "data": refund,
    }


def _check(document: dict[str, object], max_bytes: int = 512 * 1024) -> None:
    raw = json.dumps(document).encode()
    check_limits(raw, None, max_bytes)
    check_limits(raw, parse_event("checkout.refunds.v1", raw), max_bytes)


def test_a_valid_event_passes() -> None:
    _check(_refund(amount_minor=10**15))


@pytest.mark.parametrize("amount", [10**15 + 1, 2**63, 10**30])
def test_an_amount_beyond_10_to_the_15_is_out_of_bounds_naming_the_field(amount: int) -> None:
    # CONTRACT 6.9: 0 <= amount <= 10^15 minor units.
    with pytest.raises(EventValidationError) as caught:
        _check(_refund(amount_minor=amount))
    assert caught.value.reason == "out_of_bounds"
    assert caught.value.detail.startswith("data.amount_minor:")


def test_an_integer_beyond_64_bits_elsewhere_is_a_schema_violation() -> None:
    document = _refund()
    document["padding"] = {"n": 2**64}
    with pytest.raises(EventValidationError) as caught:
        _check(document)
    assert caught.value.reason == "schema_violation"


def test_a_newer_schema_version_is_refused() -> None:
    document = _refund()
    document["schema_version"] = 2
    with pytest.raises(EventValidationError) as caught:
        _check(document)
    assert caught.value.reason == "unsupported_schema_version"


def test_an_oversized_record_is_refused_before_parsing() -> None:
    with pytest.raises(EventValidationError) as caught:
        _check(_refund(reason="x" * 2000), max_bytes=1024)
    assert caught.value.reason == "too_large"


def test_a_record_over_1_mib_is_too_large_for_parse_event_itself() -> None:
    raw = json.dumps(_refund(reason="x" * (1024 * 1024))).encode()
    with pytest.raises(EventValidationError) as caught:
        parse_event("checkout.refunds.v1", raw)
    assert caught.value.reason == "too_large"
