"""An independent computation of the expected ledger, written from CONTRACT section 3 alone.

Deliberately shares no code with the service: Fraction arithmetic and Python's
round() (half-to-even on a Fraction), the rate table typed in again from the contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from fractions import Fraction

NS = uuid.UUID("6abe1a86-42d3-5d78-9c97-01a95d4dfdcc")
RATES = {
    "platinum": {"new": 1500, "renewal": 2000, "upgrade": 1500},
    "gold": {"new": 1000, "renewal": 1500, "upgrade": 1000},
    "silver": {"new": 750, "renewal": 1000, "upgrade": 750},
    "bronze": {"new": 500, "renewal": 500, "upgrade": 500},
}
OVERRIDE_BPS = 200


@dataclass
class OracleLine:
    order_id: str
    line_id: str
    net: int
    tier: str
    kind: str
    partner_id: str
    parent_id: str | None
    granted: bool = True
    refunded: int = 0
    refunds: list[tuple[str, int]] = field(default_factory=list)


def expected_events(lines: list[OracleLine]) -> dict[str, tuple[str, str, int]]:
    """line_id -> (event_type, partner_id, amount_minor) of every accrual and clawback."""
    out: dict[str, tuple[str, str, int]] = {}
    for line in lines:
        if not line.granted:
            continue
        beneficiaries = [(line.partner_id, "partner_of_record", RATES[line.tier][line.kind])]
        if line.parent_id:
            beneficiaries.append((line.parent_id, "distributor_override", OVERRIDE_BPS))
        for partner_id, role, bps in beneficiaries:
            commission = round(Fraction(line.net * bps, 10000))
            line_id = str(uuid.uuid5(NS, f"{line.order_id}/{line.line_id}/{partner_id}/{role}"))
            out[line_id] = ("commission.accrued", partner_id, commission)
            cumulative = 0
            for refund_id, amount in line.refunds:
                before = round(Fraction(commission * cumulative, line.net))
                cumulative += amount
                after = round(Fraction(commission * cumulative, line.net))
                if after != before:
                    claw_id = str(uuid.uuid5(NS, f"{refund_id}/{partner_id}/{role}"))
                    out[claw_id] = ("commission.clawed_back", partner_id, before - after)
    return out
