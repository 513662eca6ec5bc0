"""What every consumer checks on a record beyond its schema (CONTRACT 1.4, 6.9).

Size before parsing, then the envelope's schema version and integers a database
cannot hold. Dates, timestamps, amounts and nesting depth are bounded by
`shared.envelope.parse_event` and the event models themselves.
"""

from __future__ import annotations

import json
from typing import Any

from shared.envelope import Envelope, EventValidationError
from shared.events import MAX_RECORD_BYTES

SUPPORTED_SCHEMA_VERSION = 1
"""The envelope `schema_version` this code understands; a newer one is dead-lettered."""

MAX_EVENT_BYTES = MAX_RECORD_BYTES
"""Larger records are dead-lettered (`too_large`) before they are parsed (CONTRACT 6.9)."""

INT64_MAX = 2**63 - 1
# A run of 19 or more ASCII digits (a candidate for an integer beyond 64 bits) is found
# as 19 zeros once every digit reads "0": a C-speed scan instead of a regex one.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def _out_of_range(value: Any, path: str = "") -> str | None:
    """The path of the first integer that does not fit a signed 64-bit store, if any."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        fits = -INT64_MAX - 1 <= value <= INT64_MAX
        return None if fits else (path or "(event)")
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for name, item in items:
        found = _out_of_range(item, f"{path}.{name}" if path else str(name))
        if found is not None:
            return found
    return None


def check_limits(value: bytes, envelope: Envelope[Any] | None, max_bytes: int) -> None:
    """Rules every consumer applies beyond the schema; EventValidationError when broken.

    Size before parsing (`envelope` None); after parsing, the schema version and
    integers a database cannot hold (an unbounded integer would otherwise fail the
    write of the whole batch).
    """
    if envelope is None:
        if len(value) > max_bytes:
            raise EventValidationError(
                "too_large", f"{len(value)} bytes, more than the limit of {max_bytes}"
            )
        return
    if envelope.schema_version > SUPPORTED_SCHEMA_VERSION:
        raise EventValidationError(
            "unsupported_schema_version",
            f"schema_version {envelope.schema_version} is newer than"
            f" {SUPPORTED_SCHEMA_VERSION}, the one this consumer understands",
        )
    if _LONG_RUN in value.translate(_DIGITS_AS_ZERO):
        path = _out_of_range(json.loads(value))
        if path is not None:
            raise EventValidationError(
                "schema_violation", f"{path}: integer out of range (more than 64 bits)"
            )
