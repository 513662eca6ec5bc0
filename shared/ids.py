"""Deterministic ids for what the suite derives (CONTRACT 1 and 3.6).

UUIDv5 over the natural key under one namespace, so reprocessing an event
recomputes the same id instead of minting a second one, and anyone outside
the suite can recompute it too. The ids are persisted: a unit test pins known
values, so any change of this code that would change them fails.

Computed without `uuid.UUID` objects: commissions' hot path derives four ids per
order line (two ledger line ids, two event ids), and `uuid.uuid5` builds and
formats a UUID object for each, about half the cost of deciding the line. This
gives the same strings: SHA-1 over the namespace and the name, version and
variant bits set (RFC 4122 4.3).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

__all__ = ["NS", "adjustment_line_id", "clawback_line_id", "commission_line_id", "derive_id"]

NS = uuid.UUID("6abe1a86-42d3-5d78-9c97-01a95d4dfdcc")

_SEEDED: Final = hashlib.sha1(NS.bytes, usedforsecurity=False)


def derive_id(*parts: str) -> str:
    """``str(uuid5(NS, "/".join(parts)))``.

    Parts are joined as given; the contract fixes this key format, so a part
    that itself contains "/" is not escaped (callers whose ids may contain "/"
    should be aware that ("a/b", "c") and ("a", "b/c") collide). A part that is
    not a str raises TypeError (from the join).
    """
    if not parts:
        raise ValueError("derive_id needs at least one part")
    hasher = _SEEDED.copy()
    hasher.update("/".join(parts).encode("utf-8"))
    digest = bytearray(hasher.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def commission_line_id(order_id: str, line_id: str, partner_id: str, role: str) -> str:
    """Ledger line id of an accrual: ``uuid5(NS, "<order_id>/<line_id>/<partner_id>/<role>")``."""
    return derive_id(order_id, line_id, partner_id, role)


def clawback_line_id(refund_id: str, partner_id: str, role: str) -> str:
    """Ledger line id of a clawback: ``uuid5(NS, "<refund_id>/<partner_id>/<role>")``."""
    return derive_id(refund_id, partner_id, role)


def adjustment_line_id(idempotency_key: str) -> str:
    """CONTRACT 6.5: `uuid5(NS, "adjustment/<Idempotency-Key>")`."""
    return derive_id("adjustment", idempotency_key)
