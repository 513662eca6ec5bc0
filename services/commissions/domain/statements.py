"""A partner's monthly statement: its lines, totals per currency and status, and CSV rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from services.commissions.domain.order_line import LedgerLine
from shared.events import format_timestamp

CSV_COLUMNS: Final = (
    "line_id",
    "occurred_at",
    "status",
    "role",
    "order_id",
    "line_ref",
    "license_key",
    "refund_id",
    "kind",
    "tier",
    "base_amount_minor",
    "rate_bps",
    "amount_minor",
    "currency",
    "rate_table_version",
    "payable_at",
)
"""The statement CSV's columns, in this order; a new column is only ever appended."""


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    accrued_minor: int = 0
    payable_minor: int = 0
    paid_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.accrued_minor + self.payable_minor + self.paid_minor


def totals(lines: Iterable[LedgerLine]) -> list[CurrencyTotals]:
    """Sums per currency and status, currencies in alphabetical order; never mixes currencies."""
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        per_status = sums.setdefault(line.currency, {"accrued": 0, "payable": 0, "paid": 0})
        per_status[line.status] += line.amount_minor
    return [
        CurrencyTotals(currency, s["accrued"], s["payable"], s["paid"])
        for currency, s in sorted(sums.items())
    ]


def statement_order(lines: Iterable[LedgerLine]) -> list[LedgerLine]:
    return sorted(lines, key=lambda line: (line.occurred_at, line.order_id, line.line_id))


def csv_row(line: LedgerLine) -> Sequence[str]:
    return (
        line.line_id,
        format_timestamp(line.occurred_at),
        line.status,
        line.role,
        line.order_id,
        line.line_ref,
        line.license_key,
        line.refund_id or "",
        line.kind,
        line.tier,
        str(line.base_amount_minor),
        str(line.rate_bps),
        str(line.amount_minor),
        line.currency,
        str(line.rate_table_version),
        format_timestamp(line.payable_at) if line.payable_at else "",
    )
