"""parse_event, new_envelope and encode: round trips, timestamps and every rejection reason."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from shared.envelope import (
    DETAIL_MAX_CHARS,
    Envelope,
    EventValidationError,
    encode,
    envelope_model,
    new_envelope,
    parse_event,
)
from shared.events import EVENT_MODELS, OrderPlaced, RefundIssued, format_timestamp
from shared.examples import example_events
from shared.topics import CHECKOUT_ORDERS, CHECKOUT_REFUNDS

pytestmark = pytest.mark.unit

Mutation = Callable[[dict[str, Any]], None]


def _order_document() -> dict[str, Any]:
    topic, envelope = example_events()[0]
    assert topic == CHECKOUT_ORDERS
    document: dict[str, Any] = json.loads(encode(envelope))
    return document


def _raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _set(path: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        del node[last]

    return mutate


# --- round trips ----------------------------------------------------------------


def test_examples_cover_every_event_type() -> None:
    assert sorted(e.event_type for _, e in example_events()) == sorted(EVENT_MODELS)


@pytest.mark.parametrize(
    ("topic", "envelope"), example_events(), ids=[e.event_type for _, e in example_events()]
)
def test_round_trip(topic: str, envelope: Envelope[Any]) -> None:
    raw = encode(envelope)
    parsed = parse_event(topic, raw)
    assert parsed == envelope
    assert type(parsed.data) is EVENT_MODELS[envelope.event_type]
    assert encode(parsed) == raw


def test_encode_is_compact_utf8_with_nulls() -> None:
    raw = encode(example_events()[0][1])
    assert "Müller".encode() in raw
    assert b"\\u00fc" not in raw
    assert b", " not in raw and b": " not in raw
    assert b'"partner_code":null' in raw


# --- new_envelope ---------------------------------------------------------------


def _refund() -> RefundIssued:
    return RefundIssued(
        refund_id="RF-1", order_id="O-1", line_id="1", amount_minor=5, currency="EUR", reason="x"
    )


def test_new_envelope_defaults() -> None:
    at = dt.datetime(2027, 1, 5, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    envelope = new_envelope("refund.issued", _refund(), occurred_at=at, producer="shop")
    assert uuid.UUID(envelope.event_id).version == 4
    assert envelope.schema_version == 1
    assert envelope.occurred_at == dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC)
    assert json.loads(encode(envelope))["occurred_at"] == "2027-01-05T10:00:00Z"
    assert isinstance(envelope, envelope_model("refund.issued"))


def test_new_envelope_rejects_mismatched_data() -> None:
    at = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="Envelope\\[RefundIssued\\]"):
        new_envelope("refund.issued", example_events()[0][1].data, occurred_at=at, producer="shop")
    with pytest.raises(ValueError, match="unknown event_type"):
        new_envelope("refund.cancelled", _refund(), occurred_at=at, producer="shop")


def test_new_envelope_rejects_naive_time() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        new_envelope(
            "refund.issued", _refund(), occurred_at=dt.datetime(2027, 1, 5), producer="shop"
        )


def test_unparametrised_envelope_is_refused() -> None:
    # It would serialise data as a bare EventData, silently dropping every field.
    with pytest.raises(ValidationError, match="needs Envelope"):
        Envelope(
            event_id="e",
            event_type="refund.issued",
            schema_version=1,
            occurred_at=dt.datetime(2027, 1, 5, tzinfo=dt.UTC),
            producer="shop",
            data=_refund(),
        )


# --- timestamps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2027-01-05T10:00:00Z", "2027-01-05T10:00:00Z"),
        ("2027-01-05T10:00:00.000Z", "2027-01-05T10:00:00Z"),
        ("2027-01-05T10:00:00.120Z", "2027-01-05T10:00:00.120Z"),
        ("2027-01-05T10:00:00.123456Z", "2027-01-05T10:00:00.123Z"),
        ("2027-01-05T11:30:00+01:30", "2027-01-05T10:00:00Z"),
        ("2027-01-05T05:00:00-05:00", "2027-01-05T10:00:00Z"),
    ],
)
def test_timestamps_normalise_to_utc_z(given: str, expected: str) -> None:
    document = _order_document()
    document["occurred_at"] = given
    envelope = parse_event(CHECKOUT_ORDERS, _raw(document))
    assert json.loads(encode(envelope))["occurred_at"] == expected


def test_format_timestamp_rejects_naive() -> None:
    with pytest.raises(ValueError):
        format_timestamp(dt.datetime(2027, 1, 5))


# --- rejections -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe{}", b"not json", b"[1, 2]", b'"order.placed"', b"null", b'{"a": NaN}'],
)
def test_unparsable(raw: bytes) -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, raw)
    assert caught.value.reason == "unparsable"
    assert caught.value.detail


@pytest.mark.parametrize("event_type", ["refund.issued", "order.cancelled", ""])
def test_unknown_event_type(event_type: str) -> None:
    document = _order_document()
    document["event_type"] = event_type
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    assert caught.value.reason == "unknown_event_type"
    assert "order.placed" in caught.value.detail


def test_unknown_topic_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="registry"):
        parse_event("checkout.orders.v1.dlq", b"{}")


REJECTIONS: list[tuple[str, Mutation, str]] = [
    ("float amount", _set("data.lines.0.net_amount_minor", 1.5), "data.lines.0.net_amount_minor"),
    ("whole float", _set("data.lines.0.net_amount_minor", 123457.0), "net_amount_minor"),
    ("string amount", _set("data.lines.0.net_amount_minor", "123457"), "net_amount_minor"),
    ("bool amount", _set("data.lines.0.net_amount_minor", True), "net_amount_minor"),
    (
        "negative amount",
        _set("data.lines.0.net_amount_minor", -1),
        "data.lines.0.net_amount_minor: Input should be greater than or equal to 0",
    ),
    ("partner sale", _set("data.sales_channel", "partner"), "data.partner_code"),
    ("lower-case currency", _set("data.currency", "eur"), "data.currency"),
    ("unknown currency", _set("data.currency", "XYZ"), "data.currency: XYZ is not an ISO 4217"),
    ("long currency", _set("data.currency", "EURO"), "data.currency"),
    ("no lines", _set("data.lines", []), "data.lines"),
    ("bad kind", _set("data.lines.0.kind", "gift"), "data.lines.0.kind"),
    ("bad storefront", _set("data.storefront", "kiosk"), "data.storefront"),
    ("bad date", _set("data.lines.0.term_start", "2027-1-10"), "data.lines.0.term_start"),
    ("timestamp as date", _set("data.lines.0.term_start", "2027-01-10T00:00:00Z"), "term_start"),
    ("epoch date", _set("data.lines.0.term_start", 1800000000), "data.lines.0.term_start"),
    ("term order", _set("data.lines.0.term_end", "2026-01-09"), "data.lines.0.term_end"),
    ("country case", _set("data.customer.country", "de"), "data.customer.country"),
    ("zero quantity", _set("data.lines.0.quantity", 0), "data.lines.0.quantity"),
    ("missing order_id", _delete("data.order_id"), "data.order_id: Field required"),
    ("missing data", _delete("data"), "data: Field required"),
    ("naive time", _set("occurred_at", "2027-01-05T10:00:00"), "occurred_at"),
    ("epoch time", _set("occurred_at", 1800000000), "occurred_at"),
    ("schema version 0", _set("schema_version", 0), "schema_version"),
    ("missing event_id", _delete("event_id"), "event_id: Field required"),
    ("empty producer", _set("producer", ""), "producer"),
    ("event_type missing", _delete("event_type"), "event_type: Field required"),
    ("event_type number", _set("event_type", 7), "event_type"),
]


@pytest.mark.parametrize(
    ("mutate", "field"), [(m, f) for _, m, f in REJECTIONS], ids=[n for n, _, _ in REJECTIONS]
)
def test_schema_violation_names_the_field(mutate: Mutation, field: str) -> None:
    document = _order_document()
    mutate(document)
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    assert caught.value.reason == "schema_violation"
    assert field in caught.value.detail


def test_partner_sale_with_partner_code_is_valid() -> None:
    document = _order_document()
    document["data"]["sales_channel"] = "partner"
    document["data"]["partner_code"] = "7K3M-9QXF"
    envelope = parse_event(CHECKOUT_ORDERS, _raw(document))
    assert isinstance(envelope.data, OrderPlaced)
    assert envelope.data.partner_code == "7K3M-9QXF"


def test_duplicate_line_ids() -> None:
    document = _order_document()
    document["data"]["lines"].append(dict(document["data"]["lines"][0]))
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    assert caught.value.detail.startswith("data.lines: line_id 1 appears more than once")


def test_refund_amount_must_be_positive() -> None:
    topic, envelope = example_events()[1]
    assert topic == CHECKOUT_REFUNDS
    document = json.loads(encode(envelope))
    document["data"]["amount_minor"] = 0
    with pytest.raises(EventValidationError) as caught:
        parse_event(topic, _raw(document))
    assert "data.amount_minor: Input should be greater than 0" in caught.value.detail


def test_unknown_fields_are_ignored_everywhere() -> None:
    document = _order_document()
    document["trace_id"] = "abc"
    document["data"]["loyalty_tier"] = "gold"
    document["data"]["customer"]["vat_id"] = "DE123"
    document["data"]["lines"][0]["discount_minor"] = 10
    envelope = parse_event(CHECKOUT_ORDERS, _raw(document))
    assert envelope == parse_event(CHECKOUT_ORDERS, encode(envelope))
    assert b"loyalty_tier" not in encode(envelope)


def test_detail_lists_every_error_and_is_bounded() -> None:
    document = _order_document()
    document["data"]["currency"] = "eur"
    document["data"]["lines"] = [
        {**document["data"]["lines"][0], "line_id": str(i), "net_amount_minor": -1}
        for i in range(200)
    ]
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    detail = caught.value.detail
    assert "data.currency" in detail and "data.lines.0.net_amount_minor" in detail
    assert len(detail) <= DETAIL_MAX_CHARS


def test_detail_never_echoes_input_values() -> None:
    document = _order_document()
    document["data"]["customer"]["email"] = "not-an-address"
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    assert "data.customer.email" in caught.value.detail
    assert "not-an-address" not in caught.value.detail


# --- the one-parse path ---------------------------------------------------------


def test_an_event_type_named_only_inside_data_is_still_missing() -> None:
    document = _order_document()
    del document["event_type"]
    document["data"]["customer"]["event_type"] = "order.placed"  # ignored extra field
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, _raw(document))
    assert (caught.value.reason, caught.value.detail) == (
        "schema_violation",
        "event_type: Field required",
    )


def test_a_second_event_type_inside_data_takes_the_full_path_to_the_same_event() -> None:
    document = _order_document()
    plain = parse_event(CHECKOUT_ORDERS, _raw(document))
    document["data"]["customer"]["event_type"] = "refund.issued"
    assert parse_event(CHECKOUT_ORDERS, _raw(document)) == plain


def test_nan_inside_a_valid_looking_event_is_unparsable() -> None:
    raw = _raw(_order_document()).replace(b'"quantity": 1', b'"quantity": NaN', 1)
    assert b"NaN" in raw
    with pytest.raises(EventValidationError) as caught:
        parse_event(CHECKOUT_ORDERS, raw)
    assert caught.value.reason == "unparsable"


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (dt.datetime(999, 6, 1, tzinfo=dt.UTC), "0999-06-01T00:00:00Z"),
        (dt.datetime(1, 1, 1, 0, 0, 0, 5000, tzinfo=dt.UTC), "0001-01-01T00:00:00.005Z"),
        (dt.datetime(2199, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "2199-12-31T23:59:59Z"),
    ],
)
def test_format_timestamp_pads_the_year_to_four_digits(instant: dt.datetime, text: str) -> None:
    # RFC 3339 wants 4 digits; strftime("%Y") on glibc wrote year 999 as "999".
    assert format_timestamp(instant) == text


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("occurred_at", "9999-12-31T23:59:59Z", "out_of_bounds"),
        ("occurred_at", "1999-12-31T23:59:59.999Z", "out_of_bounds"),
        ("occurred_at", "2000-01-01T00:30:00+01:00", "out_of_bounds"),
        ("occurred_at", "0001-01-01T00:00:00+01:00", "out_of_bounds"),
        ("occurred_at", "2199-12-31T23:59:59.999Z", None),
        ("occurred_at", "2000-01-01T00:00:00Z", None),
    ],
)
def test_timestamps_are_bounded_to_2000_through_2199(
    field: str, value: str, reason: str | None
) -> None:
    topic, envelope = next((t, e) for t, e in example_events() if e.event_type == "refund.issued")
    document = json.loads(encode(envelope))
    document[field] = value
    raw = json.dumps(document).encode()
    if reason is None:
        parse_event(topic, raw)
        return
    with pytest.raises(EventValidationError) as caught:
        parse_event(topic, raw)
    assert caught.value.reason == reason


def test_nesting_is_counted_on_the_bytes_and_strings_do_not_count() -> None:
    from shared.envelope import nesting_depth

    assert nesting_depth(b"[" * 3000 + b"]" * 3000) > 32
    assert nesting_depth(b'{"a":"' + b"[" * 100 + b'"}') == 1
    assert nesting_depth(b'{"a":"\\"' + b"[" * 100 + b'"}') == 1
    assert nesting_depth(b"[" * 32 + b"]" * 32) == 32
