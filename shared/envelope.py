"""The event envelope (CONTRACT 1.1): build, encode and parse what goes on a topic.

Every event is one UTF-8 JSON object ``{event_id, event_type, schema_version,
occurred_at, producer, data}``. ``parse_event`` is the single door for bytes
read from a topic: it either returns a validated envelope or raises one
exception type whose ``reason`` and ``detail`` become the dead-letter headers
(CONTRACT 1.4), so no consumer has to catch pydantic, json and codec errors
separately.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Collection, Container
from typing import Annotated, Any, Generic, Self, TypeVar, cast

from pydantic import Field, StrictInt, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from shared.events import (
    EVENT_MODELS,
    MAX_NESTING,
    MAX_RECORD_BYTES,
    OUT_OF_BOUNDS,
    ContractModel,
    EventData,
    Text,
    Timestamp,
)
from shared.topics import TOPICS, hashed_key

__all__ = [
    "DETAIL_MAX_CHARS",
    "SCHEMA_VERSION",
    "Envelope",
    "EventValidationError",
    "encode",
    "envelope_model",
    "nesting_depth",
    "new_envelope",
    "parse_event",
]

# Covariant so an Envelope[OrderPlaced] is accepted where Envelope[EventData] is;
# safe because envelopes are frozen.
DataT = TypeVar("DataT", bound=EventData, covariant=True)
DataModelT = TypeVar("DataModelT", bound=EventData)

DETAIL_MAX_CHARS = 1000
"""``EventValidationError.detail`` is cut to this; it travels as a Kafka header."""

SCHEMA_VERSION = 1
"""The envelope version the suite writes and its published schemas describe.

Parsing accepts any version >= 1; the consumers dead-letter a newer one than they
understand (``chassis.consumer_limits.SUPPORTED_SCHEMA_VERSION``), as
``unsupported_schema_version``.
"""


class Envelope(ContractModel, Generic[DataT]):
    """One event. Parametrise with its data model: ``Envelope[OrderPlaced]``."""

    event_id: Text = Field(description="unique per event; consumers dedupe on it")
    event_type: Text
    schema_version: Annotated[StrictInt, Field(ge=1)]
    occurred_at: Timestamp = Field(description="business time of the event")
    producer: Text
    data: DataT

    @model_validator(mode="after")
    def _data_fits_event_type(self) -> Self:
        expected = EVENT_MODELS.get(self.event_type)
        if expected is None:
            raise PydanticCustomError(
                "unknown_event_type",
                "unknown event_type {event_type}",
                {"event_type": self.event_type},
            )
        # An unparametrised Envelope would serialise data as bare EventData (no
        # fields), so insist on the exact model, not merely a compatible one.
        declared = type(self).model_fields["data"].annotation
        if type(self.data) is not expected or declared is not expected:
            raise PydanticCustomError(
                "data_model_mismatch",
                "event_type {event_type} needs Envelope[{model}] with {model} data",
                {"event_type": self.event_type, "model": expected.__name__},
            )
        return self


class EventValidationError(Exception):
    """Bytes from a topic that are not a valid event for it.

    ``reason`` is a short code for the ``error.reason`` DLQ header:
    ``unparsable`` (not UTF-8, not JSON, or not a JSON object),
    ``unknown_event_type`` (missing from the topic's registry entry) or
    ``schema_violation`` (a field fails its model; ``detail`` names the path,
    e.g. ``data.lines.0.net_amount_minor: Input should be ...``), and the bounds
    of CONTRACT 6.9: ``too_large`` (over 1 MiB), ``too_deep`` (JSON nested deeper
    than 32 levels), ``out_of_bounds`` (a date, timestamp or amount outside them).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail[:DETAIL_MAX_CHARS]


@functools.cache
def envelope_model(event_type: str) -> type[Envelope[EventData]]:
    """``Envelope[<model of event_type>]``; KeyError for an unknown type."""
    # Parametrising with a runtime value is fine for pydantic, opaque to mypy.
    generic: Any = Envelope
    return cast("type[Envelope[EventData]]", generic[EVENT_MODELS[event_type]])


def new_envelope(
    event_type: str,
    data: DataModelT,
    *,
    occurred_at: dt.datetime,
    producer: str,
    event_id: str | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> Envelope[DataModelT]:
    """Wrap ``data`` for ``event_type``; ``event_id`` defaults to a random UUID4.

    Raises ValueError if ``data`` is not the model of ``event_type`` or
    ``occurred_at`` is naive (pydantic's ValidationError is a ValueError).
    """
    if event_type not in EVENT_MODELS:
        raise ValueError(f"unknown event_type {event_type!r}")
    model = envelope_model(event_type)
    envelope = model(
        event_id=event_id if event_id is not None else str(uuid.uuid4()),
        event_type=event_type,
        schema_version=schema_version,
        occurred_at=occurred_at,
        producer=producer,
        data=data,
    )
    return cast("Envelope[DataModelT]", envelope)


def encode(envelope: Envelope[Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept as is, nulls written out."""
    document = envelope.model_dump(mode="json")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's json accepts them by default.
    raise ValueError(f"{name} is not valid JSON")


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(step) for step in item["loc"]) or "(event)"
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


_EVENT_TYPE_KEY = b'"event_type"'
_EVENT_TYPE = re.compile(rb'"event_type"\s*:\s*"([A-Za-z0-9_.]{1,64})"')


def _fast_path(allowed: Container[str], raw: bytes) -> Envelope[EventData] | None:
    """The common case in one parse: a valid event whose `event_type` is named once.

    Then that name is the envelope's own (were it only inside `data`, the envelope
    would lack one and fail to validate), so its model can validate the bytes
    directly. None, for the full path to classify, whenever anything is off.
    """
    if not isinstance(raw, bytes) or raw.count(_EVENT_TYPE_KEY) != 1:
        return None
    if b"NaN" in raw or b"Infinity" in raw:  # not JSON; the full path says so
        return None
    found = _EVENT_TYPE.search(raw)
    if found is None:
        return None
    event_type = found.group(1).decode("ascii")
    if event_type not in allowed:
        return None
    try:
        return envelope_model(event_type).model_validate_json(raw)
    except ValidationError:
        return None


# The bytes that open, close or escape something in JSON; everything else is skipped at C speed.
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def nesting_depth(raw: bytes, limit: int = MAX_NESTING) -> int:
    """How deep the JSON in ``raw`` nests, counted up to ``limit + 1`` (then it stops).

    Counted on the bytes, before any parser recurses into them: json.loads raises
    RecursionError at ~1,000 levels, and a 6 KB record holds 3,000. Brackets inside
    strings do not count. Exact for valid JSON; for invalid JSON a number the parser
    then refuses anyway.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the common case, no scan
        return min(limit, raw.count(b"[") + raw.count(b"{"))
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for found in _STRUCTURE.finditer(raw):
        position = found.start()
        if position == escaped_at:
            continue
        char = raw[position]
        if char == 0x5C:  # backslash: the next byte is escaped
            escaped_at = position + 1
        elif char == 0x22:  # quote
            in_string = not in_string
        elif in_string:
            continue
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


def _check_bounds(raw: bytes) -> None:
    """Size and depth (CONTRACT 6.9), before a parser sees the bytes."""
    if len(raw) > MAX_RECORD_BYTES:
        raise EventValidationError(
            "too_large", f"{len(raw)} bytes, more than the limit of {MAX_RECORD_BYTES}"
        )
    if nesting_depth(raw) > MAX_NESTING:
        raise EventValidationError("too_deep", f"JSON nested deeper than {MAX_NESTING} levels")


def parse_event(topic: str, raw: bytes) -> Envelope[EventData]:
    """Validate ``raw`` as an event allowed on ``topic``, or raise EventValidationError.

    Whatever the bytes make a parser or validator raise (RecursionError, OverflowError,
    a codec's or a validator's own error) comes out as EventValidationError: no input
    escapes as another exception. ValueError (not EventValidationError) for a topic
    missing from the registry: that is the caller's configuration, not bad input.
    """
    spec = TOPICS.get(topic)
    if spec is None:
        raise ValueError(f"topic {topic!r} is not in the registry")
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise EventValidationError("unparsable", f"expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    try:
        _check_bounds(raw)
        fast = _fast_path(spec.event_types, raw)
        if fast is not None:
            return fast
        return _parse_slowly(topic, spec.event_types, raw)
    except EventValidationError:
        raise
    except RecursionError:
        raise EventValidationError("too_deep", "nesting too deep to parse") from None
    except (OverflowError, ArithmeticError) as exc:
        raise EventValidationError(OUT_OF_BOUNDS, f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise EventValidationError("unparsable", f"{type(exc).__name__}: {exc}") from None


def _parse_slowly(topic: str, allowed: Collection[str], raw: bytes) -> Envelope[EventData]:
    """The full path: classify what is wrong with ``raw`` precisely."""
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise EventValidationError(
            "unparsable", f"not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    except ValueError as exc:
        raise EventValidationError("unparsable", f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise EventValidationError(
            "unparsable", f"expected a JSON object, got {type(document).__name__}"
        )
    event_type = document.get("event_type")
    if event_type is None:
        raise EventValidationError("schema_violation", "event_type: Field required")
    if not isinstance(event_type, str):
        raise EventValidationError("schema_violation", "event_type: Input should be a valid string")
    if event_type not in allowed:
        names = ", ".join(allowed)
        raise EventValidationError(
            "unknown_event_type",
            f"event_type {event_type!r} is not allowed on {topic} (allowed: {names})",
        )
    try:
        return envelope_model(event_type).model_validate_json(raw)
    except ValidationError as exc:
        types = {item["type"] for item in exc.errors()}
        if "json_invalid" in types:
            raise EventValidationError("unparsable", _describe(exc)) from None
        if OUT_OF_BOUNDS in types:
            raise EventValidationError(OUT_OF_BOUNDS, _describe(exc)) from None
        raise EventValidationError("schema_violation", _describe(exc)) from None


def key_for(topic_name: str, envelope: Envelope[Any]) -> bytes:
    """The record key of ``envelope`` on ``topic_name``: its key field, UTF-8 (the key
    field and hashing come from the topic registry, `shared/topics.py`)."""
    spec = TOPICS.get(topic_name)
    if spec is None:
        raise ValueError(f"topic {topic_name!r} is not in the registry")
    if envelope.event_type not in spec.event_types:
        raise ValueError(f"{envelope.event_type} is not carried on {topic_name}")
    value = getattr(envelope.data, spec.key_field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{envelope.event_type} data has no {spec.key_field} to key by")
    if spec.key_hashed:
        return hashed_key(value).encode("ascii")
    return value.encode("utf-8")
