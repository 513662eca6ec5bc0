"""The suite's deterministic ids (shared.ids), computed without `uuid.UUID` objects.

The hot path derives four ids per order line (two ledger line ids, two event ids);
`uuid.uuid5` builds and formats a UUID object for each, about half the cost of
deciding the line. These give the same strings (a unit test holds them to
shared.ids): SHA-1 over the namespace and the name, version and variant bits set.
"""

from __future__ import annotations

import hashlib
from typing import Final

from shared.ids import NS

_SEEDED: Final = hashlib.sha1(NS.bytes, usedforsecurity=False)


def derive_id(*parts: str) -> str:
    """`shared.ids.derive_id` for str parts: `str(uuid5(NS, "/".join(parts)))`."""
    hasher = _SEEDED.copy()
    hasher.update("/".join(parts).encode("utf-8"))
    digest = bytearray(hasher.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def commission_line_id(order_id: str, line_id: str, partner_id: str, role: str) -> str:
    """`shared.ids.commission_line_id`."""
    return derive_id(order_id, line_id, partner_id, role)


def clawback_line_id(refund_id: str, partner_id: str, role: str) -> str:
    """`shared.ids.clawback_line_id`."""
    return derive_id(refund_id, partner_id, role)
