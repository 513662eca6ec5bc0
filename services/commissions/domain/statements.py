"""A partner's monthly statement: its lines, totals per currency and status, and CSV rows.

A statement of month M holds the lines that occurred in M and, carried forward
(CONTRACT 6.5), the partner's earlier lines still payable: held back by the
minimum payout, or simply not yet paid. Marking M paid pays them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from services.commissions.domain.order_line import LedgerLine
from services.commissions.domain.periods import Month
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
    "rate_source",
    "carried_forward",
    "reason",
    "reference",
)
"""The statement CSV's columns, in this order; a new column is only ever appended."""


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    accrued_minor: int = 0
    payable_minor: int = 0
    paid_minor: int = 0
    carried_forward_minor: int = 0
    """The part of payable_minor carried forward from earlier months."""

    @property
    def net_minor(self) -> int:
        return self.accrued_minor + self.payable_minor + self.paid_minor


def totals(lines: Iterable[LedgerLine], month: Month | None = None) -> list[CurrencyTotals]:
    """Sums per currency and status, currencies in alphabetical order; never mixes currencies.

    With `month`, lines that occurred before it are counted as carried forward too.
    """
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        per_status = sums.setdefault(
            line.currency, {"accrued": 0, "payable": 0, "paid": 0, "carried": 0}
        )
        per_status[line.status] += line.amount_minor
        if month is not None and carried_forward(line, month):
            per_status["carried"] += line.amount_minor
    return [
        CurrencyTotals(currency, s["accrued"], s["payable"], s["paid"], s["carried"])
        for currency, s in sorted(sums.items())
    ]


def on_statement(line: LedgerLine, month: Month) -> bool:
    """Whether a line appears on `month`'s statement: its own, or carried forward."""
    return line.occurred_at in month or carried_forward(line, month)


def carried_forward(line: LedgerLine, month: Month) -> bool:
    """An earlier line still payable: it carries into every statement until it is paid."""
    return line.status == "payable" and line.occurred_at < month.start


def below_minimum(
    lines: Iterable[LedgerLine], minimum_minor: Mapping[str, int]
) -> tuple[set[str], set[str]]:
    """(currencies to pay, currencies held) by the payable total against the minimum payout.

    A currency not in `minimum_minor` has minimum 0: no threshold, everything is
    paid (a negative balance too, netted as before 6.5). Under a positive minimum a
    total below it, a negative one included, is held: those lines stay payable and
    carry forward.
    """
    payable: dict[str, int] = {}
    for line in lines:
        if line.status == "payable":
            payable[line.currency] = payable.get(line.currency, 0) + line.amount_minor
    held = {
        c
        for c, total in payable.items()
        if minimum_minor.get(c, 0) > 0 and total < minimum_minor[c]
    }
    return set(payable) - held, held


_STATUS_RANK: Final = {"accrued": 0, "payable": 1, "paid": 2}


def replayed(lines: Iterable[LedgerLine]) -> list[LedgerLine]:
    """Each ledger line as its latest event says, from the lines of a ledger topic's events.

    A line only moves forward (accrued, payable, paid), so the furthest status seen
    is its state however often, and in whatever order, its events are read: a
    replay of the topic gives the same statement (`on_statement`, `totals`).
    """
    latest: dict[str, LedgerLine] = {}
    for line in lines:
        seen = latest.get(line.line_id)
        if seen is None or _STATUS_RANK[line.status] > _STATUS_RANK[seen.status]:
            latest[line.line_id] = line
    return statement_order(latest.values())


def statement_order(lines: Iterable[LedgerLine]) -> list[LedgerLine]:
    return sorted(lines, key=lambda line: (line.occurred_at, line.order_id or "", line.line_id))


def csv_row(line: LedgerLine, month: Month | None = None) -> Sequence[str]:
    return (
        line.line_id,
        format_timestamp(line.occurred_at),
        line.status,
        line.role,
        line.order_id or "",
        line.line_ref or "",
        line.license_key or "",
        line.refund_id or "",
        line.kind or "",
        line.tier or "",
        str(line.base_amount_minor),
        str(line.rate_bps),
        str(line.amount_minor),
        line.currency,
        "" if line.rate_table_version is None else str(line.rate_table_version),
        format_timestamp(line.payable_at) if line.payable_at else "",
        line.rate_source,
        "true" if month is not None and carried_forward(line, month) else "false",
        line.reason or "",
        line.reference or "",
    )
