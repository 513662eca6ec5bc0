"""Bar charts as SVG markup, drawn on the server in plain Python: no JavaScript library.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that reads out
every bar, visible axis labels, and a `<title>` per bar (a tooltip). Text is escaped;
colours come from CSS classes (portal.css), never inline styles, so the portal's
Content-Security-Policy (no inline style) holds. Bar heights are proportional to the
exact values (integers: minor units or counts); only the drawing is rounded.

The aggregations that feed them are here too, pure and exact:
- `commissions_per_month`: a partner's ledger lines by `occurred_at` month, per currency;
- `renewals_per_week`: entitlements whose term ends in each week of the next 90 days;
- `revenue_per_tier`: programme revenue (below) per partner tier, per currency.

**Programme revenue** is the revenue partners brought in, as the commission ledger
records it: the `base_amount_minor` (the order line's net amount) of every
`partner_of_record` line, less the refunds of those lines (clawback lines carry the
refunded amount). Distributor override lines are left out (the same order would count
twice) and so are adjustments (no order). Currencies are never added together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from html import escape
from typing import Any

from services.portal.domain.presentation import format_money
from shared.calendar import shift_month

TIERS = ("platinum", "gold", "silver", "bronze")
RENEWAL_DAYS = 90
WEEKS = (RENEWAL_DAYS + 7) // 7  # 13 weeks cover today .. today + 90 days


@dataclass(frozen=True)
class Bar:
    label: str
    """The axis label under the bar, e.g. `2027-01`."""
    value: int
    """Exact: minor units or a count. Heights are proportional to it."""
    value_label: str
    """The value as people read it (`EUR 1,234.57`): the tooltip and the description."""
    short_label: str | None = None
    """What fits above a narrow bar; `value_label` when None."""


def _num(value: Fraction | int) -> str:
    """A coordinate with at most two decimals, no trailing zeros."""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    width: int = 640,
    height: int = 240,
    empty_text: str = "Nothing to show yet.",
) -> str:
    """A vertical bar chart; negative values hang below a zero line."""
    cid = escape(chart_id, quote=True)
    empty = not bars or all(b.value == 0 for b in bars)
    readout = "; ".join(f"{b.label}: {b.value_label}" for b in bars)
    desc = f"{description} {empty_text}" if empty else f"{description} {readout}."
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{cid}-title {cid}-desc">'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>'
    )
    if empty:
        return (
            f'{head}<text class="chart-empty" x="{width // 2}" y="{height // 2}" '
            f'text-anchor="middle">{escape(empty_text)}</text></svg>'
        )
    top, bottom, side = 22, 34, 6
    plot = height - top - bottom
    high = max(0, max(b.value for b in bars))
    low = min(0, min(b.value for b in bars))
    span = Fraction(high - low)
    zero_y = top + Fraction(high) / span * plot
    slot = Fraction(width - 2 * side, len(bars))
    bar_width = slot * Fraction(7, 10)
    parts = [head, '<g class="chart-bars">']
    for index, bar in enumerate(bars):
        x = side + slot * index + (slot - bar_width) / 2
        size = Fraction(abs(bar.value)) / span * plot
        y = zero_y - size if bar.value >= 0 else zero_y
        centre = side + slot * index + slot / 2
        value_y = (y - 5) if bar.value >= 0 else (y + size + 13)
        kind = "chart-bar" if bar.value >= 0 else "chart-bar chart-bar-negative"
        shown = bar.short_label if bar.short_label is not None else bar.value_label
        parts.append(
            f'<g class="chart-item"><title>{escape(bar.label)}: {escape(bar.value_label)}</title>'
            f'<rect class="{kind}" x="{_num(x)}" y="{_num(y)}" width="{_num(bar_width)}" '
            f'height="{_num(size)}" data-value="{bar.value}"></rect>'
            f'<text class="chart-value" x="{_num(centre)}" y="{_num(value_y)}" '
            f'text-anchor="middle">{escape(shown)}</text>'
            f'<text class="chart-label" x="{_num(centre)}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(bar.label)}</text></g>'
        )
    parts.append("</g>")
    parts.append(
        f'<line class="chart-axis" x1="{side}" x2="{width - side}" '
        f'y1="{_num(zero_y)}" y2="{_num(zero_y)}"></line></svg>'
    )
    return "".join(parts)


def compact(amount_minor: int, exponent: int = 2) -> str:
    """A short display of an amount for a narrow bar: `1234567` -> `12.3k` (display only)."""
    major = Fraction(amount_minor, 10**exponent)
    sign = "-" if major < 0 else ""
    major = abs(major)
    for limit, suffix in ((10**9, "bn"), (10**6, "m"), (10**3, "k")):
        if major >= limit:
            return f"{sign}{float(major / limit):.1f}{suffix}"
    return f"{sign}{float(major):.0f}"


# --- aggregations --------------------------------------------------------------------


def months_back(today: dt.date, count: int) -> list[str]:
    """The `count` months ending with today's, oldest first, as `YYYY-MM`."""
    shifted = (shift_month(today.year, today.month, -back) for back in range(count - 1, -1, -1))
    return [f"{year:04d}-{month:02d}" for year, month in shifted]


def commissions_per_month(
    lines: Iterable[Mapping[str, Any]], today: dt.date, months: int = 12
) -> dict[str, list[tuple[str, int]]]:
    """Per currency, the sum of `amount_minor` per `occurred_at` month, the last `months`."""
    wanted = months_back(today, months)
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        month = str(line.get("occurred_at", ""))[:7]
        if month not in wanted:
            continue
        per_month = sums.setdefault(str(line.get("currency", "")), dict.fromkeys(wanted, 0))
        per_month[month] += int(line.get("amount_minor", 0))
    return {currency: list(per_month.items()) for currency, per_month in sorted(sums.items())}


def renewals_per_week(
    entitlements: Iterable[Mapping[str, Any]], today: dt.date, days: int = RENEWAL_DAYS
) -> list[tuple[dt.date, int]]:
    """(week start, entitlements whose term ends that week), for today .. today + days."""
    weeks = (days + 7) // 7
    counts = [0] * weeks
    for entitlement in entitlements:
        try:
            term_end = dt.date.fromisoformat(str(entitlement.get("term_end", ""))[:10])
        except ValueError:
            continue
        ahead = (term_end - today).days
        if 0 <= ahead <= days:
            counts[ahead // 7] += 1
    return [(today + dt.timedelta(days=7 * week), counts[week]) for week in range(weeks)]


def revenue_minor(line: Mapping[str, Any]) -> int:
    """A ledger line's share of programme revenue (see the module docstring)."""
    if line.get("role") != "partner_of_record":
        return 0
    base = abs(int(line.get("base_amount_minor") or 0))
    return -base if line.get("refund_id") else base


def revenue_per_tier(
    lines: Iterable[Mapping[str, Any]], tier_of: Mapping[str, str]
) -> dict[str, list[tuple[str, int]]]:
    """Per currency, programme revenue by the partners' current tier (platinum first)."""
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        amount = revenue_minor(line)
        if amount == 0:
            continue
        tier = tier_of.get(str(line.get("partner_id")), "unknown")
        per_tier = sums.setdefault(str(line.get("currency", "")), dict.fromkeys(TIERS, 0))
        per_tier[tier] = per_tier.get(tier, 0) + amount
    return {currency: list(per_tier.items()) for currency, per_tier in sorted(sums.items())}


# --- the charts the pages show ---------------------------------------------------------


def _exponent(currency: str) -> int:
    # format_money knows the ISO 4217 exponents: count the digits after its point.
    text = format_money(1, currency)
    return len(text.rsplit(".", 1)[1]) if "." in text else 0


def commissions_charts(
    lines: Iterable[Mapping[str, Any]], today: dt.date, months: int = 12
) -> list[tuple[str, str]]:
    """(currency, SVG) per currency: a partner's commissions per month, the last 12 months."""
    charts = []
    for currency, per_month in commissions_per_month(lines, today, months).items():
        bars = [
            Bar(month, amount, format_money(amount, currency), compact(amount, _exponent(currency)))
            for month, amount in per_month
        ]
        charts.append(
            (
                currency,
                bar_chart(
                    f"commissions-per-month-{currency.lower()}",
                    f"Commissions per month, {currency}, last {months} months",
                    f"Net commission ledger lines by month they occurred, in {currency}.",
                    bars,
                ),
            )
        )
    return charts


def renewals_chart(
    entitlements: Iterable[Mapping[str, Any]], today: dt.date, chart_id: str = "renewals-per-week"
) -> str:
    """Entitlements whose term ends in each week of the next 90 days."""
    weeks = renewals_per_week(entitlements, today)
    bars = [
        Bar(
            f"{start.day} {start:%b}",
            count,
            f"{count} renewal{'' if count == 1 else 's'} in the week from {start.isoformat()}",
            str(count),
        )
        for start, count in weeks
    ]
    return bar_chart(
        chart_id,
        f"Renewals due per week, next {RENEWAL_DAYS} days",
        "Entitlements whose term ends in each week, starting today.",
        bars,
        empty_text=f"No renewals due in the next {RENEWAL_DAYS} days.",
    )


def tier_revenue_charts(
    lines: Iterable[Mapping[str, Any]], tier_of: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(currency, SVG) per currency: programme revenue per partner tier."""
    charts = []
    for currency, per_tier in revenue_per_tier(lines, tier_of).items():
        bars = [
            Bar(tier, amount, format_money(amount, currency), compact(amount, _exponent(currency)))
            for tier, amount in per_tier
        ]
        charts.append(
            (
                currency,
                bar_chart(
                    f"revenue-per-tier-{currency.lower()}",
                    f"Programme revenue per tier, {currency}",
                    f"Net order amounts partners brought in, less refunds, by the partner's"
                    f" current tier, in {currency}.",
                    bars,
                ),
            )
        )
    return charts
